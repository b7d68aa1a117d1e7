"""FCN for time series: Wang, Yan, Oates, "Time Series Classification from Scratch with Deep Neural Networks:
A Strong Baseline", IJCNN 2017 (the dl-4-tsc benchmark's ``fcn``, Ismail Fawaz et al. 2019).

Three 'same'-padded conv blocks, Conv1d -> BatchNorm -> ReLU with 128, 256 and 128 filters of sizes 8, 5 and 3
(the even kernel pads 3 steps before and 4 after, as Keras does), global average pooling over time and ``fc``.
The series keeps its length throughout, so any length >= 1 works. 264,962 parameters for 1 channel and 2 classes,
the trainable count of the dl-4-tsc Keras model (Keras adds 1,024 non-trainable BatchNorm statistics).

Also home of :class:`GlobalPoolClassifier`, the head every sequence classifier here shares: global average
pooling over all axes after the channels (time, or depth x height x width), then one ``Linear``.

>>> import torch
>>> fcn()(torch.zeros(2, 1, 128)).shape
torch.Size([2, 2])
>>> sum(p.numel() for p in fcn().parameters())
264962
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.models.base import Classifier
from cnnlab.models.registry import register_model

FCN_FILTERS = (128, 256, 128)
FCN_KERNELS = (8, 5, 3)
"""Filters and kernel sizes of the three blocks (Wang et al. 2017)."""

PAPER = "Wang, Yan, Oates 2017, Time Series Classification from Scratch with Deep Neural Networks: A Strong Baseline"


class GlobalPoolClassifier(Classifier):
    """A :class:`~cnnlab.models.base.Classifier` whose head is a global average pool and the ``Linear`` ``fc``.

    Subclasses build ``self.fc = nn.Linear(num_features, num_classes)`` and ``forward_features``; maps may have
    any number of axes after the channels: ``(B, C, T)`` or ``(B, C, D, H, W)``.

    >>> import torch
    >>> model = fcn(num_classes=3)
    >>> model.forward_head(torch.ones(2, 128, 5)).shape
    torch.Size([2, 3])
    >>> model.reset_classifier(7); model.fc.out_features
    7
    """

    classifier_layers = ("fc",)
    fc: nn.Linear

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(dim=tuple(range(2, x.dim()))))  # (B, C, ...) -> (B, C) -> (B, num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.num_features, num_classes)


class SameConv1d(nn.Conv1d):
    """Stride-1 Conv1d with Keras' 'same' padding for any kernel: ``(k - 1) // 2`` zeros before, the rest after
    (``groups`` as in ``nn.Conv1d``: channel groups that see only their own inputs).

    (torch's ``padding="same"`` does the same but warns about the copy for even kernels.)

    >>> import torch
    >>> conv = SameConv1d(1, 1, 4, bias=False)
    >>> _ = conv.weight.data.fill_(1.0)
    >>> conv(torch.arange(1.0, 6.0).view(1, 1, 5)).flatten().tolist()  # windows [0 1 2 3], ..., [4 5 0 0]
    [6.0, 10.0, 14.0, 12.0, 9.0]
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int, bias: bool = True, groups: int = 1) -> None:
        super().__init__(c_in, c_out, kernel_size, bias=bias, groups=groups)
        self.same = ((kernel_size - 1) // 2, kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.same))  # (B, C, T) -> (B, c_out, T)


def conv_bn_relu_1d(c_in: int, c_out: int, kernel_size: int, groups: int = 1) -> nn.Sequential:
    """Conv1d ('same' padding, with bias as in Keras; ``groups`` channel groups) -> BatchNorm1d -> ReLU."""
    return nn.Sequential(SameConv1d(c_in, c_out, kernel_size, groups=groups), nn.BatchNorm1d(c_out), nn.ReLU())


class FCN(GlobalPoolClassifier):
    """``block1``-``block3`` (conv-BN-ReLU, 128/256/128 filters, kernels 8/5/3), global average pool, ``fc``."""

    first_conv = "block1.0"
    gradcam_layer = "block3"
    feature_layers = ("block1", "block2", "block3")

    def __init__(self, num_classes: int = 2, in_chans: int = 1) -> None:
        super().__init__()
        (f1, f2, f3), (k1, k2, k3) = FCN_FILTERS, FCN_KERNELS
        self.block1 = conv_bn_relu_1d(in_chans, f1, k1)
        self.block2 = conv_bn_relu_1d(f1, f2, k2)
        self.block3 = conv_bn_relu_1d(f2, f3, k3)
        self.num_features = f3
        self.fc = nn.Linear(f3, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.block3(self.block2(self.block1(x)))  # (B, C, T) -> (B, 128, T)


@register_model("fcn", paper=PAPER, default_input=(1, 128), task="sequence", min_size=1)
def fcn(num_classes: int = 2, in_chans: int = 1) -> FCN:
    """FCN for series of ``in_chans`` channels; 264,962 parameters at 1 channel, 2 classes (as dl-4-tsc)."""
    return FCN(num_classes, in_chans)
