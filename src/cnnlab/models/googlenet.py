"""GoogLeNet (Inception v1): Szegedy et al., "Going Deeper with Convolutions", CVPR 2015.

Published parameter count: 6,624,904 at 1000 classes without the auxiliary heads (torchvision, whose
keys these match: ``conv1.conv``, ``conv1.bn``, ``inception3a.branch1.conv``, ``inception3a.branch2.0.conv``,
``aux1.conv.conv``, ``aux1.fc1``, ``fc``); 13,004,888 with them. The paper says "about 6.8M"
(Table 1 counts roughly 6.8M for a slightly different stem).

Blocks: :class:`InceptionNaive` (1x1, 3x3 and 5x5 convs and a 3x3 max-pool side by side, outputs
concatenated; the pool branch passes all input channels through, so widths grow at every module)
and :class:`Inception` (1x1 reductions before the 3x3 and 5x5 convs and after the pool, the
paper's Figure 2b). Every conv is conv + BatchNorm (eps 1e-3) + ReLU, as in torchvision (BN came
after the paper). torchvision's GoogLeNet uses a 3x3 conv in the "5x5" branch (a known discrepancy
it keeps for its weights); the network here does the same so those weights load, while
:class:`Inception` on its own defaults to the paper's 5x5. Optional auxiliary classifiers on
inception4a and inception4d: in training mode the forward then returns
``GoogLeNetOutputs(logits, aux2, aux1)``; the paper weights their losses by 0.3.

Small-input stem (``small_input=True``, for 28x28/32x32): the 7x7/2 conv and two 3x3/2 max-pools
shrink the image 8x before the first Inception module (32x32 -> 4x4, then 1x1); this stem is a
3x3/1 conv and no stem pools, so the modules see 32x32, 16x16 and 8x8 maps.

>>> import torch
>>> googlenet(num_classes=10, small_input=True)(torch.zeros(2, 3, 16, 16)).shape
torch.Size([2, 10])
>>> Inception(192, 64, 96, 128, 16, 32, 32)(torch.zeros(1, 192, 4, 4)).shape  # inception3a
torch.Size([1, 256, 4, 4])
>>> InceptionNaive(192, 64, 128, 32)(torch.zeros(1, 192, 4, 4)).shape  # pool branch keeps 192
torch.Size([1, 416, 4, 4])
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.models.base import Classifier
from cnnlab.models.registry import SMALL_INPUT_MAX, register_model

PAPER = "Szegedy et al. 2015, Going Deeper with Convolutions"


class GoogLeNetOutputs(NamedTuple):
    """Training-mode outputs with auxiliary heads (loss = main + 0.3 * (aux1 + aux2))."""

    logits: torch.Tensor
    aux2: torch.Tensor
    aux1: torch.Tensor


class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU; keys ``conv`` and ``bn``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class InceptionNaive(nn.Module):
    """Figure 2a: 1x1, 3x3 and 5x5 convs and a 3x3 max-pool in parallel, concatenated.

    Output channels: ``ch1x1 + ch3x3 + ch5x5 + in_channels``.
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3: int, ch5x5: int) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, 1)
        self.branch2 = BasicConv2d(in_channels, ch3x3, 3, padding=1)
        self.branch3 = BasicConv2d(in_channels, ch5x5, 5, padding=2)
        self.branch4 = nn.MaxPool2d(3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class Inception(nn.Module):
    """Figure 2b: 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3 max-pool -> 1x1, concatenated.

    Output channels: ``ch1x1 + ch3x3 + ch5x5 + pool_proj``. ``kernel5`` is the kernel of the "5x5"
    branch (torchvision's GoogLeNet uses 3).
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        kernel5: int = 5,
    ) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, ch3x3red, 1), BasicConv2d(ch3x3red, ch3x3, 3, padding=1))
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, 1), BasicConv2d(ch5x5red, ch5x5, kernel5, padding=kernel5 // 2)
        )
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), BasicConv2d(in_channels, pool_proj, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary head: average pool to 4x4, 1x1 conv to 128, fc 2048 -> 1024, dropout 0.7, fc -> classes."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = BasicConv2d(in_channels, 128, 1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(0.7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.adaptive_avg_pool2d(x, (4, 4)))  # (B, 128, 4, 4)
        x = F.relu(self.fc1(torch.flatten(x, 1)), inplace=True)
        return self.fc2(self.dropout(x))


# Table 1 of the paper: name, then #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj; "M" marks
# a max-pool (3x3/2 before 4a, 2x2/2 before 5a as in torchvision). Input widths follow from the rows.
_MODULES: tuple[tuple[str, int, int, int, int, int, int] | str, ...] = (
    ("inception3a", 64, 96, 128, 16, 32, 32),
    ("inception3b", 128, 128, 192, 32, 96, 64),
    "maxpool3",
    ("inception4a", 192, 96, 208, 16, 48, 64),
    ("inception4b", 160, 112, 224, 24, 64, 64),
    ("inception4c", 128, 128, 256, 24, 64, 64),
    ("inception4d", 112, 144, 288, 32, 64, 64),
    ("inception4e", 256, 160, 320, 32, 128, 128),
    "maxpool4",
    ("inception5a", 256, 160, 320, 32, 128, 128),
    ("inception5b", 384, 192, 384, 48, 128, 128),
)


class GoogLeNet(Classifier):
    """Stem (conv1, maxpool1, conv2, conv3, maxpool2), nine Inception modules, average pool, dropout, ``fc``."""

    first_conv = "conv1.conv"
    gradcam_layer = "inception5b"

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        aux_logits: bool = False,
        dropout: float = 0.2,
        small_input: bool = False,
    ) -> None:
        super().__init__()
        if small_input:
            self.conv1 = BasicConv2d(in_chans, 64, 3, padding=1)
        else:
            self.conv1 = BasicConv2d(in_chans, 64, 7, stride=2, padding=3)
        self.maxpool1: nn.Module = nn.Identity() if small_input else nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, 1)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1)
        self.maxpool2: nn.Module = nn.Identity() if small_input else nn.MaxPool2d(3, 2, ceil_mode=True)
        self.stages: list[str] = []
        channels = 192
        for row in _MODULES:
            if isinstance(row, str):
                pool = nn.MaxPool2d(3, 2, ceil_mode=True) if row == "maxpool3" else nn.MaxPool2d(2, 2, ceil_mode=True)
                self.add_module(row, pool)
                self.stages.append(row)
                continue
            name, c1, c3r, c3, c5r, c5, pp = row
            self.add_module(name, Inception(channels, c1, c3r, c3, c5r, c5, pp, kernel5=3))
            self.stages.append(name)
            channels = c1 + c3 + c5 + pp
        self.aux_logits = aux_logits
        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes)  # after inception4a
            self.aux2 = InceptionAux(528, num_classes)  # after inception4d
        self.classifier_layers = ("fc", "aux1.fc2", "aux2.fc2") if aux_logits else ("fc",)
        self.num_features = channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.01, a=-2, b=2)

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool1(self.conv1(x))  # (B, 64, H/4, W/4); full size with small_input
        return self.maxpool2(self.conv3(self.conv2(x)))  # (B, 192, H/8, W/8)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self._stem(x)
        for name in self.stages:
            x = self.get_submodule(name)(x)
        return x  # (B, 1024, H/32, W/32)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor | GoogLeNetOutputs:  # type: ignore[override]
        if not (self.aux_logits and self.training):
            return self.forward_head(self.forward_features(x))
        x = self._stem(x)
        aux: dict[str, torch.Tensor] = {}
        for name in self.stages:
            x = self.get_submodule(name)(x)
            if name == "inception4a":
                aux["aux1"] = self.aux1(x)
            elif name == "inception4d":
                aux["aux2"] = self.aux2(x)
        return GoogLeNetOutputs(self.forward_head(x), aux["aux2"], aux["aux1"])

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.num_features, num_classes)
        if self.aux_logits:
            self.aux1.fc2 = nn.Linear(1024, num_classes)
            self.aux2.fc2 = nn.Linear(1024, num_classes)


def _create_googlenet(num_classes: int, in_chans: int, aux_logits: bool, small_input: bool) -> GoogLeNet:
    return GoogLeNet(num_classes=num_classes, in_chans=in_chans, aux_logits=aux_logits, small_input=small_input)


@register_model("googlenet", paper=PAPER, min_size=2, small_input_max=SMALL_INPUT_MAX)
def googlenet(
    num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = False, small_input: bool = False
) -> GoogLeNet:
    """GoogLeNet, 6,624,904 parameters at 1000 classes without auxiliary heads (13,004,888 with)."""
    return _create_googlenet(num_classes, in_chans, aux_logits, small_input)
