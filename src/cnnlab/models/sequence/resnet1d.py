"""ResNet for time series: Wang, Yan, Oates, "Time Series Classification from Scratch with Deep Neural Networks:
A Strong Baseline", IJCNN 2017 (the dl-4-tsc benchmark's ``resnet``, Ismail Fawaz et al. 2019).

Three residual blocks of 64, 128 and 128 filters. Each block: 'same'-padded Conv1d with kernels 8, 5 and 3, each
followed by BatchNorm, ReLU after the first two; the shortcut is a 1x1 conv + BatchNorm where the channels change
(blocks 1 and 2) and a BatchNorm alone where they do not (block 3), as in dl-4-tsc; the sum goes through a ReLU.
Then global average pooling over time and ``fc``. No stride or pool: any length >= 1 works.

504,258 parameters for 1 channel and 2 classes (measured; the trainable count of the dl-4-tsc Keras model,
"about 504k"; Keras adds 2,816 non-trainable BatchNorm statistics).

>>> import torch
>>> resnet1d(num_classes=5, in_chans=3)(torch.zeros(2, 3, 50)).shape
torch.Size([2, 5])
>>> sum(p.numel() for p in resnet1d().parameters())
504258
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.registry import register_model
from cnnlab.models.sequence.fcn import GlobalPoolClassifier, SameConv1d

PAPER = "Wang, Yan, Oates 2017, Time Series Classification from Scratch with Deep Neural Networks: A Strong Baseline"


class ResidualBlock1d(nn.Module):
    """conv8-BN-ReLU, conv5-BN-ReLU, conv3-BN, plus the shortcut, then ReLU; keeps the length."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for index, kernel in enumerate((8, 5, 3)):
            layers += [SameConv1d(c_in if index == 0 else c_out, c_out, kernel), nn.BatchNorm1d(c_out)]
            if index < 2:
                layers.append(nn.ReLU())
        self.body = nn.Sequential(*layers)
        self.shortcut = (
            nn.Sequential(nn.Conv1d(c_in, c_out, 1), nn.BatchNorm1d(c_out)) if c_in != c_out else nn.BatchNorm1d(c_out)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))  # (B, c_out, T)


class ResNet1d(GlobalPoolClassifier):
    """``block1``-``block3`` (64, 128, 128 filters), global average pool, ``fc``."""

    first_conv = "block1.body.0"
    gradcam_layer = "block3"
    feature_layers = ("block1", "block2", "block3")

    def __init__(self, num_classes: int = 2, in_chans: int = 1) -> None:
        super().__init__()
        self.block1 = ResidualBlock1d(in_chans, 64)
        self.block2 = ResidualBlock1d(64, 128)
        self.block3 = ResidualBlock1d(128, 128)
        self.num_features = 128
        self.fc = nn.Linear(128, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.block3(self.block2(self.block1(x)))  # (B, C, T) -> (B, 128, T)


@register_model("resnet1d", paper=PAPER, default_input=(1, 128), task="sequence", min_size=1)
def resnet1d(num_classes: int = 2, in_chans: int = 1) -> ResNet1d:
    """ResNet for series of ``in_chans`` channels; 504,258 parameters at 1 channel, 2 classes (as dl-4-tsc)."""
    return ResNet1d(num_classes, in_chans)
