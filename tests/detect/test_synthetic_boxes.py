"""The synthetic digits detection set: boxes tightly enclose each digit's ink, counts stay in range, overlaps
stay below IoU 0.3 (pycocotools' IoU as the reference), seeds reproduce, and what is written reads back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.data.boxes import read_boxes
from cnnlab.data.synthetic_boxes import (
    MAX_IOU,
    BoxTensors,
    digit_canvases,
    localisation_targets,
    mnist_glyphs,
    single_digit_canvases,
    sklearn_glyphs,
    write_synthetic,
)


@pytest.fixture(scope="module")
def glyphs() -> tuple[np.ndarray, np.ndarray]:
    return sklearn_glyphs()


def _valid(targets: torch.Tensor) -> list[torch.Tensor]:
    return [rows[rows[:, 0] >= 0] for rows in targets]


def test_every_box_is_the_tight_box_of_its_digit(glyphs: tuple[np.ndarray, np.ndarray]) -> None:
    single = digit_canvases(*glyphs, count=40, size=(64, 64), per_image=(1, 1), seed=3)
    for image, rows in zip(single.images, _valid(single.targets), strict=True):
        ink_rows, ink_cols = torch.nonzero(image[0], as_tuple=True)  # one digit: its ink is the image's ink
        expected = [ink_cols.min(), ink_rows.min(), ink_cols.max() + 1, ink_rows.max() + 1]
        assert rows[0, 1:].tolist() == [float(v) for v in expected]
    many = digit_canvases(*glyphs, count=40, size=(96, 96), per_image=(2, 4), seed=4)
    for image, rows in zip(many.images, _valid(many.targets), strict=True):
        covered = torch.zeros(96, 96, dtype=torch.bool)
        for x1, y1, x2, y2 in rows[:, 1:].long().tolist():
            covered[y1:y2, x1:x2] = True
            ink = image[0, y1:y2, x1:x2] > 0
            # tight: the box's first and last rows and columns all hold ink
            assert ink[0].any() and ink[-1].any() and ink[:, 0].any() and ink[:, -1].any()
        assert not (image[0][~covered] > 0).any()  # no ink outside every box


def test_labels_are_the_pasted_glyphs_classes() -> None:
    """Glyph k is a solid bar k + 1 pixels wide; at scale 1 a box's width tells which glyph it holds."""
    bars = np.zeros((10, 12, 12), np.uint8)
    for k in range(10):
        bars[k, 2:9, 1 : k + 2] = 200
    data = digit_canvases(bars, np.arange(10), count=30, size=(40, 40), per_image=(1, 3), scale=(1, 1), seed=0)
    rows = torch.cat(_valid(data.targets))
    assert torch.equal(rows[:, 3] - rows[:, 1], rows[:, 0] + 1)  # width = class + 1
    assert (rows[:, 4] - rows[:, 2] == 7).all()  # every bar is 7 rows high


def test_counts_in_range_overlap_below_the_limit_and_reproducible(glyphs: tuple[np.ndarray, np.ndarray]) -> None:
    from pycocotools import mask

    data = digit_canvases(*glyphs, count=60, size=(128, 128), per_image=(1, 4), seed=0)
    counts = [len(rows) for rows in _valid(data.targets)]
    assert min(counts) == 1 and max(counts) == 4 and data.targets.shape == (60, 4, 5)
    assert set(data.targets[..., 0].unique().long().tolist()) == set(range(-1, 10))
    for rows in _valid(data.targets):
        xywh = torch.cat([rows[:, 1:3], rows[:, 3:] - rows[:, 1:3]], 1).double().numpy()
        overlaps = np.asarray(mask.iou(xywh, xywh, [0] * len(xywh)))
        assert (overlaps[~np.eye(len(xywh), dtype=bool)] < MAX_IOU).all()
    again = digit_canvases(*glyphs, count=60, size=(128, 128), per_image=(1, 4), seed=0)
    other = digit_canvases(*glyphs, count=60, size=(128, 128), per_image=(1, 4), seed=1)
    assert torch.equal(again.images, data.images) and torch.equal(again.targets, data.targets)
    assert not torch.equal(other.images, data.images)
    assert digit_canvases(*glyphs, count=2, size=(32, 32), channels=3, seed=0).images.shape == (2, 3, 32, 32)


