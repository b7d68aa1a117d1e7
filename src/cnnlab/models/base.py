"""The contract every cnnlab classifier keeps, so transfer learning, feature caching and Grad-CAM
work the same for the whole zoo.

- ``forward_features(x)``: the last feature maps ``(B, num_features, h, w)`` (before pooling);
- ``forward_head(x)``: pooling and classifier, features -> logits ``(B, num_classes)``;
- ``reset_classifier(num_classes)``: a fresh head for another class count;
- ``num_features``: channels that ``forward_features`` returns (the pooled feature size);
- ``gradcam_layer``: dotted name of the default Grad-CAM target (``model.get_submodule(name)``);
- ``first_conv``: dotted name of the conv that sees the image (adapted for other ``in_chans``);
- ``classifier_layers``: dotted names of the layers with ``num_classes`` outputs.

>>> import torch
>>> from cnnlab.models import create_model
>>> model = create_model("resnet18", num_classes=3, small_input=True)
>>> isinstance(model, Classifier), model.num_features, model.gradcam_layer
(True, 512, 'layer4')
>>> model.forward_features(torch.zeros(1, 3, 32, 32)).shape
torch.Size([1, 512, 4, 4])
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn


class Classifier(nn.Module, ABC):
    """Base class: subclasses build their layers, set the attributes above and the three methods."""

    num_features: int
    gradcam_layer: str
    first_conv: str
    classifier_layers: tuple[str, ...]

    @abstractmethod
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Input images -> last feature maps ``(B, num_features, h, w)``."""

    @abstractmethod
    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps -> logits ``(B, num_classes)``."""

    @abstractmethod
    def reset_classifier(self, num_classes: int) -> None:
        """Replace the layers in ``classifier_layers`` with fresh ones for ``num_classes``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
