"""U-Net: Ronneberger, Fischer, Brox, "U-Net: Convolutional Networks for Biomedical Image Segmentation",
MICCAI 2015.

The 2015 layout: a contracting path of ``depth`` levels (two unpadded 3x3 conv + ReLU, then a 2x2
max-pool), a bottleneck, and an expanding path (2x2 up-convolution halving the channels, the
centre-cropped skip features concatenated, two 3x3 conv + ReLU), then a 1x1 conv to ``num_classes``
output maps. Widths double per level from ``base_width`` (64 -> 1024 at depth 4). No parameter
count is given in the paper; at 1 input channel, 2 classes, depth 4 and width 64 there are
31,030,658, and a 572x572 tile gives a 388x388 map (Figure 1).

``padding="same"`` pads the 3x3 convs so the output has the input's size (the common modern
choice; the input side must then be divisible by ``2**depth``). With ``"valid"`` (the paper) only
some sizes work; :meth:`UNet.output_size` says which and the forward pass raises early otherwise.
``batch_norm=True`` puts a BatchNorm after every 3x3 conv (the convs lose their bias), the usual
modern variant: it trains much faster from scratch on small datasets.

>>> import torch
>>> unet(in_chans=1, num_classes=2, depth=2, base_width=8, padding="same")(torch.zeros(2, 1, 32, 32)).shape
torch.Size([2, 2, 32, 32])
>>> UNet.output_size(572), UNet.output_size(64, padding="same")
(388, 64)
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from cnnlab.core.errors import ConfigError, ShapeError
from cnnlab.models.registry import register_model

PAPER = "Ronneberger et al. 2015, U-Net: Convolutional Networks for Biomedical Image Segmentation"

Padding = Literal["valid", "same"]


def double_conv(c_in: int, c_out: int, padding: Padding, batch_norm: bool = False) -> nn.Sequential:
    """Two 3x3 conv (+ BN) + ReLU (keys ``.0`` and ``.2`` without BN); each unpadded conv trims 2 pixels."""
    pad = 1 if padding == "same" else 0
    layers: list[nn.Module] = []
    for c in (c_in, c_out):
        layers.append(nn.Conv2d(c, c_out, 3, padding=pad, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def center_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The central ``height`` x ``width`` window of ``(B, C, H, W)`` maps (the paper's skip cropping)."""
    top, left = (x.shape[-2] - height) // 2, (x.shape[-1] - width) // 2
    return x[..., top : top + height, left : left + width]


class UNet(nn.Module):
    """``down`` levels, ``bottleneck``, ``up`` (up-convs) with ``decode`` blocks, ``head`` 1x1 conv."""

    first_conv = "down.0.0"
    classifier_layers = ("head",)

    def __init__(
        self,
        num_classes: int = 2,
        in_chans: int = 1,
        depth: int = 4,
        base_width: int = 64,
        padding: Padding = "valid",
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if padding not in ("valid", "same"):
            raise ConfigError(f"UNet: padding must be 'valid' or 'same'. Received: padding={padding!r}")
        if depth < 1 or base_width < 1:
            raise ConfigError(f"UNet: depth and base_width must be >= 1. Received: depth={depth}, width={base_width}")
        self.depth = depth
        self.padding = padding
        widths = [base_width * 2**level for level in range(depth + 1)]
        self.down = nn.ModuleList(
            double_conv(in_chans if level == 0 else widths[level - 1], widths[level], padding, batch_norm)
            for level in range(depth)
        )
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = double_conv(widths[depth - 1], widths[depth], padding, batch_norm)
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[lv + 1], widths[lv], 2, 2) for lv in reversed(range(depth)))
        self.decode = nn.ModuleList(
            double_conv(2 * widths[lv], widths[lv], padding, batch_norm) for lv in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    @property
    def size_multiple(self) -> int:
        """What the input sides must be divisible by in one 'same'-padded pass (``2**depth``); 1 for 'valid'
        (whose sizes :meth:`output_size` checks; :func:`~cnnlab.tasks.segment.tiling.predict_tiled` handles them)."""
        return 2**self.depth if self.padding == "same" else 1

    @staticmethod
    def output_size(n: int, depth: int = 4, padding: Padding = "valid") -> int:
        """Output side for an input side ``n``; raises :class:`ShapeError` if ``n`` does not fit.

        >>> UNet.output_size(570)
        Traceback (most recent call last):
        ...
        cnnlab.core.errors.ShapeError: UNet: input size 570 does not fit depth 4 with 'valid' padding (level 1 ...
        """
        trim = 0 if padding == "same" else 4
        size = n
        for level in range(depth):
            size -= trim
            if size < 2 or size % 2:
                raise ShapeError(
                    f"UNet: input size {n} does not fit depth {depth} with '{padding}' padding "
                    f"(level {level} gets {size}, which cannot be halved by the 2x2 pool)",
                    fix=f"use an input size such as {_nearest_valid(n, depth, padding)}",
                )
            size //= 2
        size -= trim
        if size < max(1, trim):  # the decoder's 2 * size - trim must stay positive
            raise ShapeError(
                f"UNet: input size {n} is too small for depth {depth} with '{padding}' padding",
                fix=f"use at least {_nearest_valid(1, depth, padding)} or less depth",
            )
        for _ in range(depth):
            size = 2 * size - trim
        return size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for side in x.shape[-2:]:
            self.output_size(side, self.depth, self.padding)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)  # (B, w, h, w) at this level
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, block, skip in zip(self.up, self.decode, reversed(skips), strict=True):
            x = up(x)  # (B, w, 2h, 2w)
            x = block(torch.cat([center_crop(skip, x.shape[-2], x.shape[-1]), x], dim=1))
        return self.head(x)  # (B, num_classes, H', W')


def _nearest_valid(n: int, depth: int, padding: Padding) -> int:
    """Smallest fitting input side >= ``n``: ``2**depth * b + trim * (2**depth - 1)`` with bottleneck input ``b``."""
    trim = 0 if padding == "same" else 4
    scale = 2**depth
    b = max(1, 2 * trim, -(-(n - trim * (scale - 1)) // scale))  # bottleneck output b - trim >= trim
    return scale * b + trim * (scale - 1)


@register_model("unet", paper=PAPER, default_input=(1, 572, 572), task="segment")
def unet(
    num_classes: int = 2,
    in_chans: int = 1,
    depth: int = 4,
    base_width: int = 64,
    padding: Padding = "valid",
    batch_norm: bool = False,
) -> UNet:
    """U-Net with ``num_classes`` output maps; 31,030,658 parameters in the 2015 configuration."""
    return UNet(num_classes, in_chans, depth, base_width, padding, batch_norm)
