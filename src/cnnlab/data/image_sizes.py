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
from cnnlab.data.images import image_info, is_image_file


def choose_image_size(sides: list[int], largest: int = 224) -> int:
    """One side for images whose shorter sides are ``sides``: their median, rounded to a multiple of 8, within
    16 .. ``largest``."""
    median = sorted(sides)[len(sides) // 2]
    return max(16, min(largest, round(median / 8) * 8))


def folder_image_sizes(folder: Path) -> list[tuple[int, int]]:
    """``(width, height)`` of every image file under ``folder`` (unreadable ones are left to the loader, which
    names them)."""
    sizes = []
    for file in sorted(f for f in folder.rglob("*") if is_image_file(f)):
        with contextlib.suppress(DataError):
            sizes.append(image_info(file)[0])
    return sizes


def size_note(side: int, sizes: list[tuple[int, int]]) -> str:
    """The log line for a chosen side."""
    shortest, longest = min(min(s) for s in sizes), max(max(s) for s in sizes)
    return f"image size {side}x{side}: the images range from {shortest} to {longest} px (--img-size sets it)"
