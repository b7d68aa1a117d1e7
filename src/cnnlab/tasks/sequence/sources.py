"""Where a sequence run's samples come from, and how its test set is made.

:func:`source_kind` recognises a source without reading it (the CLI uses it to pick this task when ``--task`` is
not given): a UCR/UEA set (a folder or a bare name under ``--data-dir`` holding ``<NAME>_TRAIN`` and ``<NAME>_TEST``
files), a ``.ts`` file, a folder of WAV files, a folder of clips (class folders of ``.npy`` clips or frame
folders), a folder of volumes (class folders of NIfTI scans); :func:`claims` leaves frame folders to ``--task``
and takes a ``.csv`` of number rows or a ``.npz`` of ``(N, T[, C])`` arrays (:mod:`cnnlab.data.series_sniff`).
With ``--task sequence`` also any ``.npz``/``.npy`` arrays ``(N, T[, C])`` and ``.csv`` rows (Keras' layout).
:func:`load_splits` reads the source and makes the test split the data calls for (its own ``_TEST`` files, FSDD's
recordings 0-4, unseen speakers, or a share of each class), each said in the log.

>>> import tempfile
>>> import numpy as np
>>> from cnnlab.data.wav import write_wav
>>> folder = Path(tempfile.mkdtemp())
>>> write_wav(folder / "3_amy_0.wav", np.zeros(800, dtype=np.float32), 8000)
>>> source_kind(str(folder)), source_kind("no-such-thing")
('audio', None)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.data.audio import AudioSpec, is_audio_source, load_audio_folder
from cnnlab.data.clips import is_clip_source, load_clip_folder
from cnnlab.data.series_files import is_ucr_source, load_series_arrays, load_series_csv, load_ucr, read_ts
from cnnlab.data.series_sniff import csv_holds_series, npz_holds_series
from cnnlab.data.signals import SignalSet
from cnnlab.data.volumes import NIFTI_SUFFIXES, is_volume_source, load_volume_folder
from cnnlab.tasks.sequence.config import SequenceRunConfig

ARRAY_SUFFIXES = (".npz", ".npy", ".csv")
"""Series sources read only with ``--task sequence`` (image sets come in the same containers)."""


def source_kind(source: str | None, data_dir: str | None = None) -> str | None:
    """``"ucr"``, ``"series"`` (a ``.ts`` file), ``"audio"``, ``"tissue"`` (a scan with its tissue maps),
    ``"volume"`` or ``"clip"`` when ``source`` is sequence data, else ``None``; reads directory listings only."""
    if not source:
        return None
    path = Path(source)
    if is_ucr_source(source, data_dir):
        return "ucr"
    if path.suffix.lower() == ".ts" and path.is_file():
        return "series"
    if not path.exists():
        return None
    if is_audio_source(path):
        return "audio"
    if is_tissue_folder(path):
        return "tissue"
    if is_volume_source(path) and _holds_nifti(path):
        return "volume"
    if is_clip_source(path):
        return "clip"
    return None


TISSUE_MAPS = ("_t1_", "_gm_", "_wm_")
"""A folder with one volume named like each of these is a brain scan with its grey- and white-matter maps
(``mni152-volumes``): a volume-segmentation run (:mod:`cnnlab.tasks.sequence.volume_segment`)."""


def is_tissue_folder(path: Path) -> bool:
    """Whether ``path`` holds a T1 scan and its GM and WM probability maps (one volume file each)."""
    if not path.is_dir():
        return False
    names = [p.name.lower() for p in path.iterdir() if p.is_file() and p.name.lower().endswith(NIFTI_SUFFIXES)]
    return all(sum(key in name for name in names) == 1 for key in TISSUE_MAPS)


def claims(source: str | None, data_dir: str | None = None) -> bool:
    """Whether ``--data source`` is unmistakably sequence data (so ``cnnlab train`` trains this task without
    ``--task``). Clips count only as ``.npy`` files: class folders of frame folders look like an image set's
    split folders (``train/<class>/<image>``), so those need ``--task sequence``; a ``.csv`` or ``.npz`` counts
    when its first rows or its array shapes are series, not images."""
    kind = source_kind(source, data_dir)
    if kind == "clip":
        return is_clip_source(source or "", frame_folders=False)
    if kind is None and source and Path(source).is_file():
        suffix = Path(source).suffix.lower()
        return (suffix == ".csv" and csv_holds_series(source)) or (suffix == ".npz" and npz_holds_series(source))
    return kind is not None


@dataclass
class Splits:
    """The training samples, the test samples (``None``: no test score), an optional validation set, and the
    log lines saying how they were made."""

    train: SignalSet
    test: SignalSet | None
    val: SignalSet | None = None
    chosen: list[str] = field(default_factory=list)


def load_splits(config: SequenceRunConfig, audio: AudioSpec | None = None) -> Splits:
    """Read ``config.data.source`` and split it as ``config.sequence.split`` says (errors before any run folder).

    ``audio`` replaces the front-end chosen from the recordings (a resumed run or ``cnnlab evaluate`` passes the
    trained one, so the model sees what it was trained on).
    """
    data, own_test, chosen = read_source(config, audio)
    seq = config.sequence
    split = seq.split
    if split == "auto":
        split = "source" if own_test is not None else "index" if data.indices is not None else "random"
    if split == "source":
        if own_test is None:
            raise ConfigError(
                f"{config.data.source} has no test split of its own",
                where="--split",
                fix="use --split random (a share of each class), index or group",
            )
        train, test = data, own_test
        chosen.append(f"test set: the source's own ({len(test)} samples: {test.meta.get('source', 'test file')})")
    elif split == "index":
        train, test = data.split_indices(seq.held_indices)
        shown = _ranges(seq.held_indices)
        chosen.append(f"test set: recordings numbered {shown} ({len(test)} of {len(data)}; FSDD's standard split)")
    elif split == "group":
        groups = seq.held_groups or (sorted(set(data.groups))[-1:] if data.groups else ())
        train, test = data.split_groups(list(groups))
        chosen.append(
            f"test set: every recording of {', '.join(groups)} ({len(test)} of {len(data)}), never trained on"
        )
    else:
        train, test = data.split(seq.test_fraction, seed=config.train.seed)
        chosen.append(f"test set: {seq.test_fraction:.0%} of each class, drawn with seed {config.train.seed}")
    val = None
    if config.data.val_fraction > 0:
        train, val = train.split(config.data.val_fraction, seed=config.train.seed)
        chosen.append(f"validation: {len(val)} training samples held out ({config.data.val_fraction:.0%} per class)")
    _check_classes(train, config.data.source)
    return Splits(train, test, val, chosen)


def read_source(
    config: SequenceRunConfig, audio: AudioSpec | None = None
) -> tuple[SignalSet, SignalSet | None, list[str]]:
    """The samples of ``config.data.source``, its own test split (or ``None``) and what was chosen reading it."""
    source, data_dir, seq = config.data.source, config.data.data_dir, config.sequence
    if not source:
        raise ConfigError(
            "a sequence run needs data",
            where="--data",
            fix="cnnlab train --data ECG200 --data-dir UCR_FOLDER, or --data a folder of WAV files, clips or volumes",
        )
    kind = source_kind(source, data_dir)
    path = Path(source)
    if kind == "ucr":
        train, test = load_ucr(source, data_dir, unequal=seq.unequal, missing=seq.missing)
        return train, test, [f"UCR/UEA set: {len(train)} train and {len(test)} test series of {_shape(train)}"]
    if kind == "series":
        data = read_ts(path, unequal=seq.unequal, missing=seq.missing)
        return data, None, [f"series file: {len(data)} series of {_shape(data)}"]
    if kind == "audio":
        data = load_audio_folder(path, spec=audio or _audio_request(config), strict=config.data.strict)
        chosen = [f"audio: {len(data)} recordings of {len(data.classes)} classes"]
        return data, None, chosen + [str(line) for line in data.meta.get("chosen", [])]
    if kind == "volume":
        data = load_volume_folder(path, strict=config.data.strict)
        return data, None, [f"volumes: {len(data)} scans of {_shape(data)}"]
    if kind == "clip":
        data = load_clip_folder(path, frames=seq.frames, strict=config.data.strict)
        chosen = data.meta.get("chosen", {})
        return data, None, [f"clips: {len(data)} clips of {_shape(data)} (frames, size: {chosen})"]
    if path.suffix.lower() in ARRAY_SUFFIXES and path.is_file():
        return _arrays(path, config)
    where = "--data" if path.exists() else f"--data {source}"
    raise DataError(
        f"{source} is not sequence data cnnlab can read" + ("" if path.exists() else " (no such file or folder)"),
        where=where,
        fix="pass a UCR set (a folder with NAME_TRAIN/NAME_TEST .ts/.txt/.tsv files, or its name with --data-dir), "
        "a .ts/.npz/.npy/.csv file, a folder of .wav files, or class folders of clips (.npy) or volumes (.nii.gz)",
    )


def _arrays(path: Path, config: SequenceRunConfig) -> tuple[SignalSet, SignalSet | None, list[str]]:
    if path.suffix.lower() == ".csv":
        data = load_series_csv(path, unequal=config.sequence.unequal, missing=config.sequence.missing)
        return data, None, [f"CSV: {len(data)} series of {_shape(data)}"]
    sets = load_series_arrays(path, missing=config.sequence.missing)
    if "train" in sets:
        train, test = sets["train"], sets.get("test")
        note = f" and {len(test)} test" if test is not None else ""
        return train, test, [f"arrays: {len(train)} train{note} series of {_shape(train)} (Keras layout N, T, C)"]
    data = next(iter(sets.values()))
    return data, None, [f"arrays: {len(data)} series of {_shape(data)} (Keras layout N, T, C)"]


def _audio_request(config: SequenceRunConfig) -> AudioSpec:
    """The audio front-end the config asks for: log-mel, or the raw waveform for ``m5`` (rate and length are
    chosen from the recordings)."""
    waveform = config.sequence.representation == "waveform" or config.model.name == "m5"
    return AudioSpec(representation="waveform" if waveform else "logmel")


def _check_classes(train: SignalSet, source: str) -> None:
    present = sum(1 for n in train.class_counts().values() if n > 0)
    if present < 2:
        raise DataError(
            f"the training split holds {present} class; a classifier needs at least 2",
            where=source,
            fix="check the labels (one folder per class, or labels in the file), or hold out less",
        )


def _holds_nifti(path: Path) -> bool:
    return any(p.name.lower().endswith(NIFTI_SUFFIXES) for p in path.rglob("*") if p.is_file())


def _shape(data: SignalSet) -> str:
    """``"1 channel x 150 steps"`` or ``"1 x 20 x 64 x 64"``."""
    if data.rank == 1:
        channels, steps = data.sample_shape
        return f"{channels} channel{'s' if channels != 1 else ''} x {steps} steps"
    return " x ".join(str(n) for n in data.sample_shape)


def _ranges(values: tuple[int, ...]) -> str:
    """``(0, 1, 2, 3, 4)`` -> ``"0-4"``."""
    ordered = sorted(values)
    if ordered and ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 2:
        return f"{ordered[0]}-{ordered[-1]}"
    return ", ".join(str(v) for v in ordered)
