"""``keras.datasets.mnist``: the MNIST digits from local files, as Keras returns them.

cnnlab never downloads. ``load_data()`` reads the four original IDX files (``.gz`` or raw) from
``$CNNLAB_DATA/mnist/`` (default ``~/.cnnlab/data/mnist/``, the folder ``cnnlab train --data mnist``
uses), or from ``path``: a folder holding them, or Keras' own ``mnist.npz``.

>>> import tempfile
>>> load_data(path=tempfile.mkdtemp())  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
cnnlab.core.errors.DataError: mnist is not there (missing train-images-idx3-ubyte.gz, ...
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnlab.core.errors import DataError
from cnnlab.data.idx import read_idx
from cnnlab.data.named import NAMED_DATASETS, default_data_dir

Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def read_named(name: str, path: str | Path | None) -> Arrays:
    """``(x_train, y_train), (x_test, y_test)`` uint8 arrays of the named IDX dataset ``name``.

    ``path``: a folder with the four IDX files or a Keras ``.npz``; None: ``<data dir>/<name>/``
    (:func:`cnnlab.data.named.default_data_dir`).
    """
    named = NAMED_DATASETS[name]
    folder = Path(path) if path is not None else default_data_dir() / name
    if folder.is_file() and folder.suffix == ".npz":
        return _read_npz(folder)
    found = {f: _find(folder, f) for f in named.files}
    missing = [f for f, file in found.items() if file is None]
    if missing:
        how = "" if path is not None else f" (set CNNLAB_DATA to the folder holding {name}/)"
        raise DataError(
            f"{name} is not there (missing {', '.join(missing)}); cnnlab never downloads",
            where=str(folder),
            fix=f"copy the four IDX files from {named.source_url} into that folder{how}, "
            f"or pass load_data(path='folder/with/the/files')",
        )
    x_train, y_train, x_test, y_test = (read_idx(file) for file in found.values())  # type: ignore[arg-type]
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "t10k")):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y) or x.dtype != np.uint8:
            raise DataError(
                f"the {split} IDX files do not fit: images {x.shape} {x.dtype}, labels {y.shape}",
                where=str(folder),
                fix="copy the original files again",
            )
    return (x_train, y_train), (x_test, y_test)


def _find(folder: Path, name: str) -> Path | None:
    """``name`` (``.gz``) or its uncompressed twin in ``folder``."""
    return next((c for c in (folder / name, folder / name.removesuffix(".gz")) if c.is_file()), None)


def _read_npz(path: Path) -> Arrays:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in _NPZ_KEYS if k not in archive]
            if missing:
                raise DataError(f"the .npz lacks {', '.join(missing)}", where=str(path), fix="pass Keras' mnist.npz")
            x_train, y_train, x_test, y_test = (np.asarray(archive[k]) for k in _NPZ_KEYS)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read .npz ({exc})", where=str(path), fix="check or re-save the file") from None
    return (x_train, y_train), (x_test, y_test)


def load_data(path: str | Path | None = None) -> Arrays:
    """MNIST as ``(x_train, y_train), (x_test, y_test)``: uint8 ``(60000, 28, 28)``, ``(60000,)``,
    ``(10000, 28, 28)``, ``(10000,)``, labels 0..9."""
    return read_named("mnist", path)
