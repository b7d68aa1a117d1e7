"""Box-moving augmentation: after every geometric transform, the box it moved is the bounding box of the
pixels of the rectangle that box outlined; clipping by hand; the loader's boxes path end to end."""

from __future__ import annotations

import pytest
import torch

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.data.augment import (
    ColorJitter,
    Compose,
    HorizontalFlip,
    MixUp,
    RandomAffine,
    RandomCrop,
    RandomResizedCrop,
    RandomRotation,
    RandomShift,
    RandomZoom,
    Rescale,
    VerticalFlip,
    clip_box_targets,
)
from cnnlab.data.elastic import ElasticDeform
from cnnlab.data.loader import TensorLoader

HEIGHT, WIDTH, PER_IMAGE = 48, 64, 3


def _scene(batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (B, K, H, W) float whose channel k is 1 exactly inside box k (integer corners), and the boxes."""
    generator = torch.Generator().manual_seed(seed)
    sides = torch.randint(6, 20, (batch, PER_IMAGE, 2), generator=generator)
    x1 = (torch.rand(batch, PER_IMAGE, generator=generator) * (WIDTH - sides[..., 0])).floor()
    y1 = (torch.rand(batch, PER_IMAGE, generator=generator) * (HEIGHT - sides[..., 1])).floor()
    boxes = torch.stack([x1, y1, x1 + sides[..., 0], y1 + sides[..., 1]], -1)  # (B, K, 4)
    cols, rows = torch.arange(WIDTH).view(1, 1, 1, -1), torch.arange(HEIGHT).view(1, 1, -1, 1)
    inside = (
        (cols >= boxes[..., 0, None, None])
        & (cols < boxes[..., 2, None, None])
        & (rows >= boxes[..., 1, None, None])
        & (rows < boxes[..., 3, None, None])
    )
    return inside.float(), boxes


def _pixel_box(channel: torch.Tensor, above: float = 0.5) -> list[float] | None:
    """Continuous xyxy box around the pixels above one half (the rectangle's edge after bilinear sampling)."""
    rows, cols = torch.nonzero(channel > above, as_tuple=True)
    if len(rows) == 0:
        return None
    return [float(cols.min()), float(rows.min()), float(cols.max()) + 1, float(rows.max()) + 1]


def _check(images: torch.Tensor, boxes: torch.Tensor, tolerance: float | None) -> int:
    """Every rectangle still (partly) in the picture matches its moved box clipped to the picture (nothing
    dropped: min_size and min_visible 0); returns how many were compared.

    With a ``tolerance`` the box must equal the pixels' box. Without (turns by other angles, shears) the
    shape has sharp corners whose tips fall under one half, so the box is checked to hold the pixels
    above one half and to lie within those above zero (the shape widened by bilinear sampling's half pixel).
    """
    classes = torch.zeros(*boxes.shape[:2], 1)
    clipped = clip_box_targets(torch.cat([classes, boxes], -1), images.shape[-2], images.shape[-1], 0.0, 0.0)
    compared = 0
    for b in range(len(images)):
        for k in range(PER_IMAGE):
            seen, box = _pixel_box(images[b, k]), clipped[b, k, 1:]
            if seen is None:  # gone, or less than half a pixel left inside: no pixel above 0.5
                assert min(box[2] - box[0], box[3] - box[1]) < 1.0
                continue
            if tolerance is not None:
                torch.testing.assert_close(box, torch.tensor(seen), atol=tolerance, rtol=0)
            else:
                inner, outer = torch.tensor(seen), torch.tensor(_pixel_box(images[b, k], 1e-3))
                assert (box[:2] <= inner[:2] + 0.5).all() and (box[2:] >= inner[2:] - 0.5).all()
                assert (box[:2] >= outer[:2] - 0.75).all() and (box[2:] <= outer[2:] + 0.75).all()
            compared += 1
    return compared


CASES = {
    "hflip": (Compose([HorizontalFlip()]), 0.0),
    "vflip": (Compose([VerticalFlip()]), 0.0),
    "crop": (Compose([RandomCrop(size=(40, 40), padding=6)]), 0.0),
    "shift": (Compose([RandomShift(0.3, 0.3)]), 1.0),
    "zoom": (Compose([RandomZoom((0.6, 1.6), keep_aspect=False)]), 1.0),
    "quarter_turns": (Compose([RandomRotation((90, 90)), RandomRotation((-180, -180))]), 1.0),
    "rotation": (Compose([RandomRotation(25)]), None),
    "shear": (Compose([RandomAffine(shear=20)]), None),
    "affine_with_flips": (
        Compose([RandomAffine(degrees=10, translate=(0.1, 0.1), zoom=(0.8, 1.2), hflip=0.5, vflip=0.5)]),
        None,
    ),
    "resized_crop": (Compose([RandomResizedCrop((40, 56), scale=(0.3, 1.0))]), 1.0),
    "everything": (
        Compose(
            [Rescale(1.0), RandomCrop(padding=4), HorizontalFlip(), RandomAffine(degrees=(90, 90), zoom=(0.8, 1.2))]
        ),
        1.0,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_moved_boxes_enclose_the_moved_pixels(name: str) -> None:
    pipeline, tolerance = CASES[name]
    images, boxes = _scene(16, seed=len(name))
    moved_images, moved_boxes = pipeline.joint(images, boxes, "boxes", torch.Generator().manual_seed(7))
    assert moved_boxes.shape == boxes.shape
    assert _check(moved_images, moved_boxes, tolerance) >= 16  # most rectangles stay in view
    if name in ("hflip", "vflip"):
        assert not torch.equal(moved_boxes, boxes)  # some images were flipped, some not (p = 0.5)


def test_quarter_turn_of_a_square_image_is_exact() -> None:
    images, boxes = _scene(4, seed=3)
    square, box = images[..., :HEIGHT], boxes.clamp(max=HEIGHT)  # cut to (B, K, 48, 48) with the boxes
    turned, moved = Compose([RandomRotation((90, 90))]).joint(square, box, "boxes")
    x1, y1, x2, y2 = box.unbind(-1)
    # Counter-clockwise by 90 degrees on screen (y down): (x, y) -> (y, H - x).
    torch.testing.assert_close(moved, torch.stack([y1, HEIGHT - x2, y2, HEIGHT - x1], -1), atol=1e-4, rtol=0)
    assert _check(turned, moved, 1e-4) > 0


def test_colour_changes_leave_boxes_alone_and_other_warps_are_refused() -> None:
    images, boxes = _scene(2, seed=1)
    _, same = Compose([ColorJitter(brightness=0.5)]).joint(images[:, :1].repeat(1, 3, 1, 1), boxes, "boxes")
    assert torch.equal(same, boxes)
    with pytest.raises(ConfigError, match="ElasticDeform cannot move boxes"):
        Compose([ElasticDeform(sigma=3.0)]).joint(images, boxes, "boxes")
    with pytest.raises(ConfigError, match="HorizontalFlip needs the image size to move boxes"):
        HorizontalFlip(p=1.0).apply(boxes, {"flip": torch.ones(2, dtype=torch.bool)}, "boxes")


def test_clip_box_targets_by_hand() -> None:
    targets = torch.tensor(
        [
            [
                [3.0, -10, 5, 30, 25],  # clipped to [0, 5, 30, 20]: 600 of 1000 px left
                [1.0, 35, 0, 39, 10],  # inside, 4 px wide: kept
                [2.0, 39, 0, 50, 10],  # 1 px left inside: too thin
                [4.0, 30, 15, 60, 40],  # 50 of 750 px left (under a quarter)
                [-1.0, 1, 1, 9, 9],  # padding stays padding
            ]
        ]
    )
    out = clip_box_targets(targets, height=20, width=40)
    assert out[0, :, 0].tolist() == [3.0, 1.0, -1.0, -1.0, -1.0]
    assert out[0, 0, 1:].tolist() == [0.0, 5.0, 30.0, 20.0] and out[0, 1, 1:].tolist() == [35.0, 0.0, 39.0, 10.0]
    assert out[0, 2:, 1:].abs().sum() == 0
    assert clip_box_targets(targets, 20, 40, min_size=5.0)[0, 1, 0] == -1  # 4 px wide: below min_size
    assert clip_box_targets(targets, 20, 40, min_visible=0.05)[0, 3, 0] == 4  # 1/15 left: above 0.05


def test_loader_moves_and_clips_boxes_and_keeps_padding() -> None:
    images, boxes = _scene(10, seed=5)
    classes = torch.arange(PER_IMAGE, dtype=torch.float32).expand(10, PER_IMAGE)[..., None]
    targets = torch.cat([classes, boxes], -1)
    targets = torch.cat([targets, torch.tensor([-1.0, 0, 0, 0, 0]).expand(10, 1, 5)], 1)  # (10, K + 1, 5)
    pipeline = Compose([RandomCrop(padding=8), HorizontalFlip(), RandomZoom(0.3)])
    loader = TensorLoader(images, targets, batch_size=4, shuffle=True, seed=2, transform=pipeline, target_kind="boxes")
    first = list(loader.batches(epoch=0))
    assert [tuple(y.shape) for _, y in first] == [(4, 4, 5), (4, 4, 5), (2, 4, 5)]
    assert all(y.dtype == torch.float32 for _, y in first)
    for (x1, y1), (x2, y2) in zip(first, loader.batches(epoch=0), strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)  # reproducible
    for x, y in first:
        assert (y[:, -1, 0] == -1).all()  # the padding row stays padding
        kept = y[..., 0] >= 0
        assert (y[..., 3][kept] - y[..., 1][kept] >= 2).all() and (y[..., 3] <= WIDTH).all()
        for b in range(len(x)):
            for k in range(PER_IMAGE):
                if y[b, k, 0] >= 0:  # a kept row is the box of the rectangle on channel `class`
                    seen = _pixel_box(x[b, int(y[b, k, 0])])
                    torch.testing.assert_close(y[b, k, 1:], torch.tensor(seen), atol=1.0, rtol=0)


def test_loader_refuses_bad_box_targets() -> None:
    images = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(DataError, match=r"box targets must be \(N, M, 5\)"):
        TensorLoader(images, torch.zeros(2, 4), target_kind="boxes")
    with pytest.raises(ConfigError, match="cannot mix box targets"):
        TensorLoader(images, torch.zeros(2, 1, 5), target_kind="boxes", mix=MixUp(num_classes=2))
    plain = TensorLoader(images, torch.tensor([[[1.0, 0, 0, 4, 4]]]).repeat(2, 1, 1), target_kind="boxes")
    assert next(plain.batches())[1].dtype == torch.float32
