"""AlexNet: Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep Convolutional Neural
Networks", NeurIPS 2012, in the single-GPU form of Krizhevsky's "One weird trick" (2014) that
torchvision uses (64-192-384-256-256 filters, no local response normalisation).

Published parameter count: 61,100,840 at 1000 classes (torchvision; keys ``features.0/3/6/8/10``,
``classifier.1/4/6``). The 2012 two-GPU net had about 60M.

Small-input stem (``small_input=True``, for 28x28/32x32): the 11x11/4 first conv would turn 32x32 into
7x7 and the third max-pool would then get 1x1 input and fail; the stem is a 3x3/1 conv instead
(32 -> 32, then pools to 15, 7, 3), and the adaptive pool spreads the 3x3 maps to the 6x6 the
classifier expects. It keeps the name ``features.0``.

>>> import torch
>>> alexnet(num_classes=10, small_input=True)(torch.zeros(2, 3, 32, 32)).shape
torch.Size([2, 10])
>>> with torch.device("meta"):  # shapes only
...     sum(p.numel() for p in alexnet().parameters())
61100840
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.base import Classifier
from cnnlab.models.registry import SMALL_INPUT_MAX, register_model

PAPER = "Krizhevsky et al. 2012, ImageNet Classification with Deep CNNs (one-GPU variant, 2014)"

# Feature extractor: (out channels, kernel, stride, padding, max-pool after). Pools are 3x3/2, overlapping.
_CONVS: tuple[tuple[int, int, int, int, bool], ...] = (
    # c, k, s, p, pool
    (64, 11, 4, 2, True),
    (192, 5, 1, 2, True),
    (384, 3, 1, 1, False),
    (256, 3, 1, 1, False),
    (256, 3, 1, 1, True),
)


class AlexNet(Classifier):
    """Five convs with ReLU and three overlapping max-pools, adaptive pool to 6x6, 4096-4096-classes MLP."""

    first_conv = "features.0"
    classifier_layers = ("classifier.6",)
    gradcam_layer = "features.11"  # ReLU after the last conv

    def __init__(
        self, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5, small_input: bool = False
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_chans
        for index, (c, k, s, p, pool) in enumerate(_CONVS):
            if index == 0 and small_input:
                k, s, p = 3, 1, 1
            layers += [nn.Conv2d(channels, c, k, s, p), nn.ReLU(inplace=True)]
            if pool:
                layers.append(nn.MaxPool2d(3, 2))
            channels = c
        self.features = nn.Sequential(*layers)
        self.num_features = channels
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(channels * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (B, 256, 6, 6) at 224x224

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(x), 1))

    def reset_classifier(self, num_classes: int) -> None:
        self.classifier[6] = nn.Linear(4096, num_classes)


def _create_alexnet(num_classes: int, in_chans: int, small_input: bool) -> AlexNet:
    return AlexNet(num_classes=num_classes, in_chans=in_chans, small_input=small_input)


@register_model("alexnet", paper=PAPER, min_size=15, small_input_max=SMALL_INPUT_MAX)
def alexnet(num_classes: int = 1000, in_chans: int = 3, small_input: bool = False) -> AlexNet:
    """AlexNet, 61,100,840 parameters at 1000 classes."""
    return _create_alexnet(num_classes, in_chans, small_input)
