"""3D U-Net: Cicek, Abdulkadir, Lienkamp, Brox, Ronneberger, "3D U-Net: Learning Dense Volumetric Segmentation
from Sparse Annotation", MICCAI 2016.

Volumes ``(B, C, D, H, W)`` in, per-voxel logits ``(B, num_classes, D, H, W)`` out. The analysis path has
``depth`` levels (the paper: 3) of two 3x3x3 convs, each followed by BatchNorm (``batch_norm``) and ReLU, the
first to ``w`` and the second to ``2w`` channels (``w = base_width * 2**level``), then a 2x2x2 max-pool; the
bottleneck level does the same. The synthesis path up-convolves (2x2x2, stride 2, no bias, channels kept),
concatenates the skip features of the same level and applies two 3x3x3 convs (+ BN) + ReLU to ``2w`` channels;
a 1x1x1 conv gives ``num_classes`` maps. Unlike the paper (unpadded convs, 132x132x116 tiles -> 44x44x28),
the convs are 'same'-padded, so the output has the input's size and every side must be a multiple of
:attr:`UNet3D.size_multiple` (``2**depth``: 8 by default, also the smallest side).

The paper's configuration (3 input channels, 3 classes, ``base_width=32``) has 19,069,955 parameters without
BatchNorm, the paper's count exactly (its BatchNorm scales and shifts, 4,672 more, are left out of that count);
the CPU default ``base_width=16`` with BatchNorm has 4,770,210 at 1 channel and 2 classes.

>>> import torch
>>> model = unet3d(num_classes=3, depth=2, base_width=4)
>>> model(torch.zeros(2, 1, 8, 12, 16)).shape, model.size_multiple
(torch.Size([2, 3, 8, 12, 16]), 4)
>>> sum(p.numel() for p in unet3d(in_chans=3, num_classes=3, base_width=32, batch_norm=False).parameters())
19069955
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.core.errors import ConfigError, ShapeError
from cnnlab.models.registry import register_model

PAPER = "Cicek et al. 2016, 3D U-Net: Learning Dense Volumetric Segmentation from Sparse Annotation"


def double_conv3d(c_in: int, c_mid: int, c_out: int, batch_norm: bool) -> nn.Sequential:
    """3x3x3 conv to ``c_mid`` (+ BN) + ReLU, 3x3x3 conv to ``c_out`` (+ BN) + ReLU; 'same' padding."""
    layers: list[nn.Module] = []
    for a, b in ((c_in, c_mid), (c_mid, c_out)):
        layers.append(nn.Conv3d(a, b, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm3d(b))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class UNet3D(nn.Module):
    """``down`` levels, ``bottleneck``, ``up`` (up-convs) with ``decode`` blocks, ``head`` 1x1x1 conv."""

    first_conv = "down.0.0"
    classifier_layers = ("head",)

    def __init__(
        self, num_classes: int = 2, in_chans: int = 1, depth: int = 3, base_width: int = 16, batch_norm: bool = True
    ) -> None:
        super().__init__()
        for option, value in (("depth", depth), ("base_width", base_width)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"{option} must be a whole number >= 1. Received: {option}={value!r}",
                    where="unet3d",
                    fix="use depth=3 (the paper) and base_width=32 (the paper) or 16 (for a CPU)",
                )
        self.depth = depth
        mids = [base_width * 2**level for level in range(depth + 1)]  # first conv of each level
        outs = [2 * m for m in mids]  # second conv: what each level passes on
        self.down = nn.ModuleList(
            double_conv3d(in_chans if lv == 0 else outs[lv - 1], mids[lv], outs[lv], batch_norm) for lv in range(depth)
        )
        self.pool = nn.MaxPool3d(2)
        self.bottleneck = double_conv3d(outs[depth - 1], mids[depth], outs[depth], batch_norm)
        levels = list(reversed(range(depth)))
        self.up = nn.ModuleList(nn.ConvTranspose3d(outs[lv + 1], outs[lv + 1], 2, 2, bias=False) for lv in levels)
        self.decode = nn.ModuleList(
            double_conv3d(outs[lv + 1] + outs[lv], outs[lv], outs[lv], batch_norm) for lv in levels
        )
        self.head = nn.Conv3d(outs[0], num_classes, 1)

    @property
    def size_multiple(self) -> int:
        """What every input side must be divisible by (``2**depth``: one 2x2x2 pool per level)."""
        return 2**self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sides = tuple(x.shape[2:])
        if x.dim() != 5 or any(n % self.size_multiple for n in sides):
            raise ShapeError(
                f"UNet3D of depth {self.depth} takes (B, C, D, H, W) volumes whose sides are multiples of "
                f"{self.size_multiple}. Received: shape {tuple(x.shape)}",
                where="unet3d",
                fix=f"pad or crop every side to a multiple of {self.size_multiple}, or use less depth",
            )
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)  # (B, 2w, d, h, w) at this level
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, block, skip in zip(self.up, self.decode, reversed(skips), strict=True):
            x = block(torch.cat([skip, up(x)], dim=1))  # up: (B, c, 2d, 2h, 2w)
        return self.head(x)  # (B, num_classes, D, H, W)


@register_model("unet3d", paper=PAPER, default_input=(1, 32, 32, 32), task="sequence", min_size=8)
def unet3d(
    num_classes: int = 2, in_chans: int = 1, depth: int = 3, base_width: int = 16, batch_norm: bool = True
) -> UNet3D:
    """3D U-Net with ``num_classes`` per-voxel logits; ``base_width=32`` is the paper's (16: a CPU default)."""
    return UNet3D(num_classes, in_chans, depth, base_width, batch_norm)
