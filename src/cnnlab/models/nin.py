"""Network in Network: Lin, Chen, Yan, "Network In Network", ICLR 2014.

The paper's CIFAR-10 net (its Caffe model): three mlpconv blocks, each a spatial conv followed by
two 1x1 convs ("cascaded cross-channel parametric pooling") with ReLU, max/average pooling and
dropout between blocks, and no fully connected layer: the last 1x1 conv gives one map per class
and global average pooling turns the maps into logits. Parameters: 966,986 at 10 classes
(the paper: "less than 1M"). Natively for 32x32 images (28x28 works too), so no separate
small-input stem is needed; larger images work as well thanks to the global pooling.

One change from the Caffe model: there the class maps pass a ReLU before the global pool; here
they do not, because a class whose map is all negative would get no gradient (and logits could
never be negative).

>>> import torch
>>> nin()(torch.zeros(2, 3, 32, 32)).shape
torch.Size([2, 10])
>>> sum(p.numel() for p in nin().parameters())
966986
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.base import Classifier
from cnnlab.models.registry import register_model

PAPER = "Lin et al. 2014, Network In Network"

# mlpconv blocks: (spatial kernel, channels of the spatial conv, channels of its 1x1 convs,
# pooling after the block: "max", "avg" or None). The third block's second 1x1 conv (cccp6) is the
# class-map conv, ``classifier``.
_BLOCKS: tuple[tuple[int, int, tuple[int, ...], str | None], ...] = (
    (5, 192, (160, 96), "max"),
    (5, 192, (192, 192), "avg"),
    (3, 192, (192,), None),
)


def mlpconv(c_in: int, kernel: int, channels: int, one_by_one: tuple[int, ...]) -> nn.Sequential:
    """Spatial conv + ReLU, then a 1x1 conv + ReLU per entry of ``one_by_one``."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, channels, kernel, padding=kernel // 2), nn.ReLU(inplace=True)]
    for c_out in one_by_one:
        layers += [nn.Conv2d(channels, c_out, 1), nn.ReLU(inplace=True)]
        channels = c_out
    return nn.Sequential(*layers)


class NIN(Classifier):
    """``features``: mlpconv blocks with 3x3/2 pooling and dropout; ``classifier``: 1x1 conv to class maps."""

    first_conv = "features.0.0"
    classifier_layers = ("classifier",)

    def __init__(self, num_classes: int = 10, in_chans: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_chans
        for kernel, width, one_by_one, pool in _BLOCKS:
            layers.append(mlpconv(channels, kernel, width, one_by_one))
            channels = one_by_one[-1]
            if pool is not None:
                pool_layer = nn.MaxPool2d if pool == "max" else nn.AvgPool2d
                layers += [pool_layer(3, 2, ceil_mode=True), nn.Dropout(dropout)]  # 32 -> 16 -> 8, as Caffe
        self.features = nn.Sequential(*layers)
        self.gradcam_layer = f"features.{len(layers) - 1}"
        self.num_features = channels
        self.classifier = nn.Conv2d(channels, num_classes, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.05)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (B, 192, H/4, W/4)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x).mean(dim=(2, 3))  # class maps (B, classes, h, w) -> logits

    def reset_classifier(self, num_classes: int) -> None:
        self.classifier = nn.Conv2d(self.num_features, num_classes, 1)


def _create_nin(num_classes: int, in_chans: int) -> NIN:
    return NIN(num_classes=num_classes, in_chans=in_chans)


@register_model("nin", paper=PAPER, default_input=(3, 32, 32), min_size=4)
def nin(num_classes: int = 10, in_chans: int = 3) -> NIN:
    """The CIFAR-10 Network in Network, 966,986 parameters at 10 classes."""
    return _create_nin(num_classes, in_chans)
