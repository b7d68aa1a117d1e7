"""VGG: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition", ICLR 2015.

Published parameter counts at 1000 classes (torchvision, whose keys these match: ``features.N``,
``classifier.0/3/6``): vgg11 132,863,336; vgg13 133,047,848; vgg16 138,357,544; vgg19 143,667,240;
with BatchNorm (``_bn``, not in the paper) vgg11_bn 132,868,840; vgg13_bn 133,053,736;
vgg16_bn 138,365,992; vgg19_bn 143,678,248. About 124M of them sit in the three linear layers.

Blocks: stacks of 3x3 conv (+BN) + ReLU separated by 2x2 max-pools (configurations A, B, D, E of the
paper's Table 1), an adaptive average pool to 7x7, and the 4096-4096-classes classifier.

Small-input stem (``small_input=True``, for 28x28/32x32): the fifth max-pool is left out. Five
halvings take 32x32 to 1x1 and fail on 28x28 (28 -> 14 -> 7 -> 3 -> 1 -> 0); with four, a 32x32
image ends as 2x2 maps. The adaptive pool then spreads them to the 7x7 the classifier expects.

>>> import torch
>>> with torch.device("meta"):  # shapes only: building 133M parameters for real takes seconds
...     model = vgg11(num_classes=10, small_input=True)
...     model(torch.empty(2, 3, 28, 28)).shape, sum(p.numel() for p in vgg16().parameters())
(torch.Size([2, 10]), 138357544)
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.base import Classifier
from cnnlab.models.registry import SMALL_INPUT_MAX, register_model

PAPER = "Simonyan & Zisserman 2015, Very Deep Convolutional Networks for Large-Scale Image Recognition"

# Table 1 of the paper: output channels of each 3x3 conv, "M" a 2x2/2 max-pool.
_CONFIGS: dict[str, tuple[int | str, ...]] = {
    "A": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),  # vgg11
    "B": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),  # vgg13
    "D": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),  # vgg16
    "E": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}


def make_features(config: tuple[int | str, ...], in_chans: int, batch_norm: bool) -> nn.Sequential:
    """The conv stack of one configuration (conv, [BN], ReLU per number; max-pool per "M")."""
    layers: list[nn.Module] = []
    channels = in_chans
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        width = int(item)
        layers.append(nn.Conv2d(channels, width, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.ReLU(inplace=True))
        channels = width
    return nn.Sequential(*layers)


class VGG(Classifier):
    """``features`` (conv stack), ``avgpool`` to 7x7, ``classifier`` (4096, 4096, num_classes with dropout)."""

    first_conv = "features.0"
    classifier_layers = ("classifier.6",)

    def __init__(
        self,
        config: tuple[int | str, ...],
        num_classes: int = 1000,
        in_chans: int = 3,
        batch_norm: bool = False,
        dropout: float = 0.5,
        small_input: bool = False,
    ) -> None:
        super().__init__()
        if small_input:
            config = config[:-1]  # the fifth max-pool
        self.features = make_features(config, in_chans, batch_norm)
        last_relu = max(i for i, m in enumerate(self.features) if isinstance(m, nn.ReLU))
        self.gradcam_layer = f"features.{last_relu}"
        self.num_features = 512
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (B, 512, H/32, W/32); H/16 with small_input

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(x), 1))  # (B, 512*7*7) -> (B, num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        self.classifier[6] = nn.Linear(4096, num_classes)


def _create_vgg(config: str, batch_norm: bool, num_classes: int, in_chans: int, small_input: bool) -> VGG:
    return VGG(_CONFIGS[config], num_classes, in_chans, batch_norm=batch_norm, small_input=small_input)


@register_model("vgg11", paper=PAPER, min_size=16, small_input_max=SMALL_INPUT_MAX)
def vgg11(num_classes: int = 1000, in_chans: int = 3, small_input: bool = False) -> VGG:
    """VGG-11 (configuration A), 132,863,336 parameters at 1000 classes."""
    return _create_vgg("A", False, num_classes, in_chans, small_input)


@register_model("vgg11_bn", paper=PAPER, min_size=16, small_input_max=SMALL_INPUT_MAX)
def vgg11_bn(num_classes: int = 1000, in_chans: int = 3, small_input: bool = False) -> VGG:
    """VGG-11 with BatchNorm, 132,868,840 parameters at 1000 classes."""
    return _create_vgg("A", True, num_classes, in_chans, small_input)


@register_model("vgg13", paper=PAPER, min_size=16, small_input_max=SMALL_INPUT_MAX)
def vgg13(num_classes: int = 1000, in_chans: int = 3, small_input: bool = False) -> VGG:
    """VGG-13 (configuration B), 133,047,848 parameters at 1000 classes."""
    return _create_vgg("B", False, num_classes, in_chans, small_input)


@register_model("vgg13_bn", paper=PAPER, min_size=16, small_input_max=SMALL_INPUT_MAX)
def vgg13_bn(num_classes: int = 1000, in_chans: int = 3, small_input: bool = False) -> VGG:
    """VGG-13 with BatchNorm, 133,053,736 parameters at 1000 classes."""
    return _create_vgg("B", True, num_classes, in_chans, small_input)


@register_model("vgg16", paper=PAPER, min_size=16, small_input_max=SMALL_INPUT_MAX)
def vgg16(num_classes: int = 1000, in_chans: int = 3, small_input: bool = False) -> VGG:
    """VGG-16 (configuration D), 138,357,544 parameters at 1000 classes."""
    return _create_vgg("D", False, num_classes, in_chans, small_input)


@register_model("vgg16_bn", paper=PAPER, min_size=16, small_input_max=SMALL_INPUT_MAX)
def vgg16_bn(num_classes: int = 1000, in_chans: int = 3, small_input: bool = False) -> VGG:
    """VGG-16 with BatchNorm, 138,365,992 parameters at 1000 classes."""
    return _create_vgg("D", True, num_classes, in_chans, small_input)


@register_model("vgg19", paper=PAPER, min_size=16, small_input_max=SMALL_INPUT_MAX)
def vgg19(num_classes: int = 1000, in_chans: int = 3, small_input: bool = False) -> VGG:
    """VGG-19 (configuration E), 143,667,240 parameters at 1000 classes."""
    return _create_vgg("E", False, num_classes, in_chans, small_input)


@register_model("vgg19_bn", paper=PAPER, min_size=16, small_input_max=SMALL_INPUT_MAX)
def vgg19_bn(num_classes: int = 1000, in_chans: int = 3, small_input: bool = False) -> VGG:
    """VGG-19 with BatchNorm, 143,678,248 parameters at 1000 classes."""
    return _create_vgg("E", True, num_classes, in_chans, small_input)
