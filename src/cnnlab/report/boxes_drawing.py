"""Drawing detections on a picture: box outlines with a label (and score) on a filled tag, for every detector.

Boxes are ``xyxy`` absolute pixel corners (continuous coordinates: a box over pixel columns 0..9 has x1 = 0,
x2 = 10). One colour per label name, so every "RBC" box of a picture has the same colour; the tag text is black
or white, whichever reads better on the tag colour. Tags sit above the box, or just inside it when the box
touches the top edge, and are shifted left to stay in the picture. The font is Pillow's default (no font file
is read from the system), sized to the picture.

>>> import numpy as np
>>> picture = draw_boxes(np.zeros((60, 80, 3), np.uint8), [[10, 20, 50, 55]], ["face"], [0.97])
>>> picture.shape, picture.dtype, picture[40, 10].tolist()  # the left edge now has the first palette colour
((60, 80, 3), dtype('uint8'), [31, 119, 180])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from cnnlab.core.errors import DataError

Colour = tuple[int, int, int]

PALETTE: tuple[Colour, ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)
"""matplotlib's ``tab10`` colours: distinct, and the ones the plots of cnnlab use."""


def _as_boxes(boxes: torch.Tensor | np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    array = np.asarray(boxes.detach().cpu() if isinstance(boxes, torch.Tensor) else boxes, dtype=np.float64)
    if array.size == 0:
        return array.reshape(0, 4)
    if array.ndim != 2 or array.shape[1] != 4:
        raise DataError(
            f"boxes must be (N, 4) xyxy corners, got shape {array.shape}",
            where="draw_boxes",
            fix="pass one row per box",
        )
    return array


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise DataError(
            f"image must be uint8 (H, W), (H, W, 1) or (H, W, 3), got {image.dtype} {image.shape}",
            where="draw_boxes",
            fix="pass the picture as read by cnnlab.data.images.read_image",
        )
    return (
        np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=2)
        if image.ndim == 2 or image.shape[2] == 1
        else image
    )


def label_colours(labels: Sequence[str]) -> dict[str, Colour]:
    """One palette colour per distinct label, in order of first appearance (the palette repeats after ten).

    >>> label_colours(["cat", "dog", "cat"])
    {'cat': (31, 119, 180), 'dog': (255, 127, 14)}
    """
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(dict.fromkeys(labels))}


def _text_colour(background: Colour) -> Colour:
    luminance = 0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2]  # ITU-R BT.601 weights
    return (0, 0, 0) if luminance > 140 else (255, 255, 255)


def draw_boxes(
    image: np.ndarray,
    boxes: torch.Tensor | np.ndarray | Sequence[Sequence[float]],
    labels: Sequence[str],
    scores: Sequence[float] | torch.Tensor | np.ndarray | None = None,
    colours: Sequence[Colour] | None = None,
) -> np.ndarray:
    """A copy of ``image`` (uint8 HWC, grey or RGB) as RGB uint8 ``(H, W, 3)`` with each ``xyxy`` box outlined and
    tagged ``"label score"`` (score with two decimals; no score when ``scores`` is None). ``colours``: one RGB
    colour per box; by default one per label name (:func:`label_colours`). Boxes may reach past the border.

    >>> import numpy as np
    >>> out = draw_boxes(np.full((40, 40), 200, np.uint8), np.array([[0, 0, 40, 40]]), ["x"], colours=[(255, 0, 0)])
    >>> out[39, 20].tolist(), out.shape
    ([255, 0, 0], (40, 40, 3))
    """
    rgb = _as_rgb(image)
    array = _as_boxes(boxes)
    count = len(array)
    score_list = None if scores is None else [float(s) for s in np.asarray(scores, dtype=np.float64).reshape(-1)]
    for name, values in (("labels", labels), ("scores", score_list), ("colours", colours)):
        if values is not None and len(values) != count:
            raise DataError(
                f"{count} boxes but {len(values)} {name}", where="draw_boxes", fix=f"pass one of {name} per box"
            )
    by_label = label_colours(labels)
    picture = Image.fromarray(rgb)
    draw = ImageDraw.Draw(picture)
    height, width = rgb.shape[:2]
    line = max(1, round(min(height, width) / 200))
    font = ImageFont.load_default(size=max(10, round(min(height, width) / 40)))
    for i, (x1, y1, x2, y2) in enumerate(array):
        colour = tuple(colours[i]) if colours is not None else by_label[labels[i]]
        # PIL's rectangle includes its far corner pixel; a box over columns x1..x2-1 ends at pixel x2 - 1.
        left, top = max(0, round(x1)), max(0, round(y1))
        right, bottom = min(width - 1, round(x2) - 1), min(height - 1, round(y2) - 1)
        if right < left or bottom < top:
            continue  # the box lies outside the picture: nothing to draw
        draw.rectangle((left, top, right, bottom), outline=colour, width=line)
        text = labels[i] if score_list is None else f"{labels[i]} {score_list[i]:.2f}"
        _draw_tag(draw, text, font, colour, (left, top), (width, height), line)
    return np.asarray(picture, dtype=np.uint8).copy()


def _draw_tag(
    draw: ImageDraw.ImageDraw,
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    colour: Colour,
    corner: tuple[int, int],
    size: tuple[int, int],
    pad: int,
) -> None:
    """A filled tag with ``text`` above the box corner, or just inside the box when there is no room above."""
    text_left, text_top, text_right, text_bottom = draw.textbbox((0, 0), text, font=font)
    tag_width, tag_height = text_right - text_left + 2 * pad + 2, text_bottom - text_top + 2 * pad
    x = min(max(corner[0], 0), max(size[0] - tag_width, 0))
    y = corner[1] - tag_height if corner[1] >= tag_height else corner[1]
    draw.rectangle((x, y, x + tag_width - 1, y + tag_height - 1), fill=colour)
    draw.text((x + pad + 1 - text_left, y + pad - text_top), text, font=font, fill=_text_colour(colour))
