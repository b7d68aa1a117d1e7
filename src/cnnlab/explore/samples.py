"""Built-in pictures to explore without an image at hand: the patterns the course's first filters respond to.

>>> sorted(SAMPLES)
['checkerboard', 'diagonal stripes', 'disc', 'gradient', 'vertical edge']
>>> picture = sample("vertical edge")
>>> picture.size, picture.getpixel((10, 80)), picture.getpixel((150, 80))  # bright left, dark right
((160, 160), (230, 230, 230), (30, 30, 30))
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from cnnlab.core.errors import ConfigError

SIDE = 160


def _grid() -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[:SIDE, :SIDE]


def _vertical_edge() -> np.ndarray:
    _, xx = _grid()
    return np.where(xx < SIDE // 2, 230, 30)


def _diagonal_stripes() -> np.ndarray:
    yy, xx = _grid()
    return np.where(((xx + yy) // 16) % 2 == 0, 220, 40)


def _disc() -> np.ndarray:
    yy, xx = _grid()
    return np.where((yy - SIDE / 2) ** 2 + (xx - SIDE / 2) ** 2 < (SIDE / 3) ** 2, 230, 30)


def _checkerboard() -> np.ndarray:
    yy, xx = _grid()
    return np.where((yy // 20 + xx // 20) % 2 == 0, 230, 30)


def _gradient() -> np.ndarray:
    _, xx = _grid()
    return xx * 255 // (SIDE - 1)


SAMPLES: dict[str, Callable[[], np.ndarray]] = {
    "vertical edge": _vertical_edge,
    "diagonal stripes": _diagonal_stripes,
    "disc": _disc,
    "checkerboard": _checkerboard,
    "gradient": _gradient,
}
"""Name -> grey pattern ``(SIDE, SIDE)``; :func:`sample` gives it as an RGB picture (the disc in colour)."""


def sample(name: str) -> Image.Image:
    """The built-in picture ``name`` as a ``SIDE x SIDE`` RGB image."""
    if name not in SAMPLES:
        raise ConfigError(f"no built-in picture '{name}'", where="sample", fix=f"use one of {', '.join(SAMPLES)}")
    grey = SAMPLES[name]().astype(np.uint8)
    rgb = np.stack([grey, grey, grey], axis=2)
    if name == "disc":
        rgb[..., 2] = 255 - grey  # a yellow disc on blue: the colour channels differ
    return Image.fromarray(rgb)
