"""InceptionTime: Ismail Fawaz et al., "InceptionTime: Finding AlexNet for Time Series Classification",
Data Mining and Knowledge Discovery 2020 (one network of the paper's ensemble of five).

An inception module: a 1x1 bottleneck conv to ``filters`` channels (only when the input has more than one
channel), three 'same'-padded convs of ``kernel_size``, ``kernel_size / 2`` and ``kernel_size / 4`` on it, and a
branch of a 3-wide max-pool (stride 1) and a 1x1 conv on the module's input; the four ``filters``-channel outputs
are concatenated, then BatchNorm and ReLU. The convs have no bias. Kernel sizes are made odd (40 -> 39, 19, 9) as
in the PyTorch reference code (tsai), so 'same' padding is symmetric; the authors' Keras code uses 40, 20, 10.

Modules come in stages of three with a residual shortcut around each stage (a 1x1 conv + BatchNorm where the
channels change, a BatchNorm alone where they do not, as in tsai); the sum goes through a ReLU. ``depth`` modules
(the paper: 6, two stages); a last stage of fewer than three modules has no shortcut. Then global average pooling
over time and ``fc``. No stride: any length >= 1 works.

Measured parameter counts for 1 channel and 2 classes: 388,610 at depth 6 (the paper gives no count), 157,186 at
depth 3, the CPU-friendly choice (``inception_time(depth=3)``).

>>> import torch
>>> inception_time(num_classes=4, depth=3)(torch.zeros(2, 1, 64)).shape
torch.Size([2, 4])
>>> [module.kernel_sizes for module in inception_time().body[0].modules_list]
[(39, 19, 9), (39, 19, 9), (39, 19, 9)]
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.models.registry import register_model
from cnnlab.models.sequence.fcn import GlobalPoolClassifier

PAPER = "Ismail Fawaz et al. 2020, InceptionTime: Finding AlexNet for Time Series Classification"


class InceptionModule(nn.Module):
    """Bottleneck, three convs and the max-pool branch, concatenated to ``4 * filters`` channels, BN, ReLU."""

    def __init__(self, c_in: int, filters: int, kernel_size: int) -> None:
        super().__init__()
        sizes = (kernel_size // 2**i for i in range(3))
        self.kernel_sizes = tuple(k - 1 if k % 2 == 0 else k for k in sizes)
        use_bottleneck = c_in > 1
        self.bottleneck = nn.Conv1d(c_in, filters, 1, bias=False) if use_bottleneck else nn.Identity()
        width = filters if use_bottleneck else c_in
        self.convs = nn.ModuleList(nn.Conv1d(width, filters, k, padding=k // 2, bias=False) for k in self.kernel_sizes)
        self.pool_branch = nn.Sequential(nn.MaxPool1d(3, stride=1, padding=1), nn.Conv1d(c_in, filters, 1, bias=False))
        self.bn = nn.BatchNorm1d(4 * filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = self.bottleneck(x)
        branches = [conv(squeezed) for conv in self.convs] + [self.pool_branch(x)]  # 4 x (B, filters, T)
        return torch.relu(self.bn(torch.cat(branches, dim=1)))


class InceptionStage(nn.Module):
    """Up to three inception modules; three get a residual shortcut (1x1 conv + BN, or BN alone) and a ReLU."""

    def __init__(self, c_in: int, filters: int, kernel_size: int, modules: int) -> None:
        super().__init__()
        c_out = 4 * filters
        self.modules_list = nn.Sequential(
            *(InceptionModule(c_in if i == 0 else c_out, filters, kernel_size) for i in range(modules))
        )
        self.shortcut: nn.Module | None = None
        if modules == 3:
            self.shortcut = (
                nn.BatchNorm1d(c_out)
                if c_in == c_out
                else nn.Sequential(nn.Conv1d(c_in, c_out, 1, bias=False), nn.BatchNorm1d(c_out))
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.modules_list(x)  # (B, 4 filters, T)
        return out if self.shortcut is None else torch.relu(out + self.shortcut(x))


class InceptionTime(GlobalPoolClassifier):
    """``body``: stages of three inception modules with shortcuts; global average pool; ``fc``."""

    feature_layers: tuple[str, ...]

    def __init__(
        self, num_classes: int = 2, in_chans: int = 1, depth: int = 6, filters: int = 32, kernel_size: int = 40
    ) -> None:
        super().__init__()
        for option, value, least in (("depth", depth, 1), ("filters", filters, 1), ("kernel_size", kernel_size, 4)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(
                    f"{option} must be a whole number >= {least}. Received: {option}={value!r}",
                    where="inception_time",
                    fix="use the paper's depth=6, filters=32, kernel_size=40 (kernel_size / 4 must be >= 1)",
                )
        stages, c_in = [], in_chans
        for start in range(0, depth, 3):
            stages.append(InceptionStage(c_in, filters, kernel_size, min(3, depth - start)))
            c_in = 4 * filters
        self.body = nn.Sequential(*stages)
        # the conv that sees the raw series: the bottleneck, or with one channel (no bottleneck) the longest kernel
        self.first_conv = "body.0.modules_list.0." + ("bottleneck" if in_chans > 1 else "convs.0")
        self.feature_layers = tuple(f"body.{i}" for i in range(len(stages)))
        self.gradcam_layer = self.feature_layers[-1]
        self.num_features = 4 * filters
        self.fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # (B, C, T) -> (B, 4 filters, T)


@register_model("inception_time", paper=PAPER, default_input=(1, 128), task="sequence", min_size=1)
def inception_time(
    num_classes: int = 2, in_chans: int = 1, depth: int = 6, filters: int = 32, kernel_size: int = 40
) -> InceptionTime:
    """InceptionTime with ``depth`` inception modules (the paper's 6; 3 trains twice as fast on a CPU) of
    ``4 * filters`` channels and longest kernel ``kernel_size`` (made odd); 388,610 parameters at the defaults."""
    return InceptionTime(num_classes, in_chans, depth, filters, kernel_size)
