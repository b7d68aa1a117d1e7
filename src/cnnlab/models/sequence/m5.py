"""M5 for raw waveforms: Dai, Dai, Qu, Li, Das, "Very Deep Convolutional Neural Networks for Raw Waveforms",
ICASSP 2017, in the layout of the torchaudio speech-command tutorial (BatchNorm after every conv).

Four conv blocks, Conv1d -> BatchNorm -> ReLU -> MaxPool1d(4): the first conv has ``n_channel`` filters of 80
samples with stride ``stride`` (16: 10 ms windows, 2 ms apart at 8 kHz), then 3-wide convs of ``n_channel``,
``2 n_channel`` and ``2 n_channel`` filters; global average pooling over time and ``fc``. 26,915 parameters at
35 classes, 1 channel, ``n_channel=32``, as the tutorial prints.

The convs are unpadded, so a waveform must leave at least one step after the last pool:
``(T - 80) // 16 + 1 >= 424`` (424 = ((((1 * 4 + 2) * 4 + 2) * 4 + 2) * 4)), so at least 6,848 samples
(:func:`min_length`); 8,000 (one second at 8 kHz) works.

>>> import torch
>>> m5()(torch.zeros(2, 1, 8000)).shape
torch.Size([2, 35])
>>> sum(p.numel() for p in m5().parameters()), min_length()
(26915, 6848)
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.registry import register_model
from cnnlab.models.sequence.fcn import GlobalPoolClassifier

PAPER = "Dai et al. 2017, Very Deep Convolutional Neural Networks for Raw Waveforms (M5, torchaudio tutorial layout)"

FIRST_KERNEL = 80
KERNEL = 3
POOL = 4


def min_length(stride: int = 16) -> int:
    """Shortest waveform that leaves one step after the fourth pool: each pool needs 4 steps in, each 3-wide
    conv 2 more, the first conv ``FIRST_KERNEL`` samples for its first step and ``stride`` for every further one.

    >>> min_length(), min_length(stride=4)
    (6848, 1772)
    """
    steps = POOL  # into the last pool
    for _ in range(3):  # back through conv4, pool3, conv3, pool2, conv2, pool1
        steps = (steps + KERNEL - 1) * POOL
    return (steps - 1) * stride + FIRST_KERNEL


def conv_block(c_in: int, c_out: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    """Conv1d (unpadded) -> BatchNorm1d -> ReLU -> MaxPool1d(4)."""
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel_size, stride=stride), nn.BatchNorm1d(c_out), nn.ReLU(), nn.MaxPool1d(POOL)
    )


class M5(GlobalPoolClassifier):
    """``block1``-``block4`` (conv-BN-ReLU-pool), global average pool, ``fc``."""

    first_conv = "block1.0"
    gradcam_layer = "block4"
    feature_layers = ("block1", "block2", "block3", "block4")

    def __init__(self, num_classes: int = 35, in_chans: int = 1, stride: int = 16, n_channel: int = 32) -> None:
        super().__init__()
        self.block1 = conv_block(in_chans, n_channel, FIRST_KERNEL, stride)
        self.block2 = conv_block(n_channel, n_channel, KERNEL)
        self.block3 = conv_block(n_channel, 2 * n_channel, KERNEL)
        self.block4 = conv_block(2 * n_channel, 2 * n_channel, KERNEL)
        self.num_features = 2 * n_channel
        self.fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.block1(x))  # (B, C, T) -> (B, n, (((T - 80) // stride + 1) // 4 - 2) // 4)
        return self.block4(self.block3(x))  # (B, 2n, T') with T' >= 1 for T >= min_length(stride)


@register_model("m5", paper=PAPER, default_input=(1, 8000), task="sequence", min_size=min_length())
def m5(num_classes: int = 35, in_chans: int = 1, stride: int = 16, n_channel: int = 32) -> M5:
    """M5 on raw audio of ``in_chans`` channels; 26,915 parameters at the defaults (the torchaudio tutorial's)."""
    return M5(num_classes, in_chans, stride, n_channel)
