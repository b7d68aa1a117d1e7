"""U-Net with a pretrained EfficientNet-Lite0 encoder (the "U-Net with an ImageNet backbone" recipe,
e.g. Iglovikov & Shvets 2018, TernausNet, with a VGG11 encoder; here Tan & Le's EfficientNet-Lite0).

The encoder is the zoo's :func:`~cnnlab.models.efficientnet.efficientnet_lite0` without its 1x1 head
conv and classifier; skips are taken where the resolution halves (stride 2, 4, 8, 16) and the
decoder climbs back up (``depth`` levels, 5 by default): bilinear x2, concatenate the skip, two
3x3 conv + BN + ReLU. A last level at full resolution sees two small convs on the input, so thin
structures (EM membranes) keep pixel-level detail. ``encoder_weights`` loads the ImageNet file
(``efficientnet_lite0.imagenet``, in shared/data) into the encoder; a 1-channel input gets the summed
RGB filters of the first conv.
No published parameter count; at 1 input channel, 2 classes and decoder width 16 there are
3,791,282 (2,958,272 in the encoder). Any input size works (skips are resized to fit).

>>> import torch
>>> unet_lite0(num_classes=2, in_chans=1)(torch.zeros(1, 1, 64, 48)).shape
torch.Size([1, 2, 64, 48])
>>> with torch.device("meta"):
...     sum(p.numel() for p in unet_lite0(num_classes=2, in_chans=1).parameters())
3791282
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.models.efficientnet import EfficientNetLite, efficientnet_lite0
from cnnlab.models.registry import register_model
from cnnlab.models.weights import WeightSpec, load_weights

PAPER = "Ronneberger et al. 2015 (U-Net) with Tan & Le 2019 EfficientNet-Lite0 as a pretrained encoder"

# One row per encoder level: the last block at that resolution, its channels, and the stride.
# ``depth`` levels are used; the deepest is the bottleneck, the others are skips.
_LEVELS: tuple[tuple[int, int, int], ...] = (
    # block, channels, stride
    (0, 16, 2),
    (2, 24, 4),
    (4, 40, 8),
    (10, 112, 16),
    (15, 320, 32),
)


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    """Two 3x3 conv + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class UNetLite0(nn.Module):
    """``encoder`` (EfficientNet-Lite0 stem and blocks), ``full`` (full-resolution convs), ``decode``, ``head``."""

    first_conv = "encoder._conv_stem"
    classifier_layers = ("head",)

    def __init__(
        self, encoder: EfficientNetLite, num_classes: int = 2, in_chans: int = 3, base_width: int = 16, depth: int = 5
    ) -> None:
        super().__init__()
        if not 1 <= depth <= len(_LEVELS) or base_width < 1:
            raise ConfigError(
                f"UNetLite0: depth must be 1..{len(_LEVELS)} and base_width >= 1. Received: depth={depth}, "
                f"base_width={base_width}",
                where="unet_lite0",
            )
        last_block, bottom_channels, _ = _LEVELS[depth - 1]
        encoder._blocks = encoder._blocks[: last_block + 1]  # deeper blocks are not used
        encoder._conv_head = encoder._bn1 = encoder._head_act = encoder._fc = nn.Identity()  # nor the classifier
        self.encoder = encoder
        self.taps = {block for block, _, _ in _LEVELS[: depth - 1]}
        self.full = conv_bn_relu(in_chans, base_width)
        skips = [(c, s) for _, c, s in reversed(_LEVELS[: depth - 1])] + [(base_width, 1)]  # deepest skip first
        below = bottom_channels
        self.decode = nn.ModuleList()
        for channels, stride in skips:
            width = base_width * max(1, stride // 2)  # 8x at stride 16 down to 1x at strides 2 and 1
            self.decode.append(conv_bn_relu(below + channels, width))
            below = width
        self.head = nn.Conv2d(below, num_classes, 1)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Skip features (stride 2, 4, ...) and the bottleneck, shallowest first."""
        features = []
        x = F.relu6(self.encoder._bn0(self.encoder._conv_stem(x)))  # (B, 32, H/2, W/2)
        for index, block in enumerate(self.encoder._blocks):
            x = block(x)
            if index in self.taps:
                features.append(x)
        return [*features, x]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *skips, below = self.encode(x)
        for block, skip in zip(self.decode, [*reversed(skips), self.full(x)], strict=True):  # deepest first
            below = F.interpolate(below, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            below = block(torch.cat([below, skip], dim=1))  # (B, width, h, w)
        return self.head(below)  # (B, num_classes, H, W)


def _create_unet_lite0(
    num_classes: int,
    in_chans: int,
    base_width: int,
    depth: int,
    padding: str,
    encoder_weights: str | Path | WeightSpec | None,
) -> UNetLite0:
    if padding != "same":
        raise ConfigError(
            f"unet_lite0 pads every conv. Received: padding={padding!r}", where="unet_lite0", fix="use padding='same'"
        )
    encoder = efficientnet_lite0(in_chans=in_chans)
    if encoder_weights is not None:
        load_weights(encoder, encoder_weights, model_name="efficientnet_lite0")
    return UNetLite0(encoder, num_classes=num_classes, in_chans=in_chans, base_width=base_width, depth=depth)


@register_model("unet_lite0", paper=PAPER, default_input=(3, 256, 256), task="segment")
def unet_lite0(
    num_classes: int = 2,
    in_chans: int = 3,
    base_width: int = 16,
    depth: int = 5,
    padding: Literal["same"] = "same",
    encoder_weights: str | Path | WeightSpec | None = None,
) -> UNetLite0:
    """U-Net on an EfficientNet-Lite0 encoder; ``encoder_weights="efficientnet_lite0.imagenet"`` for ImageNet.

    ``depth`` encoder levels (1-5, down to stride ``2**depth``) are used; ``padding`` is always 'same'.
    """
    return _create_unet_lite0(num_classes, in_chans, base_width, depth, padding, encoder_weights)
