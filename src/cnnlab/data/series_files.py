"""Time-series files (UCR/UEA ``.ts``, UCR text, ``.npz``/``.npy`` arrays, CSV) read into a :class:`SignalSet`.

Every reader returns ``SignalSet(kind="series")`` with ``x`` float32 ``(N, C, T)``, ``y`` int64 class indices,
the class names and one name per series (``<file stem>:<row>``, rows counted from 1 as in error messages).

- Class order: the ``@classLabel`` list of a ``.ts`` file when it has one, else the sorted labels (numerically
  when every label is a number: ``-1, 1`` or ``1, 2, 10``). Text labels written as numbers are cleaned:
  ``-1.0000000e+00`` becomes ``"-1"``.
- Unequal lengths: ``unequal="pad"`` pads with zeros at the end (a :class:`~cnnlab.data.cache.DataWarning`
  says how many series and to which length); ``"error"`` names the first row that differs.
- Missing values (``?`` or ``NaN``; an empty CSV cell): ``missing="error"`` names the first one;
  ``"interpolate"`` fills them linearly along time per channel (values before the first or after the last
  known one take the nearest known value); ``"zero"`` writes 0.
- UCR text and CSV rows may end in missing values: the archive writes shorter series that way, so trailing
  missing values shorten the row (then ``unequal`` applies) instead of counting as missing.

>>> import tempfile
>>> tmp = tempfile.TemporaryDirectory()
>>> path = Path(tmp.name) / "toy.ts"
>>> _ = path.write_text("@classLabel true up down\\n@data\\n1,2,3:0,0,1:down\\n3,?,1:1,1,0:up\\n")
>>> data = read_ts(path, missing="interpolate")
>>> data.x.shape, data.classes, data.y.tolist(), data.names
(torch.Size([2, 2, 3]), ['up', 'down'], [1, 0], ['toy:1', 'toy:2'])
>>> data.x[1, 0].tolist()
[3.0, 2.0, 1.0]
>>> tmp.cleanup()
"""

from __future__ import annotations

import csv
import itertools
import math
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.data.cache import DataWarning
from cnnlab.data.named import default_data_dir
from cnnlab.data.signals import SignalSet

Unequal = Literal["pad", "error"]
Missing = Literal["error", "interpolate", "zero"]

UCR_EXTENSIONS = (".ts", ".tsv", ".txt")
"""File types :func:`load_ucr` looks for, in this order of preference, as ``<NAME>_TRAIN.<ext>``."""

_TEXT_MISSING = frozenset({"?"})
_CSV_MISSING = frozenset({"?", "", "NA"})
_MISSING_FIX = "pass missing='interpolate' (linear, edges held) or missing='zero', or clean the file"


@dataclass
class _Rows:
    """Parsed, not yet assembled rows of one file: each series as a list of 1-D float64 channels."""

    path: Path
    series: list[list[np.ndarray]]
    labels: list[str]
    lines: list[int]
    declared: list[str] | None = None
    fmt: str = "ts"

    def row(self, i: int) -> str:
        """How errors name series ``i`` (0-based)."""
        return _row_text(i + 1, self.lines[i])


def _row_text(row: int, line: int) -> str:
    """``row 3``, or ``row 3 (line 20)`` where the file's line number differs."""
    return f"row {row}" if row == line else f"row {row} (line {line})"


def read_ts(path: str | Path, *, unequal: Unequal = "pad", missing: Missing = "error") -> SignalSet:
    """A sktime/aeon ``.ts`` file: ``@`` headers, ``@data``, then one series a line (channels split by ``:``,
    values by ``,``, the class label last). ``#`` lines are comments. Multivariate files give ``C > 1``.

    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = Path(tmp.name) / "pair.ts"
    >>> _ = path.write_text("# two series\\n@problemName pair\\n@data\\n1,2:3,4:2\\n5,6:7,8:1\\n")
    >>> data = read_ts(path)
    >>> data.x.tolist(), data.classes, data.y.tolist()
    ([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]], ['1', '2'], [1, 0])
    >>> tmp.cleanup()
    """
    _check_options(unequal, missing)
    rows = _parse_ts(Path(path))
    return _build(rows, _class_order(rows.labels, rows.declared), None, unequal, missing)


