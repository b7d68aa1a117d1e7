"""ResNet for ImageNet: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.

Published parameter counts at 1000 classes (torchvision, which these match key for key):
resnet18 11,689,512; resnet34 21,797,672; resnet50 25,557,032; resnet101 44,549,160; resnet152 60,192,808.

Blocks: ``BasicBlock`` (two 3x3 convs, ResNet-18/34) and ``Bottleneck`` (1x1 reduce, 3x3, 1x1 expand
x4, ResNet-50/101/152, stride on the 3x3 as torchvision's "v1.5"). Shortcuts are the identity when
the shape is kept and a 1x1 conv + BN projection (``downsample``) when it changes (the paper's
option B).

Small-input stem (``small_input=True``, for 28x28/32x32): the paper's 7x7/2 conv and 3x3/2 max-pool
shrink the image 4x before the first block (32x32 -> 8x8, then 1x1 after layer4); this stem is a
3x3/1 conv and no max-pool, so layer4 still sees 4x4 maps. The conv keeps the name ``conv1``.

>>> import torch
>>> resnet18(num_classes=10, small_input=True)(torch.zeros(2, 3, 16, 16)).shape
torch.Size([2, 10])
>>> with torch.device("meta"):  # shapes only
...     sum(p.numel() for p in resnet50().parameters())
25557032
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.base import Classifier
from cnnlab.models.registry import SMALL_INPUT_MAX, register_model

PAPER = "He et al. 2016, Deep Residual Learning for Image Recognition"


class BasicBlock(nn.Module):
    """3x3 conv-BN-ReLU, 3x3 conv-BN, plus the shortcut, then ReLU."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _projection(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carries the stride), 1x1 expand to ``4 * planes``, plus the shortcut."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _projection(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + shortcut)


def _projection(in_planes: int, out_planes: int, stride: int) -> nn.Sequential | None:
    """Identity shortcut (``None``) when the shape is kept, else 1x1 conv + BN (keys downsample.0/1)."""
    if stride == 1 and in_planes == out_planes:
        return None
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride, bias=False), nn.BatchNorm2d(out_planes))


class ResNet(Classifier):
    """Stem, four stages (64, 128, 256, 512 planes; stride 1, 2, 2, 2), global average pool, ``fc``."""

    first_conv = "conv1"
    classifier_layers = ("fc",)
    gradcam_layer = "layer4"
    feature_layers = ("layer1", "layer2", "layer3", "layer4")

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: tuple[int, int, int, int],
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
    ) -> None:
        super().__init__()
        if small_input:
            self.conv1 = nn.Conv2d(in_chans, 64, 3, 1, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_chans, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if small_input else nn.MaxPool2d(3, 2, 1)
        in_planes = 64
        for index, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            stride = 1 if index == 0 else 2
            stage = []
            for i in range(blocks):
                stage.append(block(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes * block.expansion
            self.add_module(f"layer{index + 1}", nn.Sequential(*stage))
        self.num_features = in_planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4); H, W with small_input
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)  # (B, num_features, H/32, W/32)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.num_features, num_classes)


# Blocks per stage (layer1..layer4), Table 1 of the paper.
_LAYERS: dict[str, tuple[type[BasicBlock | Bottleneck], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
    "resnet152": (Bottleneck, (3, 8, 36, 3)),
}


def _create_resnet(name: str, num_classes: int, in_chans: int, small_input: bool) -> ResNet:
    block, layers = _LAYERS[name]
    return ResNet(block, layers, num_classes=num_classes, in_chans=in_chans, small_input=small_input)


@register_model("resnet18", paper=PAPER, small_input_max=SMALL_INPUT_MAX)
def resnet18(num_classes: int = 1000, in_chans: int = 3, small_input: bool = False) -> ResNet:
    """ResNet-18 (basic blocks 2-2-2-2), 11,689,512 parameters at 1000 classes."""
    return _create_resnet("resnet18", num_classes, in_chans, small_input)


@register_model("resnet34", paper=PAPER, small_input_max=SMALL_INPUT_MAX)
def resnet34(num_classes: int = 1000, in_chans: int = 3, small_input: bool = False) -> ResNet:
    """ResNet-34 (basic blocks 3-4-6-3), 21,797,672 parameters at 1000 classes."""
    return _create_resnet("resnet34", num_classes, in_chans, small_input)


@register_model("resnet50", paper=PAPER, small_input_max=SMALL_INPUT_MAX)
def resnet50(num_classes: int = 1000, in_chans: int = 3, small_input: bool = False) -> ResNet:
    """ResNet-50 (bottlenecks 3-4-6-3), 25,557,032 parameters at 1000 classes."""
    return _create_resnet("resnet50", num_classes, in_chans, small_input)


@register_model("resnet101", paper=PAPER, small_input_max=SMALL_INPUT_MAX)
def resnet101(num_classes: int = 1000, in_chans: int = 3, small_input: bool = False) -> ResNet:
    """ResNet-101 (bottlenecks 3-4-23-3), 44,549,160 parameters at 1000 classes."""
    return _create_resnet("resnet101", num_classes, in_chans, small_input)


@register_model("resnet152", paper=PAPER, small_input_max=SMALL_INPUT_MAX)
def resnet152(num_classes: int = 1000, in_chans: int = 3, small_input: bool = False) -> ResNet:
    """ResNet-152 (bottlenecks 3-8-36-3), 60,192,808 parameters at 1000 classes."""
    return _create_resnet("resnet152", num_classes, in_chans, small_input)
