"""ResNet-9: the DAWNBench net of David Page, "How to train your ResNet" (2018), 94% on CIFAR-10 in minutes.

A prep conv, three stages that each widen x2 and halve the resolution (conv-BN-ReLU-maxpool), a residual
pair of conv-BN-ReLU after the first and the last stage, global max pooling and one linear layer.
``width`` sets the prep conv's channels (Page: 64, so stages of 128, 256, 512: 6,573,120 parameters); the
narrow ``resnet9_w16`` is the fast Fashion-MNIST/MNIST recipe net on a laptop CPU (docs/recipes.md).
Page scales the logits by 0.125; this does the same (``logit_scale``).

>>> import torch
>>> model = ResNet9(num_classes=10, in_chans=3)
>>> sum(p.numel() for p in model.parameters())
6573120
>>> model(torch.zeros(2, 3, 32, 32)).shape, ResNet9(in_chans=1, width=16)(torch.zeros(2, 1, 28, 28)).shape
(torch.Size([2, 10]), torch.Size([2, 10]))
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.base import Classifier
from cnnlab.models.registry import register_model
from cnnlab.models.small import conv_bn_relu

PAPER = "Page 2018, How to train your ResNet (DAWNBench CIFAR-10 ResNet-9)"


def _conv_bn_relu(c_in: int, c_out: int, pool: bool = False) -> nn.Sequential:
    block = conv_bn_relu(c_in, c_out)
    return block.append(nn.MaxPool2d(2)) if pool else block


class _Residual(nn.Module):
    """x + two conv-BN-ReLU at the same width."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_bn_relu(channels, channels), _conv_bn_relu(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet9(Classifier):
    """prep(w) -> [conv(2w), pool, res] -> [conv(4w), pool] -> [conv(8w), pool, res] -> max pool -> linear."""

    first_conv = "prep.0"
    classifier_layers = ("classifier",)
    gradcam_layer = "layer3"
    feature_layers = ("layer1", "layer2", "layer3")

    def __init__(self, num_classes: int = 10, in_chans: int = 3, width: int = 64, logit_scale: float = 0.125) -> None:
        super().__init__()
        self.num_features = 8 * width
        self.logit_scale = logit_scale
        self.prep = _conv_bn_relu(in_chans, width)
        self.layer1 = nn.Sequential(_conv_bn_relu(width, 2 * width, pool=True), _Residual(2 * width))
        self.layer2 = _conv_bn_relu(2 * width, 4 * width, pool=True)
        self.layer3 = nn.Sequential(_conv_bn_relu(4 * width, 8 * width, pool=True), _Residual(8 * width))
        self.classifier = nn.Linear(self.num_features, num_classes, bias=False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer3(self.layer2(self.layer1(self.prep(x))))  # (B, 8w, H/8, W/8)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x.amax(dim=(2, 3))) * self.logit_scale

    def reset_classifier(self, num_classes: int) -> None:
        self.classifier = nn.Linear(self.num_features, num_classes, bias=False)


@register_model("resnet9", paper=PAPER, default_input=(3, 32, 32), min_size=8)
def resnet9(num_classes: int = 10, in_chans: int = 3) -> ResNet9:
    """Page's ResNet-9 (widths 64-128-256-512), 6,573,120 parameters at 3x32x32 -> 10."""
    return ResNet9(num_classes=num_classes, in_chans=in_chans)


@register_model("resnet9_w16", paper=PAPER + ", width 16", default_input=(1, 28, 28), min_size=8)
def resnet9_w16(num_classes: int = 10, in_chans: int = 1) -> ResNet9:
    """ResNet-9 at a quarter of the width (16-32-64-128): 412,656 parameters at 1x28x28 -> 10."""
    return ResNet9(num_classes=num_classes, in_chans=in_chans, width=16)


@register_model("resnet9_w32", paper=PAPER + ", width 32", default_input=(1, 28, 28), min_size=8)
def resnet9_w32(num_classes: int = 10, in_chans: int = 1) -> ResNet9:
    """ResNet-9 at half the width (32-64-128-256): 1,645,536 parameters at 1x28x28 -> 10."""
    return ResNet9(num_classes=num_classes, in_chans=in_chans, width=32)