def read_ucr_text(path: str | Path, *, unequal: Unequal = "pad", missing: Missing = "error") -> SignalSet:
    """UCR text (``.txt``, ``.tsv``, ``.csv``): one series a row, the label first, then its values, split by
    tabs, commas or whitespace (found from the first row). Numeric labels are cleaned (``1.0e+00`` -> ``1``).

    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = Path(tmp.name) / "ecg_TRAIN.txt"
    >>> _ = path.write_text("  -1.0000000e+00  0.5  0.25\\n   1.0000000e+00  1.5  2.5\\n")
    >>> data = read_ucr_text(path)
    >>> data.classes, data.y.tolist(), data.x.shape
    (['-1', '1'], [0, 1], torch.Size([2, 1, 2]))
    >>> tmp.cleanup()
    """
    _check_options(unequal, missing)
    rows = _parse_table(Path(path), header=False)
    return _build(rows, _class_order(rows.labels), None, unequal, missing)


def load_series_csv(path: str | Path, *, unequal: Unequal = "pad", missing: Missing = "error") -> SignalSet:
    """A CSV with one series a row: the label in a column headed ``label`` or, without one, in the first
    column; the other columns are the values. A header row is recognised by ``label`` or by non-numeric
    value columns. Empty cells, ``?`` and ``NA`` are missing values.

    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = Path(tmp.name) / "s.csv"
    >>> _ = path.write_text("t0,t1,label\\n0.5,1.5,walk\\n2,3,run\\n")
    >>> data = load_series_csv(path)
    >>> data.classes, data.y.tolist(), data.x[:, 0].tolist()
    (['run', 'walk'], [1, 0], [[0.5, 1.5], [2.0, 3.0]])
    >>> tmp.cleanup()
    """
    _check_options(unequal, missing)
    rows = _parse_table(Path(path), header=None)
    return _build(rows, _class_order(rows.labels), None, unequal, missing)


def load_series_arrays(
    path: str | Path,
    labels: Sequence[int | str] | np.ndarray | None = None,
    *,
    channels_last: bool = True,
    missing: Missing = "error",
) -> dict[str, SignalSet]:
    """Series from arrays, by split: a ``.npz`` with ``x``/``y`` (split ``"all"``) or Keras-style
    ``x_train``/``y_train`` and ``x_test``/``y_test`` (splits ``"train"``, ``"test"``), or a ``.npy`` of
    series with their ``labels`` passed here (split ``"all"``).

    Arrays are ``(N, T)`` (one channel) or ``(N, T, C)`` (Keras layout, moved to ``(N, C, T)``); pass
    ``channels_last=False`` for arrays already ``(N, C, T)`` (aeon's layout). Labels are integers or
    strings; train and test share the classes of the training labels.

    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = Path(tmp.name) / "acc.npz"
    >>> np.savez(path, x_train=np.zeros((4, 50, 3)), y_train=[0, 1, 1, 0], x_test=np.zeros((2, 50, 3)), y_test=[1, 0])
    >>> sets = load_series_arrays(path)
    >>> sorted(sets), sets["train"].x.shape, sets["test"].classes
    (['test', 'train'], torch.Size([4, 3, 50]), ['0', '1'])
    >>> tmp.cleanup()
    """
    _check_options("pad", missing)
    path = Path(path)
    arrays = _read_arrays(path, labels)
    splits = ["train", "test"] if "train" in arrays else ["all"]
    raw = {split: _label_texts(arrays[split][1], f"labels of {split} in {path}") for split in splits}
    classes = _class_order(raw[splits[0]])
    if "test" in arrays:
        _check_known(raw["test"], classes, f"y_test in {path}")
    sets = {}
    for split in splits:
        x = _series_array(arrays[split][0], channels_last, f"{split} series in {path}")
        if len(x) != len(raw[split]):
            raise DataError(
                f"{len(x)} series but {len(raw[split])} labels", where=f"{split} in {path}", fix="give one label each"
            )
        name = f"{path.stem}:{split}" if split != "all" else path.stem
        rows = _Rows(path, [], raw[split], list(range(1, len(x) + 1)), fmt=path.suffix.lstrip("."))
        x = _fill_missing(x, np.full(x.shape[:2], x.shape[2]), rows, missing, row_name=lambda i: f"series {i}")
        sets[split] = _signal_set(x, rows, classes, [f"{name}[{i}]" for i in range(len(x))])
    return sets