def test_impossible_requests_are_refused(glyphs: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(ConfigError, match="could not place 4 digits on a 20x20 canvas"):
        digit_canvases(*glyphs, count=1, size=(20, 20), per_image=(4, 4), scale=(2.0, 2.0))
    with pytest.raises(ConfigError, match="per_image"):
        digit_canvases(*glyphs, count=1, per_image=(3, 1))
    with pytest.raises(ConfigError, match="glyph 1 has no ink"):
        digit_canvases(np.stack([glyphs[0][0], 0 * glyphs[0][0]]), np.array([0, 1]), count=1)
    huge = digit_canvases(*glyphs, count=3, size=(24, 24), per_image=(1, 1), scale=(9.0, 9.0))
    assert (huge.targets[:, 0, 3:] <= 24).all()  # shrunk to fit the canvas


def test_single_digit_sets_and_the_course_vectors(glyphs: tuple[np.ndarray, np.ndarray]) -> None:
    data = single_digit_canvases(*glyphs, count=50, size=(48, 64), empty=0.3, seed=2)
    blank = data.targets[:, 0, 0] < 0
    assert data.targets.shape == (50, 1, 5) and 5 <= int(blank.sum()) <= 25
    assert data.images[blank].sum() == 0 and (data.images[~blank].flatten(1).amax(1) > 0).all()
    y = localisation_targets(data)
    assert y.shape == (50, 15) and torch.equal(y[:, 0], (~blank).float())
    assert (y[blank] == 0).all()
    # back from [b_x, b_y, b_h, b_w] (fractions of the 64 x 48 image) to corners: the targets again
    bx, by, bh, bw = (y[~blank, 1] * 64, y[~blank, 2] * 48, y[~blank, 3] * 48, y[~blank, 4] * 64)
    corners = torch.stack([bx - bw / 2, by - bh / 2, bx + bw / 2, by + bh / 2], 1)
    torch.testing.assert_close(corners, data.targets[~blank, 0, 1:])
    assert torch.equal(y[~blank, 5:].argmax(1), data.targets[~blank, 0, 0].long())
    with pytest.raises(ConfigError, match="one box per image"):
        localisation_targets(digit_canvases(*glyphs, count=2, size=(64, 64), per_image=(2, 2)))


@pytest.mark.parametrize("form", ["yolo", "voc", "coco"])
def test_written_sets_read_back_with_the_same_boxes_and_pixels(
    tmp_path: Path, glyphs: tuple[np.ndarray, np.ndarray], form: str
) -> None:
    path = write_synthetic(
        tmp_path / "digits", format=form, train=6, val=3, size=(48, 48), per_image=(0, 3), glyphs=glyphs, seed=5
    )
    for split, seed, count in (("train", 5, 6), ("val", 6, 3)):
        read = read_boxes(path.parent / f"{split}.json") if form == "coco" else read_boxes(path, split=split)
        made = digit_canvases(*glyphs, count=count, size=(48, 48), per_image=(0, 3), seed=seed)
        assert read.class_names == made.class_names and len(read) == count
        for record, image, rows in zip(read.records, made.images, _valid(made.targets), strict=True):
            assert np.array_equal(np.asarray(Image.open(record.path)), image[0].numpy())
            assert record.labels.tolist() == rows[:, 0].long().tolist()
            torch.testing.assert_close(record.boxes, rows[:, 1:], atol=1e-4, rtol=0)
    with pytest.raises(DataError, match="not empty"):
        write_synthetic(tmp_path / "digits", format=form, train=1, val=1, glyphs=glyphs)


@pytest.mark.slow
def test_sklearn_glyphs_are_scikit_learns_digits() -> None:
    """The bundled file read directly equals what load_digits gives (slow: importing sklearn.datasets)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    glyphs, labels = sklearn_glyphs(8)  # no upsampling: the pixels scaled 0..16 -> 0..255
    assert np.array_equal(labels, digits.target)
    assert np.array_equal(glyphs, np.rint(digits.images * (255 / 16)).astype(np.uint8))


def test_box_tensors_length() -> None:
    data = BoxTensors(torch.zeros(3, 1, 8, 8, dtype=torch.uint8), torch.full((3, 1, 5), -1.0), ["a"])
    assert len(data) == 3


@pytest.mark.data
def test_mnist_glyphs_make_tight_boxes(shared_data: Path) -> None:
    glyphs, labels = mnist_glyphs(shared_data / "mnist", "test", limit=500)
    assert glyphs.shape == (500, 28, 28) and glyphs.dtype == np.uint8 and set(labels.tolist()) == set(range(10))
    data = digit_canvases(glyphs, labels, count=20, size=(96, 96), per_image=(1, 1), seed=0)
    for image, rows in zip(data.images, data.targets, strict=True):
        ink_rows, ink_cols = torch.nonzero(image[0], as_tuple=True)
        assert rows[0, 1:].tolist() == [ink_cols.min(), ink_rows.min(), ink_cols.max() + 1, ink_rows.max() + 1]
