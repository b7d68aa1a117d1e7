"""3-D CNNs for clips and volumes ``(B, C, D, H, W)``: a CPU-sized C3D, R3D-18 and R(2+1)D-18.

``c3d_small``: Tran, Bourdev, Fergus, Torresani, Paluri, "Learning Spatiotemporal Features with 3D Convolutional
Networks", ICCV 2015, cut to CPU size: four blocks of a 3x3x3 conv ('same' padding, no bias) -> BatchNorm ->
ReLU with ``width``, 2, 4 and 4 times ``width`` filters (32-64-128-128); max-pools of (1, 2, 2) after block 1 (as
C3D's pool1: no early temporal pooling) and (2, 2, 2) after blocks 2 and 3; global average pool and ``fc``. The
pools need D >= 4 and H, W >= 8 (``min_size`` 8 covers every side). 721,706 parameters at 1 channel, 10 classes.

``r3d_18`` and ``r2plus1d_18``: Tran, Wang, Torresani, Ray, LeCun, Paluri, "A Closer Look at Spatiotemporal
Convolutions for Action Recognition", CVPR 2018, in torchvision's layout and state-dict names (``stem``,
``layer1``-``layer4``, ``fc``): a stem to ``width`` channels (R3D: a (3, 7, 7) conv with stride (1, 2, 2);
R(2+1)D: a (1, 7, 7) conv to 45 channels (``45 * width // 64``) with stride (1, 2, 2), then a (3, 1, 1) conv),
four stages of two basic blocks with ``width`` x 1, 2, 4, 8 channels (stride 2 in all three axes from stage 2
on, a 1x1x1 conv + BN shortcut where the shape changes), global average pool and ``fc``. R(2+1)D factors every
3x3x3 conv into a (1, 3, 3) conv to ``mid`` channels, BN, ReLU and a (3, 1, 1) conv, with
``mid = (c_in * c_out * 27) // (c_in * 9 + 3 * c_out)`` so it has (at most) the 3x3x3 conv's parameters.
33,371,472 and 31,505,325 parameters at 400 classes and 3 channels, and 40.70 and 40.52 G multiply-adds
on a 16x112x112 clip: torchvision's counts exactly.

``small_input=True`` (for 28x28x28 volumes or 16x64x64 clips) replaces the stride-2 7x7 stem by a stride-1 3x3
one, so layer4's maps are 8 times smaller than the input in every axis (not 16 in H and W); ``width`` (64: the
paper) makes slim nets that train on a CPU. Every stride is a padded 3-wide conv or a 1x1 conv, so any side >= 1
works.

>>> import torch
>>> c3d_small(num_classes=3)(torch.zeros(2, 1, 16, 64, 64)).shape
torch.Size([2, 3])
>>> model = r2plus1d_18(num_classes=5, in_chans=1, width=8, small_input=True)
>>> model.forward_features(torch.zeros(2, 1, 8, 16, 16)).shape
torch.Size([2, 64, 1, 2, 2])
>>> with torch.device("meta"):  # shapes only
...     sum(p.numel() for p in r3d_18().parameters()), sum(p.numel() for p in r2plus1d_18().parameters())
(33371472, 31505325)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.models.registry import SMALL_INPUT_MAX, register_model
from cnnlab.models.sequence.fcn import GlobalPoolClassifier

PAPER_C3D = "Tran et al. 2015, Learning Spatiotemporal Features with 3D Convolutional Networks (C3D, CPU-sized)"
PAPER_R21D = "Tran et al. 2018, A Closer Look at Spatiotemporal Convolutions for Action Recognition"

ConvBuilder = Callable[[int, int, int, int], nn.Module]
"""``(c_in, c_out, mid, stride) -> module``: a 3x3x3 conv, or its (2+1)D factorisation through ``mid`` channels."""


def _check_width(width: object, where: str) -> None:
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ConfigError(
            f"width must be a whole number >= 1. Received: width={width!r}",
            where=where,
            fix="use the paper's width (the default) or a smaller one such as 8 or 16 for a CPU",
        )


class C3DSmall(GlobalPoolClassifier):
    """``block1``-``block4`` (3x3x3 conv-BN-ReLU, pools after blocks 1-3), global average pool, ``fc``."""

    first_conv = "block1.0"
    gradcam_layer = "block4"
    feature_layers = ("block1", "block2", "block3", "block4")

    def __init__(self, num_classes: int = 10, in_chans: int = 1, width: int = 32) -> None:
        super().__init__()
        _check_width(width, "c3d_small")
        widths = (width, 2 * width, 4 * width, 4 * width)
        pools = ((1, 2, 2), (2, 2, 2), (2, 2, 2), None)
        c_in = in_chans
        for index, (c_out, pool) in enumerate(zip(widths, pools, strict=True)):
            layers = [nn.Conv3d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm3d(c_out), nn.ReLU(inplace=True)]
            if pool is not None:
                layers.append(nn.MaxPool3d(pool))
            self.add_module(f"block{index + 1}", nn.Sequential(*layers))
            c_in = c_out
        self.num_features = widths[-1]
        self.fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.block1(x))  # (B, C, D, H, W) -> (B, 2w, D/2, H/4, W/4)
        return self.block4(self.block3(x))  # (B, 4w, D/4, H/8, W/8)


def conv3d_simple(c_in: int, c_out: int, mid: int, stride: int = 1) -> nn.Conv3d:
    """A 3x3x3 conv, padding 1 (``mid`` is unused: the R3D builder's signature)."""
    return nn.Conv3d(c_in, c_out, 3, stride, 1, bias=False)


def conv2plus1d(c_in: int, c_out: int, mid: int, stride: int = 1) -> nn.Sequential:
    """(1, 3, 3) conv to ``mid`` channels (spatial stride), BN, ReLU, (3, 1, 1) conv (temporal stride)."""
    return nn.Sequential(
        nn.Conv3d(c_in, mid, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False),
        nn.BatchNorm3d(mid),
        nn.ReLU(inplace=True),
        nn.Conv3d(mid, c_out, (3, 1, 1), (stride, 1, 1), (1, 0, 0), bias=False),
    )


def mid_planes(c_in: int, c_out: int) -> int:
    """Channels between the (2+1)D convs that match a 3x3x3 conv's parameters (Tran et al. 2018, eq. 1).

    >>> mid_planes(64, 64), mid_planes(64, 128), mid_planes(512, 512)
    (144, 230, 1152)
    """
    return (c_in * c_out * 27) // (c_in * 9 + 3 * c_out)


class VideoBasicBlock(nn.Module):
    """Two 3x3x3 (or (2+1)D) convs with BN, ReLU between, plus the shortcut, then ReLU (torchvision's names)."""

    def __init__(self, c_in: int, planes: int, conv: ConvBuilder, stride: int = 1) -> None:
        super().__init__()
        mid = mid_planes(c_in, planes)  # torchvision uses the first conv's mid for both
        self.conv1 = nn.Sequential(conv(c_in, planes, mid, stride), nn.BatchNorm3d(planes), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv(planes, planes, mid, 1), nn.BatchNorm3d(planes))
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != planes:
            self.downsample = nn.Sequential(nn.Conv3d(c_in, planes, 1, stride, bias=False), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + residual)


def r3d_stem(in_chans: int, width: int, small_input: bool) -> nn.Sequential:
    """R3D stem: (3, 7, 7) conv, stride (1, 2, 2); with ``small_input`` a 3x3x3 conv, stride 1."""
    if small_input:
        conv = nn.Conv3d(in_chans, width, 3, 1, 1, bias=False)
    else:
        conv = nn.Conv3d(in_chans, width, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False)
    return nn.Sequential(conv, nn.BatchNorm3d(width), nn.ReLU(inplace=True))


def r2plus1d_stem(in_chans: int, width: int, small_input: bool) -> nn.Sequential:
    """R(2+1)D stem: (1, 7, 7) conv to 45 channels (scaled with ``width``), stride (1, 2, 2), BN, ReLU, then a
    (3, 1, 1) conv to ``width``, BN, ReLU; with ``small_input`` the spatial conv is (1, 3, 3), stride 1."""
    mid = max(1, 45 * width // 64)
    if small_input:
        spatial = nn.Conv3d(in_chans, mid, (1, 3, 3), 1, (0, 1, 1), bias=False)
    else:
        spatial = nn.Conv3d(in_chans, mid, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False)
    return nn.Sequential(
        spatial,
        nn.BatchNorm3d(mid),
        nn.ReLU(inplace=True),
        nn.Conv3d(mid, width, (3, 1, 1), 1, (1, 0, 0), bias=False),
        nn.BatchNorm3d(width),
        nn.ReLU(inplace=True),
    )


class VideoResNet(GlobalPoolClassifier):
    """``stem``, ``layer1``-``layer4`` (two basic blocks each), global average pool, ``fc``."""

    first_conv = "stem.0"
    gradcam_layer = "layer4"
    feature_layers = ("layer1", "layer2", "layer3", "layer4")

    def __init__(
        self,
        stem: nn.Sequential,
        conv: ConvBuilder,
        num_classes: int = 400,
        width: int = 64,
    ) -> None:
        super().__init__()
        self.stem = stem
        c_in = width
        for index, planes in enumerate((width, 2 * width, 4 * width, 8 * width)):
            stride = 1 if index == 0 else 2
            blocks = [VideoBasicBlock(c_in, planes, conv, stride), VideoBasicBlock(planes, planes, conv)]
            self.add_module(f"layer{index + 1}", nn.Sequential(*blocks))
            c_in = planes
        self.num_features = 8 * width
        self.fc = nn.Linear(self.num_features, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer1(self.stem(x))  # (B, w, D, H/2, W/2); H, W with small_input
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)  # (B, 8w, D/8, H/16, W/16); H/8, W/8 with small_input


@register_model("c3d_small", paper=PAPER_C3D, default_input=(1, 16, 64, 64), task="sequence", min_size=8)
def c3d_small(num_classes: int = 10, in_chans: int = 1, width: int = 32) -> C3DSmall:
    """CPU-sized C3D with 1, 2, 4, 4 x ``width`` filters; 721,706 parameters at the defaults."""
    return C3DSmall(num_classes, in_chans, width)


@register_model(
    "r3d_18",
    paper=PAPER_R21D + " (R3D-18)",
    default_input=(3, 16, 112, 112),
    task="sequence",
    small_input_max=SMALL_INPUT_MAX,
)
def r3d_18(num_classes: int = 400, in_chans: int = 3, width: int = 64, small_input: bool = False) -> VideoResNet:
    """R3D-18 (3x3x3 basic blocks 2-2-2-2); 33,371,472 parameters at 400 classes (torchvision's ``r3d_18``)."""
    _check_width(width, "r3d_18")
    return VideoResNet(r3d_stem(in_chans, width, small_input), conv3d_simple, num_classes, width)


@register_model(
    "r2plus1d_18",
    paper=PAPER_R21D + " (R(2+1)D-18)",
    default_input=(3, 16, 112, 112),
    task="sequence",
    small_input_max=SMALL_INPUT_MAX,
)
def r2plus1d_18(num_classes: int = 400, in_chans: int = 3, width: int = 64, small_input: bool = False) -> VideoResNet:
    """R(2+1)D-18 ((2+1)D basic blocks 2-2-2-2); 31,505,325 parameters at 400 classes (torchvision's)."""
    _check_width(width, "r2plus1d_18")
    return VideoResNet(r2plus1d_stem(in_chans, width, small_input), conv2plus1d, num_classes, width)
