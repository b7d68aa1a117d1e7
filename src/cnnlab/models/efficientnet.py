"""EfficientNet-Lite0: Tan & Le, "EfficientNet: Rethinking Model Scaling for CNNs", ICML 2019, in the
"Lite" form Google released for mobile/TF-Lite (tensorflow/tpu ``efficientnet/lite``, 2020).

Published parameter count: 4,652,008 at 1000 classes ("4.7M"). Lite drops squeeze-and-excitation,
uses ReLU6 instead of swish, and keeps the stem (32) and head (1280) fixed. Convolutions use
TensorFlow "SAME" padding (asymmetric on stride 2), BatchNorm eps 1e-3. Key names follow lukemelas
``EfficientNet-PyTorch`` (``_conv_stem``, ``_blocks.N._depthwise_conv``, ``_fc``), so the
ImageNet file in ``shared/data/efficientnet-lite0-imagenet`` loads with ``strict=True``.
Stochastic depth (drop-connect) used in training the original is not included.

Small-input stem (``small_input=True``, for 28x28/32x32): the stem conv and the first stride-2 stage
use stride 1, so a 32x32 image ends as 4x4 maps instead of 1x1 (the stride-8 CIFAR layout).

>>> import torch
>>> efficientnet_lite0(num_classes=10, small_input=True)(torch.zeros(2, 3, 16, 16)).shape
torch.Size([2, 10])
>>> with torch.device("meta"):  # shapes only
...     sum(p.numel() for p in efficientnet_lite0().parameters())
4652008
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.core.shapes import same_padding
from cnnlab.models.base import Classifier
from cnnlab.models.registry import SMALL_INPUT_MAX, register_model

PAPER = "Tan & Le 2019, EfficientNet: Rethinking Model Scaling for CNNs (Lite variant, 2020)"
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01  # TensorFlow's decay 0.99


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding computed from the input size (output = ceil(n / stride))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (top, bottom), (left, right) = (
            same_padding(n, k, s, d)
            for n, k, s, d in zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation, strict=True)
        )
        return super().forward(F.pad(x, (left, right, top, bottom)))


class MBConvBlock(nn.Module):
    """Inverted residual without squeeze-excite: 1x1 expand (if ``expand > 1``), kxk depthwise, 1x1 project."""

    def __init__(self, kernel: int, stride: int, expand: int, c_in: int, c_out: int) -> None:
        super().__init__()
        hidden = c_in * expand
        if expand != 1:
            self._expand_conv = SameConv2d(c_in, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=_BN_EPS, momentum=_BN_MOMENTUM)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=_BN_EPS, momentum=_BN_MOMENTUM)
        self._project_conv = SameConv2d(hidden, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, eps=_BN_EPS, momentum=_BN_MOMENTUM)
        self.expand = expand
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.expand != 1:
            out = F.relu6(self._bn0(self._expand_conv(out)))  # (B, expand * C, H, W)
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))  # linear bottleneck: no activation
        return out + x if self.residual else out


# One row per stage: kernel k, stride s of the first block, expansion e, input and output channels,
# repeats n (EfficientNet-B0 table with Lite's fixed stem/head; 16 blocks in all).
_LITE0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    # k, s, e, c_in, c_out, n
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
)


class EfficientNetLite(Classifier):
    """Stem 3x3/2 to 32, MBConv stages, 1x1 head conv to 1280, global average pool, dropout, ``_fc``."""

    first_conv = "_conv_stem"
    classifier_layers = ("_fc",)
    gradcam_layer = "_head_act"

    def __init__(
        self,
        stages: tuple[tuple[int, int, int, int, int, int], ...],
        num_classes: int = 1000,
        in_chans: int = 3,
        head_channels: int = 1280,
        dropout: float = 0.2,
        small_input: bool = False,
    ) -> None:
        super().__init__()
        stem = stages[0][3]
        self._conv_stem = SameConv2d(in_chans, stem, 3, 1 if small_input else 2, bias=False)
        self._bn0 = nn.BatchNorm2d(stem, eps=_BN_EPS, momentum=_BN_MOMENTUM)
        blocks = []
        strided_seen = False
        for kernel, stride, expand, c_in, c_out, repeats in stages:
            if small_input and stride == 2 and not strided_seen:
                strided_seen, stride = True, 1  # the first stride-2 stage keeps the resolution
            for i in range(repeats):
                blocks.append(MBConvBlock(kernel, stride if i == 0 else 1, expand, c_in if i == 0 else c_out, c_out))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(stages[-1][4], head_channels, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(head_channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)
        self._head_act = nn.ReLU6()
        self.num_features = head_channels
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(head_channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))  # (B, 32, H/2, W/2)
        for block in self._blocks:
            x = block(x)
        return self._head_act(self._bn1(self._conv_head(x)))  # (B, 1280, H/32, W/32)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(x.mean(dim=(2, 3))))

    def reset_classifier(self, num_classes: int) -> None:
        self._fc = nn.Linear(self.num_features, num_classes)


def _create_efficientnet_lite(
    stages: tuple[tuple[int, int, int, int, int, int], ...], num_classes: int, in_chans: int, small_input: bool
) -> EfficientNetLite:
    return EfficientNetLite(stages, num_classes=num_classes, in_chans=in_chans, small_input=small_input)


@register_model("efficientnet_lite0", paper=PAPER, small_input_max=SMALL_INPUT_MAX)
def efficientnet_lite0(num_classes: int = 1000, in_chans: int = 3, small_input: bool = False) -> EfficientNetLite:
    """EfficientNet-Lite0, 4,652,008 parameters at 1000 classes; ImageNet weights: ``efficientnet_lite0.imagenet``."""
    return _create_efficientnet_lite(_LITE0_STAGES, num_classes, in_chans, small_input)