def load_ucr(
    name_or_folder: str | Path,
    data_dir: str | Path | None = None,
    *,
    unequal: Unequal = "pad",
    missing: Missing = "error",
) -> tuple[SignalSet, SignalSet]:
    """``(train, test)`` of a UCR/UEA dataset: a folder holding ``<NAME>_TRAIN.<ext>`` and ``<NAME>_TEST.<ext>``
    (``.ts``, ``.tsv`` or ``.txt``), one of those two files, or a bare name looked up (ignoring case) as
    ``<data_dir>/<name>/`` (``data_dir`` defaults to ``$CNNLAB_DATA``, else ``~/.cnnlab/data``).

    Both sets get the class list of the training file (its ``@classLabel`` list, else its sorted labels);
    a test label the training file lacks is an error. Series of unequal length are padded to the longest of
    both files, so train and test have the same ``T``.

    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> folder = Path(tmp.name) / "Toy"
    >>> folder.mkdir()
    >>> _ = (folder / "Toy_TRAIN.tsv").write_text("1\\t0.5\\t0.7\\n2\\t0.1\\t0.2\\n")
    >>> _ = (folder / "Toy_TEST.tsv").write_text("2\\t0.3\\t0.3\\n")
    >>> train, test = load_ucr("toy", data_dir=tmp.name)
    >>> train.x.shape, test.x.shape, test.classes, test.y.tolist()
    (torch.Size([2, 1, 2]), torch.Size([1, 1, 2]), ['1', '2'], [1])
    >>> tmp.cleanup()
    """
    _check_options(unequal, missing)
    train_path, test_path = _ucr_files(name_or_folder, data_dir)
    train, test = (_parse_ucr_file(p) for p in (train_path, test_path))
    classes = _class_order(train.labels, train.declared)
    _check_known(test.labels, classes, str(test_path))
    length = max(len(channel) for rows in (train, test) for series in rows.series for channel in series)
    return _build(train, classes, length, unequal, missing), _build(test, classes, length, unequal, missing)


def is_ucr_source(source: str | Path, data_dir: str | Path | None = None) -> bool:
    """Whether ``source`` looks like a UCR/UEA dataset, from file names alone: a ``.ts`` file, a
    ``*_TRAIN``/``*_TEST`` file or a folder holding ``*_TRAIN.(ts|tsv|txt)``, or a bare name whose folder
    under ``data_dir`` holds one.

    >>> is_ucr_source("no-such-dataset", data_dir="/nonexistent")
    False
    """
    path = Path(source)
    if path.is_file():
        return path.suffix.lower() == ".ts" or _split_of(path) is not None
    if path.is_dir():
        return bool(_pairs(path))
    if len(path.parts) != 1:
        return False
    folder = _named_folder(str(source), _root(data_dir))
    return folder is not None and bool(_pairs(folder))


# --- finding UCR files -------------------------------------------------------------------------------------


def _root(data_dir: str | Path | None) -> Path:
    return Path(data_dir) if data_dir is not None else default_data_dir()


def _split_of(path: Path) -> str | None:
    """``"train"``/``"test"`` for ``<NAME>_TRAIN.<ext>``/``<NAME>_TEST.<ext>`` with a UCR extension."""
    stem, suffix = path.stem.lower(), path.suffix.lower()
    if suffix not in UCR_EXTENSIONS:
        return None
    return next((split for split in ("train", "test") if stem.endswith("_" + split)), None)


def _pairs(folder: Path) -> list[tuple[Path, Path | None]]:
    """Every ``(TRAIN file, its TEST file or None)`` in ``folder``, preferred extensions first."""
    try:
        files = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
    except OSError:
        return []
    pairs = []
    for ext in UCR_EXTENSIONS:
        for name, train in sorted(files.items()):
            if name.endswith("_train" + ext):
                pairs.append((train, files.get(name[: -len("_train" + ext)] + "_test" + ext)))
    return pairs


