"""The contract every cnnlab classifier keeps, so transfer learning, feature caching and Grad-CAM
work the same for the whole zoo.

- ``forward_features(x)``: the last feature maps ``(B, num_features, h, w)`` (before pooling);
- ``forward_head(x)``: pooling and classifier, features -> logits ``(B, num_classes)``;
- ``reset_classifier(num_classes)``: a fresh head for another class count;
- ``num_features``: channels that ``forward_features`` returns (the pooled feature size);
- ``gradcam_layer``: dotted name of the default Grad-CAM target (``model.get_submodule(name)``);
- ``first_conv``: dotted name of the conv that sees the image (adapted for other ``in_chans``);
- ``classifier_layers``: dotted names of the layers with ``num_classes`` outputs;
- ``feature_layers``: dotted names of the modules that end each stage, shallow to deep (default: the
  Grad-CAM layer alone); :meth:`Classifier.forward_intermediates` returns their maps and
  :meth:`Classifier.feature_info` their channels and strides: the several scales a detection head reads.

>>> import torch
>>> from cnnlab.models import create_model
>>> model = create_model("resnet18", num_classes=3, small_input=True)
>>> isinstance(model, Classifier), model.num_features, model.gradcam_layer
(True, 512, 'layer4')
>>> model.forward_features(torch.zeros(1, 3, 32, 32)).shape
torch.Size([1, 512, 4, 4])
>>> [(f["layer"], f["channels"], f["reduction"]) for f in create_model("resnet18").feature_info((3, 64, 64))]
[('layer1', 64, 4), ('layer2', 128, 8), ('layer3', 256, 16), ('layer4', 512, 32)]
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
    feature_layers: tuple[str, ...] = ()

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

    def forward_intermediates(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every layer in ``feature_layers`` (or the Grad-CAM layer) for ``x``, shallow to deep."""
        names = self.feature_layers or (self.gradcam_layer,)
        maps: dict[str, torch.Tensor] = {}
        handles = [
            self.get_submodule(name).register_forward_hook(
                lambda module, args, out, name=name: maps.__setitem__(name, out)
            )
            for name in names
        ]
        try:
            self.forward_features(x)
        finally:
            for handle in handles:
                handle.remove()
        return [maps[name] for name in names]

    def feature_info(self, input_size: tuple[int, ...]) -> list[dict[str, object]]:
        """Per feature layer: its name, channels and reduction (input side / map side) for one input of
        ``input_size`` (no batch axis), measured with a forward pass on zeros."""
        was_training = self.training
        self.eval()
        with torch.no_grad():
            maps = self.forward_intermediates(torch.zeros(1, *input_size))
        self.train(was_training)
        names = self.feature_layers or (self.gradcam_layer,)
        return [
            {"layer": name, "channels": m.shape[1], "reduction": input_size[-1] // m.shape[-1]}
            for name, m in zip(names, maps, strict=True)
        ]
