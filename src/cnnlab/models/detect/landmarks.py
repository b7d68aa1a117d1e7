"""Landmark detection (the course, week 3): regress the (x, y) positions of L fixed points, e.g. the corners
of the eyes on a face or, in the ladder's synthetic data, the corners and the ink centre of a digit.

:class:`LandmarkNet` puts a :class:`~cnnlab.models.detect.localise.GridHead` with ``2 L`` outputs on any zoo
backbone's ``forward_features``; a sigmoid keeps each coordinate a fraction of the image's width or height
(0 = left / top edge, 1 = right / bottom edge), the same for every image size. The points keep their order:
output ``l`` is always landmark ``l`` (the course: "the labels have to be consistent across images").

>>> net = create_landmark_net("cnn_small", num_points=5, in_chans=1, width=8)
>>> points = net(torch.zeros(2, 1, 40, 40))
>>> points.shape, bool(((points > 0) & (points < 1)).all())
(torch.Size([2, 5, 2]), True)
>>> to_pixels(torch.tensor([[[0.5, 0.25]]]), (40, 80)).tolist()  # (x, y) on a 40-high, 80-wide image
[[[40.0, 10.0]]]
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.models.detect.localise import GridHead
from cnnlab.models.registry import create_model, input_options


class LandmarkNet(nn.Module):
    """``backbone.forward_features`` then a grid head: (B, C, H, W) images -> (B, ``num_points``, 2) points
    ``(x, y)`` as fractions of the image's width and height."""

    def __init__(self, backbone: nn.Module, num_points: int, grid: int = 4, hidden: int = 128) -> None:
        super().__init__()
        if not hasattr(backbone, "forward_features") or not hasattr(backbone, "num_features"):
            raise ConfigError(
                f"{type(backbone).__name__} has no forward_features / num_features",
                where="LandmarkNet",
                fix="pass a zoo model (cnnlab.models.create_model) or give the backbone both",
            )
        if num_points < 1:
            raise ConfigError(f"num_points must be >= 1. Received: num_points={num_points}", where="LandmarkNet")
        self.backbone = backbone
        self.num_points = num_points
        self.head = GridHead(backbone.num_features, 2 * num_points, grid, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raw = self.head(self.backbone.forward_features(x))  # (B, 2L)
        return torch.sigmoid(raw).reshape(x.shape[0], self.num_points, 2)


def create_landmark_net(
    backbone: str = "cnn_small",
    num_points: int = 5,
    in_chans: int = 3,
    input_size: tuple[int, int, int] | None = None,
    grid: int = 4,
    hidden: int = 128,
    **backbone_options: object,
) -> LandmarkNet:
    """A :class:`LandmarkNet` on the zoo model ``backbone``; ``input_size`` and the keyword arguments as for
    :func:`~cnnlab.models.detect.localise.create_localiser`.

    >>> create_landmark_net("lenet5", num_points=3, in_chans=1, input_size=(1, 28, 28)).num_points
    3
    """
    options = dict(input_options(backbone, input_size)) if input_size is not None else {}
    options.update(backbone_options)
    return LandmarkNet(create_model(backbone, in_chans=in_chans, **options), num_points, grid, hidden)


def to_pixels(points: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Points (..., 2) ``(x, y)`` as fractions -> pixels, for images of ``image_size`` = (height, width)."""
    height, width = image_size
    return points * points.new_tensor([width, height])


def to_fractions(points: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """The inverse of :func:`to_pixels`.

    >>> to_fractions(torch.tensor([[40.0, 10.0]]), (40, 80)).tolist()
    [[0.5, 0.25]]
    """
    height, width = image_size
    return points / points.new_tensor([width, height])
