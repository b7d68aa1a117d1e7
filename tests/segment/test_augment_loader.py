"""Elastic deformation and the joint image/mask loader: masks follow images, batches are reproducible."""

from __future__ import annotations

import torch

from cnnlab.data.augment import Compose, RandomCrop, Rescale, from_spec
from cnnlab.data.elastic import ElasticDeform
from cnnlab.data.loader import TensorLoader


def _labelled(n: int = 4, size: int = 32) -> torch.Tensor:
    """Images whose pixel values are their own class labels (0..3 in blocks)."""
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    labels = (y // (size // 2)) * 2 + x // (size // 2)  # four quadrants
    return labels.to(torch.uint8)[None].repeat(n, 1, 1)


def test_elastic_moves_image_and_mask_together_and_keeps_mask_values():
    masks = _labelled()
    images = masks[:, None] * 60  # (B, 1, H, W) uint8, a scaled copy of the mask
    warped, warped_masks = Compose([ElasticDeform(sigma=4.0)]).pair(images, masks, torch.Generator().manual_seed(3))
    assert not torch.equal(warped_masks, masks)  # it did move
    assert set(warped_masks.unique().tolist()) <= {0, 1, 2, 3}  # nearest sampling: no new classes
    # Bilinear image vs nearest mask differ only on the seams between quadrants.
    agree = (warped[:, 0] == warped_masks * 60).float().mean()
    assert agree > 0.9


def test_elastic_is_registered_and_sigma_zero_is_the_identity():
    pipeline = from_spec([{"name": "elastic", "sigma": 0.0}])
    x = torch.rand(2, 1, 9, 9)
    torch.testing.assert_close(pipeline(x), x)


def test_loader_is_seeded_per_epoch_and_resumes_mid_epoch():
    masks = _labelled(6)
    images = masks[:, None] * 60
    transform = Compose([RandomCrop(16), ElasticDeform(sigma=2.0), Rescale()])
    loader = TensorLoader(
        images, masks, batch_size=4, shuffle=True, seed=5, transform=transform, repeats=2, target_kind="mask"
    )
    first = list(loader.batches(epoch=1))
    assert len(loader) == len(first) == 3
    again = list(loader.batches(epoch=1, start=1))
    for (x, y), (x2, y2) in zip(first[1:], again, strict=True):
        assert torch.equal(x, x2) and torch.equal(y, y2)
    other = next(loader.batches(epoch=2))
    assert not torch.equal(other[0], first[0][0])
    for x, y in first:
        assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape[-2:] == y.shape[-2:] == (16, 16)
