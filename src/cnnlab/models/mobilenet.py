"""MobileNetV2: Sandler, Howard, Zhu, Zhmoginov, Chen, "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", CVPR 2018.

Published parameter count: 3,504,872 at 1000 classes and width 1.0 (torchvision; the paper says
"3.4M"). Key names match torchvision (``features.0.0``, ``features.1.conv.0.0``, ``features.18.0``,
``classifier.1``).

Blocks: the inverted residual expands a thin input ``t`` times with a 1x1 conv, filters it with a
3x3 depthwise conv, and projects back with a linear 1x1 conv (no activation: the linear
bottleneck); a residual connection joins blocks with stride 1 and equal widths. The width
multiplier scales every channel count, rounded to a multiple of 8; the last conv stays 1280 wide
for multipliers below 1.

Small-input stem (``small_input=True``, for 28x28/32x32): the stem conv and the first stride-2 stage
(24 channels) use stride 1, so a 32x32 image ends as 4x4 maps rather than 1x1.

>>> import torch
>>> mobilenet_v2(num_classes=10, small_input=True)(torch.zeros(2, 3, 16, 16)).shape
torch.Size([2, 10])
>>> with torch.device("meta"):  # shapes only
...     sum(p.numel() for p in mobilenet_v2().parameters())
3504872
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.base import Classifier
from cnnlab.models.registry import SMALL_INPUT_MAX, register_model

PAPER = "Sandler et al. 2018, MobileNetV2: Inverted Residuals and Linear Bottlenecks"

# Table 2 of the paper: expansion t, output channels c, repeats n, stride s of the first repeat.
_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    # t, c, n, s
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of ``divisor``, never below 90% of ``value``.

    >>> make_divisible(32 * 0.75), make_divisible(24 * 0.35)
    (24, 8)
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn_relu6(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Conv (no bias, 'same' padding for odd kernels) -> BatchNorm -> ReLU6; keys ``.0`` and ``.1``."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """1x1 expand (when ``t > 1``), 3x3 depthwise, linear 1x1 project; residual if stride 1 and c_in == c_out."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = c_in * expand_ratio
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(conv_bn_relu6(c_in, hidden, kernel=1))
        layers += [
            conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(Classifier):
    """Stem conv 3x3/2, inverted residual stages, 1x1 conv to 1280, global average pool, dropout, linear."""

    first_conv = "features.0.0"
    classifier_layers = ("classifier.1",)
    gradcam_layer = "features.18"

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        width_mult: float = 1.0,
        dropout: float = 0.2,
        small_input: bool = False,
    ) -> None:
        super().__init__()
        c_in = make_divisible(32 * width_mult)
        self.num_features = make_divisible(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [conv_bn_relu6(in_chans, c_in, stride=1 if small_input else 2)]
        for t, c, n, s in _SETTINGS:
            if small_input and c == 24:
                s = 1  # keep the resolution of small images one stage longer
            c_out = make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(c_in, c_out, s if i == 0 else 1, t))
                c_in = c_out
        features.append(conv_bn_relu6(c_in, self.num_features, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (B, num_features, H/32, W/32)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x.mean(dim=(2, 3)))

    def reset_classifier(self, num_classes: int) -> None:
        self.classifier[1] = nn.Linear(self.num_features, num_classes)


def _create_mobilenet_v2(num_classes: int, in_chans: int, width_mult: float, small_input: bool) -> MobileNetV2:
    return MobileNetV2(num_classes=num_classes, in_chans=in_chans, width_mult=width_mult, small_input=small_input)


@register_model("mobilenet_v2", paper=PAPER, small_input_max=SMALL_INPUT_MAX)
def mobilenet_v2(
    num_classes: int = 1000, in_chans: int = 3, width_mult: float = 1.0, small_input: bool = False
) -> MobileNetV2:
    """MobileNetV2 with width multiplier ``width_mult``; 3,504,872 parameters at 1.0 and 1000 classes."""
    return _create_mobilenet_v2(num_classes, in_chans, width_mult, small_input)