def _named_folder(name: str, root: Path) -> Path | None:
    """``root/name``, else the one folder of ``root`` whose name matches ``name`` ignoring case."""
    if (root / name).is_dir():
        return root / name
    try:
        return next((p for p in sorted(root.iterdir()) if p.is_dir() and p.name.lower() == name.lower()), None)
    except OSError:
        return None


def _ucr_files(source: str | Path, data_dir: str | Path | None) -> tuple[Path, Path]:
    """The TRAIN and TEST files of ``source`` (a folder, one of the two files, or a name under ``data_dir``)."""
    path = Path(source)
    if path.is_file():
        split = _split_of(path)
        if split is None:
            raise DataError(
                "not a UCR <NAME>_TRAIN / <NAME>_TEST file",
                where=str(path),
                fix="pass the dataset folder, or read a single file with read_ts / read_ucr_text",
            )
        prefix = path.name[: -len(f"_{split}{path.suffix}")]
        pairs = [p for p in _pairs(path.parent) if p[0].name.lower() == f"{prefix}_train{path.suffix}".lower()]
        return _one_pair(path.parent, pairs)
    root = _root(data_dir)
    folder = path if path.is_dir() else (_named_folder(str(source), root) if len(path.parts) == 1 else None)
    if folder is None:
        tried = [str(path.resolve())] + ([str(root / str(source))] if len(path.parts) == 1 else [])
        raise DataError(
            f"no UCR dataset '{source}': tried {', '.join(tried)}",
            where="--data",
            fix="pass --data-dir DIR with DIR/<Name>/<Name>_TRAIN.ts (or .tsv/.txt) and _TEST, set $CNNLAB_DATA, "
            "or give the dataset folder",
        )
    return _one_pair(folder, _pairs(folder))


def _one_pair(folder: Path, pairs: list[tuple[Path, Path | None]]) -> tuple[Path, Path]:
    if not pairs:
        names = ", ".join(f"<NAME>_TRAIN{ext}" for ext in UCR_EXTENSIONS)
        raise DataError(
            f"no {names} file in this folder",
            where=str(folder),
            fix="put <NAME>_TRAIN.<ext> and <NAME>_TEST.<ext> there, or pass --data-dir to the folder above it",
        )
    prefixes = {train.name.lower().rsplit("_train", 1)[0] for train, _ in pairs}
    if len(prefixes) > 1:
        matching = [p for p in pairs if p[0].name.lower().rsplit("_train", 1)[0] == folder.name.lower()]
        if not matching:
            raise DataError(
                f"this folder holds several datasets ({', '.join(sorted(prefixes))})",
                where=str(folder),
                fix="pass one of its _TRAIN files instead of the folder",
            )
        pairs = matching
    train, test = next((p for p in pairs if p[1] is not None), pairs[0])
    if test is None:
        raise DataError(
            f"found {train.name} but no matching _TEST file",
            where=str(folder),
            fix=f"add {train.name.replace('_TRAIN', '_TEST')} (same name, _TEST)",
        )
    return train, test


def _parse_ucr_file(path: Path) -> _Rows:
    return _parse_ts(path) if path.suffix.lower() == ".ts" else _parse_table(path, header=False)


# --- parsing -----------------------------------------------------------------------------------------------


def _check_options(unequal: str, missing: str) -> None:
    if unequal not in ("pad", "error"):
        raise ConfigError(f"unequal must be 'pad' or 'error'. Received: unequal={unequal!r}", where="unequal")
    if missing not in ("error", "interpolate", "zero"):
        raise ConfigError(
            f"missing must be 'error', 'interpolate' or 'zero'. Received: missing={missing!r}", where="missing"
        )


def _read_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError("no such file", where=str(path), fix="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read ({type(exc).__name__}: {exc})", where=str(path), fix="check the file") from None
    if not text.strip():
        raise DataError("the file is empty", where=str(path), fix="write one series a row")
    return text


