"""Small CNNs for 28x28 / 32x32 images: quick to train on a laptop CPU.

``cnn_small`` (the ``cnnlab demo`` net): two VGG-style stages of two 3x3 conv-BN-ReLU each,
then global average pooling and one linear layer. 65,834 parameters at 1x28x28 -> 10.

>>> import torch
>>> CnnSmall(num_classes=10, in_chans=1)(torch.zeros(2, 1, 28, 28)).shape
torch.Size([2, 10])
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.base import Classifier
from cnnlab.models.registry import register_model


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    """3x3 conv (same padding, no bias) + BatchNorm + ReLU."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class CnnSmall(Classifier):
    """conv32-conv32-pool, conv64-conv64-pool, global average pool, linear (a :class:`Classifier`, so it is also
    an embedding backbone)."""

    first_conv = "features.0.0"
    classifier_layers = ("classifier",)

    def __init__(self, num_classes: int = 10, in_chans: int = 1, width: int = 32, dropout: float = 0.1) -> None:
        super().__init__()
        self.num_features = 2 * width
        self.features = nn.Sequential(
            conv_bn_relu(in_chans, width),
            conv_bn_relu(width, width),
            nn.MaxPool2d(2),
            conv_bn_relu(width, 2 * width),
            conv_bn_relu(2 * width, 2 * width),
            nn.MaxPool2d(2),
        )
        self.gradcam_layer = "features.4"
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (B, 2w, H/4, W/4)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(x.mean(dim=(2, 3))))

    def reset_classifier(self, num_classes: int) -> None:
        self.classifier = nn.Linear(self.num_features, num_classes)


@register_model(
    "cnn_small",
    paper="cnnlab demo net (VGG-style, Simonyan & Zisserman 2014)",
    default_input=(1, 28, 28),
    min_size=4,
)
def cnn_small(num_classes: int = 10, in_chans: int = 1, **kwargs: object) -> CnnSmall:
    """The small demo CNN (65,834 parameters for 1x28x28 -> 10)."""
    return CnnSmall(num_classes=num_classes, in_chans=in_chans, **kwargs)


class FashionCnn(nn.Module):
    """The classic Fashion-MNIST CNN of the speed benchmark (Keras-style, 28x28x1).

    Conv32same-BN-ReLU, Conv32valid-BN-ReLU, MaxPool2, Dropout; Conv64same-BN-ReLU,
    Conv64valid-BN-ReLU, MaxPool2, Dropout; Dense512-BN-ReLU-Dropout; Dense10. Keras reports
    892,650 parameters because it counts BatchNorm's moving mean and variance (1,408 values);
    PyTorch keeps those as buffers, so ``sum(p.numel())`` is 891,242. Drawn for 28x28 images (the features
    end as 64x5x5); other sizes (10x10 and up) pass an adaptive average pool to that 5x5 first, the
    identity at 28x28, so the Keras layout and parameter count stay.

    >>> sum(p.numel() for p in FashionCnn().parameters()), sum(b.numel() for b in FashionCnn().buffers() if b.dim())
    (891242, 1408)
    """

    first_conv = "features.0"
    classifier_layers = ("classifier",)

    def __init__(self, num_classes: int = 10, in_chans: int = 1, dropout: float = 0.25) -> None:
        super().__init__()

        def conv(c_in: int, c_out: int, padding: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=padding), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *conv(in_chans, 32, 1), *conv(32, 32, 0), nn.MaxPool2d(2), nn.Dropout(dropout),
            *conv(32, 64, 1), *conv(64, 64, 0), nn.MaxPool2d(2), nn.Dropout(dropout),
        )  # fmt: skip
        self.gradcam_layer = "features.11"
        self.num_features = 64  # channels of forward_features; the head is neck (Dense512) + classifier
        self.neck = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * 5 * 5, 512),
            nn.BatchNorm1d(512),
            nn.ReLU(inplace=True),
            nn.Dropout(2 * dropout),
        )  # 28x28 -> 28 (same) -> 26 (valid) -> 13 (pool) -> 13 -> 11 -> 5: 5x5x64 = 1,600 features
        self.classifier = nn.Linear(512, num_classes)
        self.pool = nn.AdaptiveAvgPool2d((5, 5))  # identity at 28x28 input; other sizes to the neck's 5x5

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (B, 64, 5, 5) for 28x28 input

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.neck(self.pool(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        self.classifier = nn.Linear(512, num_classes)


@register_model(
    "fashion_cnn",
    paper="Classic Keras Fashion-MNIST CNN (892,650 params in Keras)",
    default_input=(1, 28, 28),
    min_size=10,
)
def fashion_cnn(num_classes: int = 10, in_chans: int = 1, **kwargs: object) -> FashionCnn:
    """The 891,242-parameter (Keras: 892,650) benchmark CNN for 28x28 inputs (other sizes adapt)."""
    return FashionCnn(num_classes=num_classes, in_chans=in_chans, **kwargs)
