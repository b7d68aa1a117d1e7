"""draw_boxes: outlines land on the box edges in the box's colour, tags stay readable and inside the picture,
boxes at or past the border do not crash, bad input is a DataError."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnlab.core.errors import DataError
from cnnlab.report.boxes_drawing import PALETTE, draw_boxes, label_colours

GREY = 90


def canvas(height: int = 120, width: int = 160) -> np.ndarray:
    return np.full((height, width, 3), GREY, np.uint8)


def test_outline_pixels_take_the_box_colour_and_the_inside_stays() -> None:
    red = (255, 0, 0)
    out = draw_boxes(canvas(), torch.tensor([[40.0, 50.0, 100.0, 110.0]]), ["face"], [0.9], colours=[red])
    # continuous corners: the box covers columns 40..99 and rows 50..109, so its outline runs along them
    for y, x in [(50, 70), (109, 70), (80, 40), (80, 99)]:
        assert tuple(out[y, x]) == red, (y, x)
    assert tuple(out[80, 70]) == (GREY,) * 3  # inside the box
    assert tuple(out[80, 101]) == (GREY,) * 3  # just right of the box
    assert tuple(out[115, 70]) == (GREY,) * 3  # below the box


def test_the_tag_sits_above_the_box_in_its_colour_with_contrasting_text() -> None:
    yellow = (255, 255, 0)  # bright: the text must be dark
    out = draw_boxes(canvas(), [[40, 60, 100, 110]], ["cell"], [0.5], colours=[yellow])
    above = out[:60, 40:100].reshape(-1, 3)
    colours = {tuple(p) for p in above}
    assert yellow in colours
    assert any(max(p) < 100 for p in colours), "no dark text pixels on the bright tag"
    assert {tuple(p) for p in out[:60, 110:].reshape(-1, 3)} == {(GREY,) * 3}  # nothing drawn far right of it


@pytest.mark.parametrize(
    "box",
    [
        [0, 0, 160, 120],  # the whole picture: no room above for the tag
        [150, 110, 200, 180],  # bottom-right corner, past the border
        [-30, -30, 10, 10],  # top-left corner, past the border
        [140, 0, 160, 8],  # a tiny box at the right edge: the tag is wider than the room left
        [300, 300, 400, 400],  # entirely outside: nothing to draw
    ],
)
def test_boxes_at_the_border_do_not_crash_and_keep_the_size(box: list[int]) -> None:
    out = draw_boxes(canvas(), [box], ["a label that is long"], [0.123])
    assert out.shape == (120, 160, 3) and out.dtype == np.uint8


def test_the_tag_is_pulled_left_to_stay_in_the_picture() -> None:
    blue = (0, 0, 255)
    out = draw_boxes(canvas(), [[150, 60, 160, 100]], ["a long label"], colours=[blue])
    tag_columns = np.nonzero((out[:60] == blue).all(-1).any(0))[0]
    assert tag_columns.min() < 130  # the tag starts well left of the box (x1 = 150) ...
    assert tag_columns.max() == 159  # ... and ends at the border


def test_one_colour_per_label_by_default() -> None:
    boxes = [[10, 30, 40, 60], [60, 30, 90, 60], [110, 30, 140, 60]]
    out = draw_boxes(canvas(), boxes, ["RBC", "WBC", "RBC"])
    left_edges = [tuple(out[45, x]) for x in (10, 60, 110)]
    assert left_edges[0] == left_edges[2] == PALETTE[0]
    assert left_edges[1] == PALETTE[1]
    assert label_colours(["b", "a", "b", "c"]) == {"b": PALETTE[0], "a": PALETTE[1], "c": PALETTE[2]}


def test_grey_pictures_come_back_rgb_and_the_input_is_not_changed() -> None:
    grey = np.full((50, 50), 10, np.uint8)
    out = draw_boxes(grey, np.array([[5.0, 20.0, 45.0, 45.0]]), ["x"])
    assert out.shape == (50, 50, 3)
    assert (grey == 10).all()
    assert draw_boxes(grey, np.zeros((0, 4)), []).shape == (50, 50, 3)


@pytest.mark.parametrize(
    ("image", "boxes", "labels", "scores", "message"),
    [
        (canvas(), [[0, 0, 10, 10]], ["a", "b"], None, "1 boxes but 2 labels"),
        (canvas(), [[0, 0, 10, 10]], ["a"], [0.1, 0.2], "1 boxes but 2 scores"),
        (canvas(), [[0, 0, 10]], ["a"], None, "boxes must be"),
        (canvas().astype(np.float32), [[0, 0, 10, 10]], ["a"], None, "image must be uint8"),
    ],
)
def test_bad_input_says_what_to_pass(image, boxes, labels, scores, message) -> None:
    with pytest.raises(DataError, match=message):
        draw_boxes(image, boxes, labels, scores)