def _numbers(tokens: list[str], missing_tokens: frozenset[str], where: str, row: str) -> np.ndarray:
    """Tokens -> float64 values; missing tokens -> NaN; anything else not a number is an error naming it."""
    try:
        return np.array(tokens, dtype=np.float64)
    except ValueError:
        values = np.empty(len(tokens))
        for i, token in enumerate(tokens):
            token = token.strip()
            if token in missing_tokens:
                values[i] = math.nan
                continue
            try:
                values[i] = float(token)
            except ValueError:
                raise DataError(
                    f"{row}: value {i + 1} is {token!r}, not a number",
                    where=where,
                    fix="write numbers only (missing values as ? or NaN)",
                ) from None
        return values


def _parse_ts(path: Path) -> _Rows:
    where = str(path)
    rows = _Rows(path, [], [], [], fmt="ts")
    in_data = False
    for number, raw in enumerate(_read_text(path).splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            in_data = _ts_header(line, number, rows)
            continue
        *channels, label = line.split(":")
        row = _row_text(len(rows.series) + 1, number)
        label = label.strip()
        if not channels or not label or "," in label:
            raise DataError(
                f"{row} has no class label after its last ':'",
                where=where,
                fix="end every series with :<label>, e.g. 0.1,0.2,0.3:walk",
            )
        series = [_numbers(channel.split(","), _TEXT_MISSING, where, row) for channel in channels]
        _check_channels(rows, len(series), row)
        rows.series.append(series)
        rows.labels.append(label)
        rows.lines.append(number)
    if not in_data:
        raise DataError("no @data line", where=where, fix="a .ts file lists its @headers, then @data, then the rows")
    if not rows.series:
        raise DataError("no series after @data", where=where, fix="write one series a line after @data")
    if rows.declared is not None:
        _check_known(rows.labels, rows.declared, where, declared=True)
    return rows


def _ts_header(line: str, number: int, rows: _Rows) -> bool:
    """Read one header line into ``rows``; True at ``@data``."""
    where = str(rows.path)
    if not line.startswith("@"):
        raise DataError(
            f"line {number} comes before @data but is not an @header",
            where=where,
            fix="start the rows with a line holding @data",
        )
    key, _, value = line[1:].partition(" ")
    key, words = key.lower(), value.split()
    flag = words[0].lower() if words else ""
    if key == "data":
        return True
    if key == "classlabel":
        if flag != "true":
            raise DataError(
                "the file has no class labels (@classLabel false)",
                where=where,
                fix="cnnlab reads classification .ts files: add @classLabel true <labels> and a label to each row",
            )
        rows.declared = words[1:] or None
    elif key == "targetlabel" and flag == "true":
        raise DataError("this is a regression file (@targetLabel true)", where=where, fix="use a classification file")
    elif key == "timestamps" and flag == "true":
        raise DataError(
            "time-stamped .ts files (@timeStamps true) are not supported",
            where=where,
            fix="write the values without their (time,value) stamps",
        )
    return False


def _check_channels(rows: _Rows, channels: int, row: str) -> None:
    if rows.series and len(rows.series[0]) != channels:
        raise DataError(
            f"{row} has {channels} channel(s), row 1 has {len(rows.series[0])}",
            where=str(rows.path),
            fix="give every series the same channels (separated by ':')",
        )


def _separator(line: str) -> str | None:
    return "\t" if "\t" in line else "," if "," in line else None


def _table_lines(text: str, sep: str | None) -> Iterator[tuple[int, list[str]]]:
    """``(line number, tokens)`` of every non-blank line; CSV through :mod:`csv` (quoted labels)."""
    if sep == ",":
        reader = csv.reader(text.splitlines())
        for tokens in reader:
            if any(t.strip() for t in tokens):
                yield reader.line_num, tokens
        return
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            yield number, line.strip().split(sep)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_table(path: Path, header: bool | None) -> _Rows:
    """Rows of label + values. ``header``: False for none (UCR text), None to detect (CSV)."""
    where, text = str(path), _read_text(path)
    is_csv = header is None
    lines = _table_lines(text, "," if is_csv else _separator(text.lstrip().splitlines()[0]))
    rows = _Rows(path, [], [], [], fmt=path.suffix.lstrip(".").lower() or "txt")
    label_column = 0
    if is_csv:
        number, first = next(lines, (0, []))
        names = [t.strip().lower() for t in first]
        if "label" in names:
            label_column = names.index("label")
        elif all(_is_number(t) or not t.strip() for t in first[1:]):
            lines = itertools.chain([(number, first)], lines)
    missing = _CSV_MISSING if is_csv else _TEXT_MISSING
    for number, tokens in lines:
        row = _row_text(len(rows.series) + 1, number)
        if len(tokens) <= label_column:
            raise DataError(f"{row} has no label column", where=where, fix="give every row a label and its values")
        label = _clean_label(tokens.pop(label_column).strip())
        values = _numbers(tokens, missing, where, row)
        known = np.flatnonzero(~np.isnan(values))
        if not label or not len(known):
            raise DataError(f"{row} has no label or no values", where=where, fix="give every row a label and values")
        rows.series.append([values[: known[-1] + 1]])  # trailing missing values: a shorter series
        rows.labels.append(label)
        rows.lines.append(number)
    if not rows.series:
        raise DataError("no series rows", where=where, fix="write one series a row")
    return rows


# --- labels and classes ------------------------------------------------------------------------------------


def _clean_label(text: str) -> str:
    """A label written as a number in its shortest form (``-1.0000000e+00`` -> ``-1``); other text as is."""
    try:
        value = float(text)
    except ValueError:
        return text
    if value.is_integer():
        return str(int(value))
    return repr(value) if math.isfinite(value) else text


def _label_texts(labels: np.ndarray, where: str) -> list[str]:
    values = np.asarray(labels)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise DataError(f"labels must be one per series, got shape {values.shape}", where=where)
    if values.dtype.kind not in "biufUS":
        raise DataError(f"labels must be numbers or strings, found dtype {values.dtype}", where=where)
    return [_clean_label((v.decode() if isinstance(v, bytes) else str(v)).strip()) for v in values.tolist()]


def _class_order(labels: Sequence[str], declared: Sequence[str] | None = None) -> list[str]:
    """The ``declared`` order, else the sorted distinct labels (numerically when all are numbers)."""
    if declared:
        return list(declared)
    distinct = set(labels)
    return sorted(distinct, key=float) if all(_is_number(t) for t in distinct) else sorted(distinct)


def _check_known(labels: Sequence[str], classes: Sequence[str], where: str, declared: bool = False) -> None:
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        source = "the @classLabel header" if declared else "the training file"
        raise DataError(
            f"labels {unknown[:5]} are not among the classes of {source} ({', '.join(classes)})",
            where=where,
            fix="list every class in @classLabel" if declared else "use a training file that has every class",
        )


# --- assembling --------------------------------------------------------------------------------------------


def _build(rows: _Rows, classes: list[str], length: int | None, unequal: Unequal, missing: Missing) -> SignalSet:
    """Rows -> ``(N, C, T)`` float32 with missing values handled and unequal lengths padded (or refused)."""
    lengths = np.array([[len(channel) for channel in series] for series in rows.series])  # (N, C)
    longest = int(lengths.max()) if length is None else length
    where = str(rows.path)
    short = lengths != longest
    if short.any():
        if unequal == "error":
            i = int(np.flatnonzero(short.any(1))[0])
            raise DataError(
                f"{rows.row(i)} has length {lengths[i].tolist()}, others have {longest}",
                where=where,
                fix="pass unequal='pad' (zeros at the end) or resample the series to one length",
            )
        warnings.warn(
            f"padded {int(short.any(1).sum())} of {len(lengths)} series to length {longest} with zeros at the end "
            f"[{where}]",
            DataWarning,
            stacklevel=3,
        )
    if not short.any():
        x = np.stack([np.stack(series) for series in rows.series])
    else:
        x = np.zeros((*lengths.shape, longest))
        for i, series in enumerate(rows.series):
            for c, channel in enumerate(series):
                x[i, c, : len(channel)] = channel
    x = _fill_missing(x, lengths, rows, missing, rows.row)
    return _signal_set(x, rows, classes, [f"{rows.path.stem}:{i + 1}" for i in range(len(x))])


def _fill_missing(
    x: np.ndarray, lengths: np.ndarray, rows: _Rows, missing: Missing, row_name: Callable[[int], str]
) -> np.ndarray:
    """Handle NaN inside each channel's first ``lengths[n, c]`` steps (padding is never missing)."""
    holes = np.isnan(x)
    if not holes.any():
        return x
    where = str(rows.path)
    if missing == "error":
        n, c, t = (int(v) for v in np.argwhere(holes)[0])
        raise DataError(
            f"{row_name(n)}, channel {c + 1}, step {t + 1}: missing value ({int(holes.sum())} in all)",
            where=where,
            fix=_MISSING_FIX,
        )
    if missing == "zero":
        return np.where(holes, 0.0, x)
    x = x.copy()
    for n, c in zip(*np.nonzero(holes.any(2)), strict=True):
        values = x[n, c, : lengths[n, c]]
        known = ~np.isnan(values)
        if not known.any():
            raise DataError(
                f"{row_name(int(n))}, channel {c + 1} has no values to interpolate from",
                where=where,
                fix="drop the series or fill the channel",
            )
        steps = np.arange(len(values))
        values[~known] = np.interp(steps[~known], steps[known], values[known])
    return x


def _signal_set(x: np.ndarray, rows: _Rows, classes: list[str], names: list[str]) -> SignalSet:
    index = {name: i for i, name in enumerate(classes)}
    y = torch.tensor([index[label] for label in rows.labels], dtype=torch.long)
    meta: dict[str, object] = {"format": rows.fmt, "source": str(rows.path)}
    return SignalSet(torch.from_numpy(x.astype(np.float32)), y, list(classes), names, kind="series", meta=meta)


# --- arrays ------------------------------------------------------------------------------------------------


def _read_arrays(path: Path, labels: Sequence[int | str] | np.ndarray | None) -> dict[str, tuple[np.ndarray, object]]:
    """``{split: (series array, labels)}`` from a ``.npz`` or a ``.npy`` plus ``labels``."""
    where, is_npy = str(path), path.suffix.lower() == ".npy"
    if is_npy and labels is None:
        raise DataError("a .npy holds no labels", where=where, fix="pass labels=, or save x and y in a .npz")
    if not is_npy and labels is not None:
        raise ConfigError("labels= is for .npy files; a .npz brings its own", where=where, fix="drop labels=")
    try:
        if is_npy:
            return {"all": (np.load(path, allow_pickle=False), np.asarray(labels))}
        with np.load(path, allow_pickle=False) as archive:
            keys = {key.lower(): key for key in archive.files}
            found = {}
            for split, (x_key, y_key) in {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}.items():
                if x_key in keys and y_key in keys:
                    found[split] = (archive[keys[x_key]], archive[keys[y_key]])
            if "train" not in found and "x" in keys and "y" in keys:
                found["all"] = (archive[keys["x"]], archive[keys["y"]])
    except FileNotFoundError:
        raise DataError("no such file", where=where, fix="check the path") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"cannot read ({type(exc).__name__}: {exc})", where=where, fix="check or re-save it") from None
    if not found:
        raise DataError(
            f"no series/labels arrays (keys: {sorted(keys.values())})",
            where=where,
            fix="store x/y, or x_train/y_train (and x_test/y_test)",
        )
    return found


def _series_array(array: np.ndarray, channels_last: bool, where: str) -> np.ndarray:
    """``(N, T)`` or ``(N, T, C)`` (``(N, C, T)`` when not ``channels_last``) -> float64 ``(N, C, T)``."""
    if array.dtype.kind not in "biuf":
        raise DataError(f"series must be numbers, found dtype {array.dtype}", where=where)
    if array.ndim == 2:
        array = array[:, None, :]
    elif array.ndim == 3:
        array = array.transpose(0, 2, 1) if channels_last else array
    else:
        raise DataError(
            f"series arrays must be (N, T) or (N, T, C), got shape {array.shape}",
            where=where,
            fix="reshape to (samples, steps, channels)",
        )
    if not array.size:
        raise DataError(f"no series (shape {array.shape})", where=where, fix="store at least one series")
    return np.ascontiguousarray(array, dtype=np.float64)
