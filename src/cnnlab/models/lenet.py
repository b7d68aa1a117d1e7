"""LeNet-5: LeCun, Bottou, Bengio, Haffner, "Gradient-Based Learning Applied to Document Recognition",
Proc. IEEE 1998.

Layout on a 1x32x32 image: C1 conv 5x5 -> 6x28x28, S2 pool 2x2 -> 6x14x14, C3 conv 5x5 -> 16x10x10,
S4 pool -> 16x5x5, C5 400 -> 120, F6 120 -> 84, output 84 -> classes. Two options:
``variant="classic"`` (tanh and average pooling, as in the paper) and ``"modern"`` (ReLU and max
pooling, the common re-implementation).

Parameters: 61,706 at 1x32x32 -> 10 classes, while the paper (and most books) say "60,000". Both are
right: the paper's exact total is 60,000 = C1 156 + S2 12 + C3 1,516 + S4 32 + C5 48,120 +
F6 10,164, because (a) its C3 connects each of the 16 maps to only 3-6 of the 6 S2 maps (Table I),
1,516 weights instead of the 2,416 of a full 5x5x6x16 conv, (b) S2/S4 are trainable subsampling
(one coefficient and one bias per map: 12 + 32), and (c) the output is 10 Euclidean RBF units with
fixed, hand-set parameters, not trained. Here C3 is fully connected (2,416), the pools have no
parameters, and the output is a trained linear layer (850): 156 + 2,416 + 48,120 + 10,164 + 850.
The paper's scaled activation 1.7159 tanh(2x/3) is plain tanh here.

Input sizes. At 32x32 the net is the paper's. Small input (``small_input=True``, which
:func:`~cnnlab.models.registry.input_options` picks for images with a side under 32): 2 pixels of
zero padding in C1, so MNIST's 28x28 digits are laid out exactly as LeCun did (the paper centres
them in a 32x32 field). Any other size (12x12 and up) is adapted, not refused: an adaptive average
pool brings S4's maps to the 5x5 that C5 was drawn for. It is the identity at 32x32 (and 28x28
padded), so the published layout and its 61,706 parameters stay; a flatten size computed from the
input would instead change C5's 48,120 weights with every image size, and a pretrained LeNet would
no longer load. Larger images (40x56 -> S4 7x11) are averaged down, smaller ones (20x20 padded ->
S4 3x3) spread out, like AlexNet's and VGG's adaptive pool before their classifiers.

>>> import torch
>>> lenet5()(torch.zeros(2, 1, 32, 32)).shape
torch.Size([2, 10])
>>> lenet5(small_input=True, variant="modern")(torch.zeros(2, 1, 28, 28)).shape
torch.Size([2, 10])
>>> lenet5(in_chans=3)(torch.zeros(2, 3, 40, 56)).shape  # S4 is 16x7x11, pooled to 16x5x5
torch.Size([2, 10])
>>> sum(p.numel() for p in lenet5().parameters())
61706
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.models.base import Classifier
from cnnlab.models.registry import register_model

PAPER = "LeCun et al. 1998, Gradient-Based Learning Applied to Document Recognition"

Variant = Literal["classic", "modern"]


class LeNet5(Classifier):
    """``features``: C1, act, S2, C3, act, S4; ``pool`` (adaptive, to 5x5); ``classifier``: C5, act, F6, act, output."""

    first_conv = "features.0"
    classifier_layers = ("classifier.4",)
    gradcam_layer = "features.4"  # activation after C3

    def __init__(
        self, num_classes: int = 10, in_chans: int = 1, variant: Variant = "classic", small_input: bool = False
    ) -> None:
        super().__init__()
        if variant not in ("classic", "modern"):
            raise ConfigError(f"LeNet5: variant must be 'classic' or 'modern'. Received: variant={variant!r}")
        act: type[nn.Module] = nn.Tanh if variant == "classic" else nn.ReLU
        pool: type[nn.Module] = nn.AvgPool2d if variant == "classic" else nn.MaxPool2d
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 6, 5, padding=2 if small_input else 0),  # C1: (B, 6, 28, 28)
            act(),
            pool(2),  # S2: (B, 6, 14, 14)
            nn.Conv2d(6, 16, 5),  # C3: (B, 16, 10, 10)
            act(),
            pool(2),  # S4: (B, 16, 5, 5)
        )
        self.num_features = 16
        self.pool = nn.AdaptiveAvgPool2d((5, 5))  # identity at 32x32 input; other sizes to C5's 5x5
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120),  # C5
            act(),
            nn.Linear(120, 84),  # F6
            act(),
            nn.Linear(84, num_classes),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (B, 16, 5, 5) at 32x32 input

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(x), 1))

    def reset_classifier(self, num_classes: int) -> None:
        self.classifier[4] = nn.Linear(84, num_classes)


def _create_lenet(num_classes: int, in_chans: int, variant: Variant, small_input: bool) -> LeNet5:
    return LeNet5(num_classes=num_classes, in_chans=in_chans, variant=variant, small_input=small_input)


@register_model("lenet5", paper=PAPER, default_input=(1, 32, 32), min_size=12, small_input_max=31)
def lenet5(num_classes: int = 10, in_chans: int = 1, variant: Variant = "classic", small_input: bool = False) -> LeNet5:
    """LeNet-5 for 1x32x32 (28x28 with ``small_input``; other sizes adapt), 61,706 parameters at 10 classes."""
    return _create_lenet(num_classes, in_chans, variant, small_input)
