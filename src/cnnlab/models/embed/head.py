"""An embedding network on any zoo classifier: its feature maps -> global average pool -> linear -> L2 norm.

FaceNet's recipe (Schroff et al. 2015): the embedding lives on the unit hypersphere, so distances are
comparable between people and a single threshold separates "same" from "different" (distances 0..2).
:class:`SiameseHead` is the course's "face verification as binary classification" (Taigman et al. 2014,
DeepFace): a logistic regression on ``|f(a) - f(b)|``.

>>> from cnnlab.models import create_model
>>> net = EmbeddingNet(create_model("lenet5", num_classes=2, in_chans=1), dim=16)
>>> out = net(torch.rand(3, 1, 28, 28))
>>> tuple(out.shape), torch.allclose(out.norm(dim=1), torch.ones(3))
((3, 16), True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.models.base import Classifier

DEFAULT_DIM = 128
"""Embedding size (FaceNet, dlib and the course use 128)."""


class EmbeddingNet(nn.Module):
    """``backbone.forward_features`` -> mean over positions -> dropout -> ``Linear(num_features, dim)`` -> L2 norm.

    The backbone's classifier layers are not used (they stay in the module so a backbone checkpoint loads
    unchanged). ``gradcam_layer`` is the backbone's, prefixed, so Grad-CAM on a similarity target works.
    """

    def __init__(self, backbone: nn.Module, dim: int = DEFAULT_DIM, dropout: float = 0.0) -> None:
        super().__init__()
        if not isinstance(backbone, Classifier):
            raise ConfigError(
                f"{type(backbone).__name__} has no forward_features: it cannot be an embedding backbone",
                where="EmbeddingNet",
                fix="use a zoo classifier (cnnlab models --task classify)",
            )
        if dim < 1:
            raise ConfigError(f"embedding size must be >= 1. Received: {dim}", where="--embedding-dim", fix="try 128")
        self.backbone = backbone
        self.dim = dim
        self.dropout = nn.Dropout(dropout)
        self.project = nn.Linear(backbone.num_features, dim)
        self.gradcam_layer = f"backbone.{backbone.gradcam_layer}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone.forward_features(x).float().mean(dim=(-2, -1))
        return F.normalize(self.project(self.dropout(features)), dim=1)


class UnitEmbedding(nn.Module):
    """A pretrained embedder (``net``: images -> vectors, with a ``gradcam_layer``, e.g. dlib's ResNet-29) with its
    vectors L2-normalised,
    so it fine-tunes with the same losses, distances and thresholds as :class:`EmbeddingNet`.

    >>> from cnnlab.models.embed.dlib_resnet import DlibResNet29
    >>> net = UnitEmbedding(DlibResNet29())
    >>> net.gradcam_layer, round(float(net(torch.rand(1, 3, 150, 150)).norm()), 4)
    ('net.conv128_2', 1.0)
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.gradcam_layer = f"net.{net.gradcam_layer}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(x).float(), dim=1)


class SiameseHead(nn.Module):
    """The course's verification head: ``p(same) = sigmoid(w . |f(a) - f(b)| + b)`` on two embeddings.

    >>> head = SiameseHead(4)
    >>> e = F.normalize(torch.rand(2, 4), dim=1)
    >>> tuple(head(e, e).shape)  # one logit per pair
    (2,)
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, 1)

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        return self.linear((first - second).abs()).squeeze(-1)
