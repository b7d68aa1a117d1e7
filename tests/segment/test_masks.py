"""Mask files: 0/255 and 0/1 give the same targets; a third value names the file and the values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.core.errors import DataError
from cnnlab.data.cache import DataWarning
from cnnlab.data.datasets import load_segmentation
from cnnlab.tasks.config import DataConfig
from cnnlab.tasks.segment.config import SegmentConfig, SegmentRunConfig
from cnnlab.tasks.segment.pipeline import load_pairs


def _pairs(root: Path, masks: list[np.ndarray]) -> tuple[Path, Path]:
    images, labels = root / "images", root / "masks"
    images.mkdir(parents=True)
    labels.mkdir()
    for i, mask in enumerate(masks):
        Image.fromarray(np.full(mask.shape, 100, np.uint8)).save(images / f"{i}.png")
        Image.fromarray(mask.astype(np.uint8)).save(labels / f"{i}.png")
    return images, labels


def test_0_255_and_0_1_masks_load_to_the_same_targets(tmp_path):
    rng = np.random.default_rng(0)
    binary = [(rng.random((12, 10)) > 0.5).astype(np.uint8) for _ in range(3)]
    a = load_segmentation(*_pairs(tmp_path / "a", [m * 255 for m in binary]))
    b = load_segmentation(*_pairs(tmp_path / "b", binary))
    assert a.targets.shape == (3, 12, 10)
    assert a.targets.tolist() == b.targets.tolist() == [m.tolist() for m in binary]


def test_a_third_value_fails_with_file_name_and_values(tmp_path):
    bad = np.zeros((8, 8), np.uint8)
    bad[0, 0], bad[1, 1] = 128, 255
    images, masks = _pairs(tmp_path, [np.zeros((8, 8), np.uint8), bad])
    with pytest.raises(DataError) as info:
        load_segmentation(images, masks)
    message = str(info.value)
    assert str(masks / "1.png") in message and "[0, 128, 255]" in message


def test_class_index_masks_and_the_run_split(tmp_path):
    masks = [np.full((8, 8), i % 3, np.uint8) for i in range(6)]
    images, labels = _pairs(tmp_path, masks)
    config = SegmentRunConfig(
        data=DataConfig(source=str(images), val_fraction=1 / 3),
        segment=SegmentConfig(masks=str(labels), num_classes=3),
    )
    train, held = load_pairs(config)
    assert len(train) == 4 and held is not None and len(held) == 2
    assert train.classes == ["0", "1", "2"]
    assert sorted(set(train.paths) | set(held.paths)) == sorted(str(images / f"{i}.png") for i in range(6))


def test_data_inspect_reports_mask_encoding_balance_and_size_mismatch(tmp_path, capsys):
    from cnnlab.cli.app import main

    images, masks = _pairs(tmp_path, [np.eye(8, dtype=np.uint8), np.ones((8, 8), np.uint8)])
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(masks / "1.png")  # now 8x6 against an 8x8 image
    assert main(["data", "inspect", str(images), "--masks", str(masks), "--grid", str(tmp_path / "g.png")]) == 0
    out = capsys.readouterr().out
    assert "mask values: 0/1 (2 files)" in out
    assert "87.5%" in out and "12.5%" in out  # class balance of the pair that loaded: 56 vs 8 pixels
    assert "skipped" in out and "image is 8x8 but its mask is 8x6" in out


def test_binary_jpeg_masks_are_thresholded_once_and_a_grey_jpeg_is_still_refused(tmp_path):
    """JPEG masks (common in downloaded sets) hold 0/255 blurred by compression: read at 128, said once."""
    rng = np.random.default_rng(0)
    truth = [np.zeros((40, 48), np.uint8) for _ in range(3)]
    for mask in truth:
        y, x = rng.integers(5, 30, 2)
        mask[y : y + 10, x : x + 12] = 1
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for i, mask in enumerate(truth):
        Image.fromarray(np.full(mask.shape, 100, np.uint8)).save(images / f"{i}.png")
        Image.fromarray(mask * 255).save(masks / f"{i}.jpg", quality=75)
    assert len(np.unique(np.asarray(Image.open(masks / "0.jpg")))) > 2  # the blur this is about
    with pytest.warns(DataWarning, match="3 JPEG mask") as caught:
        data = load_segmentation(images, masks)
    assert len(caught) == 1
    agreement = (data.targets.numpy() == np.stack(truth)).mean()
    assert agreement > 0.995, agreement
    grey = np.full((40, 48), 128, np.uint8)  # a real third value, not compression
    Image.fromarray(grey).save(masks / "0.jpg", quality=95)
    with pytest.raises(DataError, match="unexpected values"):
        load_segmentation(images, masks)
