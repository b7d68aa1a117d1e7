"""Overlap-tile inference against whole-image inference."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.models import create_model
from cnnlab.tasks.segment.tiling import predict_tiled


def test_overlap_tiles_of_a_512_image_match_the_whole_image_for_a_same_padded_unet():
    torch.manual_seed(0)
    net = create_model("unet", num_classes=2, in_chans=1, depth=2, base_width=4, padding="same").eval()
    image = torch.rand(1, 1, 512, 512)
    with torch.inference_mode():
        whole = net(image)
        tiled = predict_tiled(net, image, tile=256, margin=32)  # 3x3 tiles; tile and margin on the 4x4 pool grid
    assert tiled.shape == whole.shape
    # Away from the image border both see the same context: equal up to float summation order.
    inner = (..., slice(32, -32), slice(32, -32))
    torch.testing.assert_close(tiled[inner], whole[inner], atol=1e-4, rtol=1e-4)
    # At the border the whole image sees zero padding, the tiles mirrored pixels: nearly the same labels.
    agree = (tiled.argmax(1) == whole.argmax(1)).float().mean().item()
    assert agree > 0.98


def test_tiles_equal_the_whole_image_exactly_when_padding_matches():
    torch.manual_seed(0)
    net = nn.Conv2d(1, 3, 5, padding=2).eval()  # zero 'same' padding == constant-padded tiles
    image = torch.rand(2, 1, 100, 70)
    with torch.inference_mode():
        tiled = predict_tiled(net, image, tile=24, margin=4, pad_mode="constant")
        torch.testing.assert_close(tiled, net(image))


@pytest.mark.parametrize("size", [(37, 53), (200, 130)])
def test_an_unpadded_unet_segments_any_image_size(size):
    net = create_model("unet", num_classes=3, in_chans=1, depth=1, base_width=4, padding="valid").eval()
    # depth 1, unpadded: a 44x44 tile gives a 28x28 map; the trim (8) becomes the margin
    with torch.inference_mode():
        out = predict_tiled(net, torch.rand(1, 1, *size), tile=44, margin=2)
    assert out.shape == (1, 3, *size) and torch.isfinite(out).all()
