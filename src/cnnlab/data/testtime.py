"""Deterministic transforms for evaluation and test-time augmentation, on batches.

Resize (shorter side or exact size, antialiased), centre crop, resize-and-pad to a square
keeping the aspect ratio, five-crop and ten-crop (corners + centre, and their mirrors). They
share the :class:`~cnnlab.data.augment.Transform` interface, so they go into a ``Compose``.

>>> from cnnlab.data.augment import Compose, Rescale
>>> x = torch.randint(0, 256, (2, 3, 300, 400), dtype=torch.uint8)
>>> Compose([Resize(256), CenterCrop(224), Rescale()])(x).shape
torch.Size([2, 3, 224, 224])
>>> TenCrop(224)(Resize(256)(x)).shape  # (B, 10, C, h, w): average the 10 predictions
torch.Size([2, 10, 3, 224, 224])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnlab.core.errors import ConfigError
from cnnlab.data.augment import TRANSFORMS, Kind, Params, Transform


def _size(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def resize(x: torch.Tensor, size: tuple[int, int], kind: Kind = "image") -> torch.Tensor:
    """Batched resize of uint8 or float images to ``size`` = (h, w); antialiased bilinear, or nearest for masks."""
    if (x.shape[-2], x.shape[-1]) == size:
        return x
    if kind == "mask":
        return F.interpolate(x, size=size, mode="nearest-exact")
    # uint8 bilinear+antialias runs natively on CPU (no float copy); other dtypes go through float.
    y = x if x.dtype in (torch.uint8, torch.float32) else x.float()
    out = F.interpolate(y, size=size, mode="bilinear", antialias=True, align_corners=False)
    return out.to(x.dtype)


@TRANSFORMS.register("resize")
class Resize(Transform):
    """Resize so the shorter side is ``size`` (an int), or to exactly ``(h, w)``."""

    geometric = True

    def __init__(self, size: int | tuple[int, int]) -> None:
        self.size = size

    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "image") -> torch.Tensor:
        height, width = x.shape[-2], x.shape[-1]
        if isinstance(self.size, int):
            short = min(height, width)
            target = (round(height * self.size / short), round(width * self.size / short))
        else:
            target = _size(self.size)
        return resize(x, target, kind)


def _crop(x: torch.Tensor, top: int, left: int, size: tuple[int, int]) -> torch.Tensor:
    if top < 0 or left < 0 or top + size[0] > x.shape[-2] or left + size[1] > x.shape[-1]:
        raise ConfigError(
            f"crop {size[0]}x{size[1]} does not fit in {x.shape[-2]}x{x.shape[-1]} images",
            where="crop",
            fix="resize to at least the crop size first",
        )
    return x[..., top : top + size[0], left : left + size[1]]


@TRANSFORMS.register("center_crop")
class CenterCrop(Transform):
    """Cut the central ``size`` window."""

    geometric = True

    def __init__(self, size: int | tuple[int, int]) -> None:
        self.size = _size(size)

    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "image") -> torch.Tensor:
        top = (x.shape[-2] - self.size[0]) // 2
        left = (x.shape[-1] - self.size[1]) // 2
        return _crop(x, top, left, self.size)


@TRANSFORMS.register("resize_pad")
class ResizePad(Transform):
    """Fit inside a ``size`` x ``size`` square keeping the aspect ratio, padding the rest with ``fill``.

    >>> ResizePad(8)(torch.full((1, 1, 2, 4), 9, dtype=torch.uint8))[0, 0, :, 0].tolist()
    [0, 0, 9, 9, 9, 9, 0, 0]
    """

    geometric = True

    def __init__(self, size: int, fill: float = 0) -> None:
        self.size, self.fill = size, fill

    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "image") -> torch.Tensor:
        height, width = x.shape[-2], x.shape[-1]
        scale = self.size / max(height, width)
        h, w = max(1, round(height * scale)), max(1, round(width * scale))
        y = resize(x, (h, w), kind)
        top, left = (self.size - h) // 2, (self.size - w) // 2
        pad = (left, self.size - w - left, top, self.size - h - top)
        return F.pad(y, pad, value=0 if kind == "mask" else self.fill)


@TRANSFORMS.register("five_crop")
class FiveCrop(Transform):
    """The four corner crops and the centre crop: ``(B, 5, C, h, w)``."""

    geometric = True

    def __init__(self, size: int | tuple[int, int]) -> None:
        self.size = _size(size)

    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "image") -> torch.Tensor:
        height, width = x.shape[-2], x.shape[-1]
        bottom, right = height - self.size[0], width - self.size[1]
        corners = [(0, 0), (0, right), (bottom, 0), (bottom, right), (bottom // 2, right // 2)]
        return torch.stack([_crop(x, t, left, self.size) for t, left in corners], 1)


@TRANSFORMS.register("ten_crop")
class TenCrop(FiveCrop):
    """Five crops plus the five crops of the mirrored image: ``(B, 10, C, h, w)``."""

    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "image") -> torch.Tensor:
        return torch.cat([super().apply(x, params, kind), super().apply(x.flip(-1), params, kind)], 1)
