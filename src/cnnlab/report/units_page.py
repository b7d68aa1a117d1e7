"""The "what is my ConvNet learning" page: per layer, per unit, a 3x3 grid of the image patches that excite the
unit most and the image optimised to excite it, in one self-contained HTML file (PNGs embedded as base64).

This module only lays out pictures it is given (uint8 arrays); ``cnnlab.explain.units`` and
``cnnlab.explain.maximise`` make them. Small pictures are enlarged by whole pixels (nearest neighbour), so a
5x5 patch stays five crisp squares wide.

>>> import tempfile, pathlib
>>> import numpy as np
>>> patch = PatchView(np.zeros((5, 5, 1), np.uint8), "a.png, activation 1.5")
>>> layer = LayerView("features.1", "32 units, field 5x5", [UnitView(3, [patch] * 9, np.ones((28, 28, 1)))])
>>> page = write_units_page(pathlib.Path(tempfile.mkdtemp()) / "units.html", "cnn_small", ["one line"], [layer])
>>> text = page.read_text()
>>> text.count("<img "), "unit 3" in text, "a.png, activation 1.5" in text
(10, True, True)
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cnnlab.core.errors import ShapeError
from cnnlab.core.rundir import atomic_write_text

PATCH_PIXELS = 72
"""Patches are enlarged by a whole factor to at least this many pixels on their longer side (at most 16x)."""
IMAGE_PIXELS = 112
"""Activation-maximisation images likewise."""


@dataclass(frozen=True)
class PatchView:
    """One patch: its pixels ``(h, w)``, ``(h, w, 1)`` or ``(h, w, 3)`` uint8 and a caption (shown on hover)."""

    pixels: np.ndarray
    caption: str = ""


@dataclass(frozen=True)
class UnitView:
    """One unit: its patches (strongest first) and its activation-maximisation image (uint8, or float in [0, 1];
    ``None``: not made)."""

    unit: int
    patches: Sequence[PatchView]
    maximised: np.ndarray | None = None
    note: str = ""


@dataclass(frozen=True)
class LayerView:
    """One layer: its name, a line about it (units, map size, field) and its units."""

    layer: str
    note: str
    units: Sequence[UnitView]


def write_units_page(path: str | Path, title: str, intro: Sequence[str], layers: Sequence[LayerView]) -> Path:
    """Write the page to ``path`` (atomically) and return the path; ``intro`` lines go under the title."""
    atomic_write_text(path, units_page(title, intro, layers))
    return Path(path)


def units_page(title: str, intro: Sequence[str], layers: Sequence[LayerView]) -> str:
    """The page as one HTML string.

    >>> units_page("t", [], []).count("<section")
    0
    """
    nav = " ".join(f'<a href="#{_anchor(view.layer)}">{html.escape(view.layer)}</a>' for view in layers)
    sections = "\n".join(_section(view) for view in layers)
    paragraphs = "\n".join(f"<p>{html.escape(line)}</p>" for line in intro)
    return _TEMPLATE.format(title=html.escape(title), intro=paragraphs, nav=nav, body=sections)


def png_data_uri(pixels: np.ndarray, min_side: int = 0) -> str:
    """A ``data:image/png;base64,...`` URI of a uint8 (or [0, 1] float) image, enlarged by a whole factor
    (nearest neighbour, at most 16x) until its longer side is at least ``min_side``.

    >>> png_data_uri(np.zeros((2, 2), np.uint8)).startswith("data:image/png;base64,")
    True
    """
    image = _uint8(pixels)
    factor = min(16, max(1, math.ceil(min_side / max(image.shape[:2]))))
    picture = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
    if factor > 1:
        picture = picture.resize((image.shape[1] * factor, image.shape[0] * factor), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _section(view: LayerView) -> str:
    units = "\n".join(_unit(unit) for unit in view.units)
    return (
        f'<section id="{_anchor(view.layer)}">\n<h2>{html.escape(view.layer)}</h2>\n'
        f'<p>{html.escape(view.note)}</p>\n<div class="units">\n{units}\n</div>\n</section>'
    )


def _unit(view: UnitView) -> str:
    cells = "".join(
        f'<img src="{png_data_uri(p.pixels, PATCH_PIXELS)}" alt="patch {i + 1}" title="{html.escape(p.caption)}">'
        for i, p in enumerate(view.patches)
    )
    if view.maximised is None:
        maximised = '<div class="none">no activation maximisation (--steps 0)</div>'
    else:
        uri = png_data_uri(view.maximised, IMAGE_PIXELS)
        maximised = f'<img class="max" src="{uri}" alt="activation maximisation" title="optimised to excite the unit">'
    note = f'<div class="note">{html.escape(view.note)}</div>' if view.note else ""
    return (
        f'<div class="unit"><h3>unit {view.unit}</h3><div class="row"><div class="grid">{cells}</div>'
        f"{maximised}</div>{note}</div>"
    )


def _uint8(pixels: np.ndarray) -> np.ndarray:
    image = np.asarray(pixels)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3) or 0 in image.shape:
        raise ShapeError(f"expected an image (h, w), (h, w, 1) or (h, w, 3), got shape {image.shape}", where="page")
    if image.dtype != np.uint8:
        image = np.clip(np.rint(image.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    return image


def _anchor(layer: str) -> str:
    return "layer-" + "".join(c if c.isalnum() else "-" for c in layer)


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
nav a {{ margin-right: 1em; }}
.units {{ display: flex; flex-wrap: wrap; gap: 1.2em; }}
.unit h3 {{ font-size: 0.95em; margin: 0.2em 0; }}
.row {{ display: flex; gap: 0.6em; align-items: flex-start; }}
.grid {{ display: grid; grid-template-columns: repeat(3, auto); gap: 2px; }}
.grid img {{ display: block; border: 1px solid #ccc; }}
img.max {{ border: 1px solid #888; }}
.note, .none {{ font-size: 0.8em; color: #555; max-width: 20em; }}
</style>
</head>
<body>
<h1>{title}</h1>
{intro}
<nav>{nav}</nav>
{body}
</body>
</html>
"""
