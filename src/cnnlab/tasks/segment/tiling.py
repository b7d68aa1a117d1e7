"""Overlap-tile inference (U-Net paper, Fig. 2): logits for images of any size, window by window."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

from cnnlab.core.errors import ConfigError


def predict_tiled(
    model: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    tile: int = 256,
    margin: int = 32,
    pad_mode: Literal["reflect", "constant"] = "reflect",
) -> torch.Tensor:
    """Overlap-tile inference (U-Net paper, Fig. 2): logits ``(B, K, H, W)`` for images of any size.

    The image is mirrored by ``margin`` at its borders and cut into ``tile`` x ``tile`` windows
    overlapping by ``2 * margin``; each window contributes only its centre, where the network saw
    ``margin`` pixels of context on every side. An unpadded ("valid") net returns a smaller map per
    tile; its trim is then the margin (when larger). For a 'same'-padded net keep ``tile`` and
    ``margin`` multiples of ``2**depth`` so every window sits on the pooling grid.

    >>> from cnnlab.models import create_model
    >>> net = create_model("unet", num_classes=2, in_chans=1, depth=2, base_width=4, padding="same").eval()
    >>> predict_tiled(net, torch.rand(1, 1, 50, 70), tile=32, margin=8).shape  # 50x70 fits no 2**depth grid
    torch.Size([1, 2, 50, 70])
    """
    height, width = images.shape[-2:]
    probe = model(images.new_zeros(1, images.shape[1], tile, tile))  # (1, K, tile - 2 trim, ...): the trim
    out_size = probe.shape[-1]
    trim = (tile - out_size) // 2
    keep = max(margin, trim)
    core = tile - 2 * keep
    if core < 1:
        raise ConfigError(
            f"tile {tile} leaves no centre with margin {keep}", where="predict_tiled", fix="use a larger tile"
        )
    rows, cols = -(-height // core), -(-width // core)
    padded = _pad(images, keep, rows * core + keep - height, keep, cols * core + keep - width, pad_mode)
    out = torch.empty(len(images), probe.shape[1], rows * core, cols * core, dtype=probe.dtype)
    for r in range(rows):
        for c in range(cols):
            window = padded[..., r * core : r * core + tile, c * core : c * core + tile]
            logits = model(window)  # (B, K, tile - 2 trim, ...)
            out[..., r * core : (r + 1) * core, c * core : (c + 1) * core] = logits[
                ..., keep - trim : keep - trim + core, keep - trim : keep - trim + core
            ]
    return out[..., :height, :width]


def predict_padded(
    model: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, multiple: int = 1
) -> torch.Tensor:
    """Logits ``(B, K, H, W)`` in one pass for a net that needs sides divisible by ``multiple``
    (a 'same'-padded U-Net of depth d: ``2**d``): the images are mirrored at the bottom and right
    up to the next multiple, and the logits cropped back.

    >>> from cnnlab.models import create_model
    >>> net = create_model("unet", num_classes=2, in_chans=1, depth=2, base_width=4, padding="same").eval()
    >>> predict_padded(net, torch.rand(1, 1, 50, 70), net.size_multiple).shape  # 50x70 is not a multiple of 4
    torch.Size([1, 2, 50, 70])
    """
    height, width = images.shape[-2:]
    padded = _pad(images, 0, -height % multiple, 0, -width % multiple)
    return model(padded)[..., :height, :width]


def _pad(
    x: torch.Tensor, top: int, bottom: int, left: int, right: int, mode: Literal["reflect", "constant"] = "reflect"
) -> torch.Tensor:
    """Pad ``(B, C, H, W)``; mirroring repeats itself where the pad exceeds the image (tiny images)."""
    if mode == "constant":
        return F.pad(x, (left, right, top, bottom))
    while top or bottom or left or right:
        height, width = x.shape[-2:]
        if height < 2 or width < 2:  # nothing to mirror
            return F.pad(x, (left, right, top, bottom), mode="replicate")
        step = (min(left, width - 1), min(right, width - 1), min(top, height - 1), min(bottom, height - 1))
        x = F.pad(x, step, mode="reflect")
        left, right, top, bottom = left - step[0], right - step[1], top - step[2], bottom - step[3]
    return x
