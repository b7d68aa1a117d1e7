"""One image size for a folder whose images differ in size, read from the file headers before any decoding
(classification and segmentation runs choose it when ``--img-size`` is not given, and say so in the log).

>>> choose_image_size([40, 80, 120, 64, 100]), choose_image_size([3000, 4000]), choose_image_size([9, 12])
(80, 224, 16)
>>> choose_image_size([300, 420, 380], largest=512)
384
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from cnnlab.core.errors import DataError
from cnnlab.data.images import image_info, list_image_files


def choose_image_size(sides: list[int], largest: int = 224) -> int:
    """One side for images whose shorter sides are ``sides``: their median, rounded to a multiple of 8, within
    16 .. ``largest``."""
    median = sorted(sides)[len(sides) // 2]
    return max(16, min(largest, round(median / 8) * 8))


def header_sizes(folder: Path, most: int | None = None) -> list[tuple[int, int]]:
    """``(height, width)`` of the images under ``folder`` read from their headers (no decoding): every one, or
    ``most`` spread evenly over the folder's natural order. Unreadable files are left out: the loader names them.

    >>> header_sizes(Path("no-such-folder"))
    []
    """
    files = list_image_files(folder) if folder.is_dir() else []
    if most is not None:
        files = files[:: max(1, len(files) // most)][:most]
    sizes = []
    for file in files:
        with contextlib.suppress(DataError):
            sizes.append(image_info(file)[0])
    return sizes


def size_for_folder(folder: Path, largest: int = 224) -> tuple[int, str] | None:
    """``(side, the log line saying so)`` for the images under ``folder`` when they differ in size (see
    :func:`choose_image_size`), else ``None``; unreadable files are left to the loader, which names them."""
    sizes = header_sizes(folder)
    if len(set(sizes)) <= 1:
        return None
    side = choose_image_size([min(size) for size in sizes], largest)
    shortest, longest = min(min(s) for s in sizes), max(max(s) for s in sizes)
    return side, f"image size {side}x{side}: the images range from {shortest} to {longest} px (--img-size sets it)"
