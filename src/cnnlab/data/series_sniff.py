"""Whether a ``.csv`` or ``.npz`` holds series rather than images, from its first rows or its array headers
alone, so that ``cnnlab train --data series.csv`` trains a sequence run without ``--task``.

A CSV of series has rows of numbers with one label cell (an image set's CSV lists ``path,label``); a ``.npz``
of series holds ``(N, T)`` arrays, which no image set has, or ``(N, T, C)`` with a few channels over many steps
(``C * 4 <= T``; a grey image set's ``(N, H, W)`` is about square).

>>> import tempfile
>>> import numpy as np
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "s.csv").write_text("label,t0,t1,t2\\nwalk,0.5,1.5,2\\nrun,2,3,?\\n")
>>> _ = (folder / "i.csv").write_text("path,label\\na.png,cat\\n")
>>> csv_holds_series(folder / "s.csv"), csv_holds_series(folder / "i.csv")
(True, False)
>>> np.savez(folder / "acc.npz", x_train=np.zeros((4, 128, 3)), y_train=[0, 1, 0, 1])
>>> np.savez(folder / "img.npz", x=np.zeros((4, 28, 28)), y=[0, 1, 0, 1])
>>> npz_holds_series(folder / "acc.npz"), npz_holds_series(folder / "img.npz")
(True, False)
"""

from __future__ import annotations

import csv
import zipfile
from itertools import islice
from pathlib import Path

import numpy as np

from cnnlab.data.images import is_image_file

MISSING_CELLS = ("", "?", "na", "nan")
"""Cells a series CSV may leave for a missing value (they count as numbers here)."""

ROWS_LOOKED_AT = 6


def csv_holds_series(path: str | Path) -> bool:
    """Whether the first rows of the CSV at ``path`` are series: each (after a possible header) has at least
    three cells, all numbers or missing but at most one (the label), and no cell names an image file."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [row for row in islice(csv.reader(handle), ROWS_LOOKED_AT) if any(c.strip() for c in row)]
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    body = rows[1:] if len(rows) > 1 else rows
    return bool(body) and all(_series_row(row) for row in body)


def _series_row(row: list[str]) -> bool:
    if len(row) < 3 or any(is_image_file(Path(cell.strip())) for cell in row):
        return False
    return sum(not _number(cell) for cell in row) <= 1


def _number(cell: str) -> bool:
    text = cell.strip()
    if text.lower() in MISSING_CELLS:
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def npz_holds_series(path: str | Path) -> bool:
    """Whether the ``x``/``x_train`` array of the ``.npz`` at ``path`` is ``(N, T)``, or ``(N, T, C)`` with
    ``C * 4 <= T`` (read from the array's header; the data stays on disk)."""
    shape = _npz_shape(Path(path), ("x_train", "x"))
    if shape is None:
        return False
    return len(shape) == 2 or (len(shape) == 3 and 0 < shape[2] * 4 <= shape[1])


def _npz_shape(path: Path, keys: tuple[str, ...]) -> tuple[int, ...] | None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name.lower().removesuffix(".npy"): name for name in archive.namelist()}
            key = next((k for k in keys if k in members), None)
            if key is None:
                return None
            with archive.open(members[key]) as member:
                version = np.lib.format.read_magic(member)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, _ = read(member)
    except (OSError, ValueError, zipfile.BadZipFile):
        return None
    return tuple(shape)
