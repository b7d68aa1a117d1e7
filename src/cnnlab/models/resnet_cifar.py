"""CIFAR ResNets: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016, section 4.2.

Published parameter counts at 10 classes (paper Table 6, exact numbers from akamaster's
``pytorch_resnet_cifar10``, whose key names these match after stripping ``module.``):
resnet20 269,722 ("0.27M"); resnet32 464,154 ("0.46M"); resnet44 658,586 ("0.66M");
resnet56 853,018 ("0.85M"); resnet110 1,727,962 ("1.7M").

Layout (depth 6n+2): a 3x3 conv to 16 channels, three stages of ``n`` basic blocks with 16, 32 and 64
channels (stride 1, 2, 2 on 32x32 input -> 32, 16, 8), global average pool, ``linear``. Shortcuts are
option A: the identity, or, where the shape changes, the input subsampled by 2 and zero-padded with
``planes // 4`` channels on each side, so shortcuts have no parameters. Natively for 32x32 images
(28x28 works as well), so no separate small-input stem is needed.

>>> import torch
>>> resnet20()(torch.zeros(2, 3, 32, 32)).shape
torch.Size([2, 10])
>>> sum(p.numel() for p in resnet20().parameters())
269722
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.models.base import Classifier
from cnnlab.models.registry import register_model

PAPER = "He et al. 2016, Deep Residual Learning for Image Recognition (CIFAR-10 nets, option A)"


class PadShortcut(nn.Module):
    """Option A shortcut: subsample by 2 and zero-pad ``pad`` channels before and after (no parameters)."""

    def __init__(self, pad: int) -> None:
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))  # (B, C + 2 pad, H/2, W/2)


class CifarBasicBlock(nn.Module):
    """3x3 conv-BN-ReLU, 3x3 conv-BN, plus the option-A shortcut, then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        changes = stride != 1 or in_planes != planes
        self.shortcut: nn.Module = PadShortcut(planes // 4) if changes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(Classifier):
    """conv3x3(16), stages of 16/32/64 channels, global average pool, ``linear``."""

    first_conv = "conv1"
    classifier_layers = ("linear",)
    gradcam_layer = "layer3"
    feature_layers = ("layer1", "layer2", "layer3")

    def __init__(self, blocks_per_stage: int, num_classes: int = 10, in_chans: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        in_planes = 16
        for index, planes in enumerate((16, 32, 64)):
            stage = []
            for i in range(blocks_per_stage):
                stage.append(CifarBasicBlock(in_planes, planes, 2 if index > 0 and i == 0 else 1))
                in_planes = planes
            self.add_module(f"layer{index + 1}", nn.Sequential(*stage))
        self.num_features = 64
        self.linear = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight)  # as akamaster's _weights_init

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))  # (B, 16, H, W)
        x = self.layer1(x)
        x = self.layer2(x)  # (B, 32, H/2, W/2)
        return self.layer3(x)  # (B, 64, H/4, W/4)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.mean(dim=(2, 3)))

    def reset_classifier(self, num_classes: int) -> None:
        self.linear = nn.Linear(self.num_features, num_classes)


def _create_cifar_resnet(depth: int, num_classes: int, in_chans: int) -> CifarResNet:
    # depth = 6n + 2: n blocks per stage, two convs per block, plus the stem conv and the linear layer.
    return CifarResNet((depth - 2) // 6, num_classes=num_classes, in_chans=in_chans)


@register_model("resnet20", paper=PAPER, default_input=(3, 32, 32))
def resnet20(num_classes: int = 10, in_chans: int = 3) -> CifarResNet:
    """CIFAR ResNet-20 (n=3), 269,722 parameters at 10 classes."""
    return _create_cifar_resnet(20, num_classes, in_chans)


@register_model("resnet32", paper=PAPER, default_input=(3, 32, 32))
def resnet32(num_classes: int = 10, in_chans: int = 3) -> CifarResNet:
    """CIFAR ResNet-32 (n=5), 464,154 parameters at 10 classes."""
    return _create_cifar_resnet(32, num_classes, in_chans)


@register_model("resnet44", paper=PAPER, default_input=(3, 32, 32))
def resnet44(num_classes: int = 10, in_chans: int = 3) -> CifarResNet:
    """CIFAR ResNet-44 (n=7), 658,586 parameters at 10 classes."""
    return _create_cifar_resnet(44, num_classes, in_chans)


@register_model("resnet56", paper=PAPER, default_input=(3, 32, 32))
def resnet56(num_classes: int = 10, in_chans: int = 3) -> CifarResNet:
    """CIFAR ResNet-56 (n=9), 853,018 parameters at 10 classes."""
    return _create_cifar_resnet(56, num_classes, in_chans)


@register_model("resnet110", paper=PAPER, default_input=(3, 32, 32))
def resnet110(num_classes: int = 10, in_chans: int = 3) -> CifarResNet:
    """CIFAR ResNet-110 (n=18), 1,727,962 parameters at 10 classes."""
    return _create_cifar_resnet(110, num_classes, in_chans)
