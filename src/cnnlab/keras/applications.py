"""``keras.applications``: zoo networks with local pretrained weights, for transfer learning.

Each builder (``VGG16``, ``VGG19``, ``ResNet50``, ``MobileNetV2``, ``EfficientNetLiteB0``, and the
CIFAR-10 nets ``ResNet20`` / ``ResNet56``) returns an :class:`Application`: a layer that goes first in
a ``Sequential`` (or is called on its own with :meth:`Application.predict`) and takes images with
values 0..255, as Keras' EfficientNet does: it normalises them with its weights' mean/std itself,
so :func:`preprocess_input` is the identity.

``weights``: None (random), a path to a weights file, or the name of the dataset the zoo has
weights for (``"imagenet"``, ``"cifar10"``): the file is looked up locally (``$CNNLAB_WEIGHTS``,
``~/.cache/cnnlab/weights``), never downloaded. ``include_top=False`` drops the classifier:
feature maps, or one vector per image with ``pooling='avg'`` / ``'max'``. ``input_shape`` is
channels-last ``(H, W, C)``. ``base.trainable = False`` freezes the weights (and BatchNorm statistics).

Not Keras' weights: these are cnnlab's zoo files (torchvision's for the ImageNet nets), so numbers
differ from Keras' own ``VGG16`` while the architecture matches.

>>> base = ResNet20(weights=None, include_top=False, pooling="avg", input_shape=(32, 32, 3))
>>> base.predict(np.zeros((2, 32, 32, 3), np.float32)).shape
(2, 64)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.core.constants import IMAGENET_MEAN, IMAGENET_STD
from cnnlab.core.errors import ConfigError
from cnnlab.layers.base import Layer, Shape
from cnnlab.models.registry import create_model, input_options
from cnnlab.models.weights import WEIGHTS, WeightSpec, weight_spec, weight_specs

_POOLING = (None, "avg", "max")


class Application(Layer):
    """A zoo network as a Keras-style layer (see the module); build it with the named builders."""

    def __init__(
        self,
        model: str,
        weights: str | Path | None = None,
        include_top: bool = True,
        input_shape: Sequence[int] | None = None,
        pooling: str | None = None,
        classes: int | None = None,
        classifier_activation: str | None = "softmax",
        *,
        name: str | None = None,
    ) -> None:
        where = f"keras.applications ({model})"
        if pooling not in _POOLING:
            raise ConfigError(f"pooling must be None, 'avg' or 'max'. Received: {pooling!r}", where=where)
        if classifier_activation not in ("softmax", None):
            raise ConfigError(
                f"classifier_activation must be 'softmax' or None. Received: {classifier_activation!r}", where=where
            )
        shape = None if input_shape is None else (int(input_shape[-1]), *(int(n) for n in input_shape[:-1]))
        super().__init__(name=name or model, input_shape=shape)
        self.model, self.weights, self.include_top, self.pooling = model, weights, include_top, pooling
        self.classes, self.classifier_activation = classes, classifier_activation
        self.activation = classifier_activation if include_top else None  # what compile reads for its loss
        spec = _named_weights(model, weights)
        options = input_options(model, shape) if shape is not None else {}
        self.net = create_model(
            model,
            weights=spec if spec is not None else weights,
            num_classes=classes if include_top else None,
            in_chans=None if shape is None else shape[0],
            **options,
        )
        family = weight_specs(model)  # the input normalisation of the zoo's weights, with or without them
        mean, std = (family[0].mean, family[0].std) if family else (IMAGENET_MEAN, IMAGENET_STD)
        channels = 3 if shape is None else shape[0]
        self.register_buffer("mean", torch.tensor(mean[:channels]).view(1, -1, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(std[:channels]).view(1, -1, 1, 1) * 255, persistent=False)
        self._trainable = True

    @property
    def trainable(self) -> bool:
        """False freezes every weight, and BatchNorm keeps its statistics (Keras' ``base.trainable = False``)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        self.net.requires_grad_(self._trainable)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 3:
            self.fail(f"takes images (channels, height, width); received per-sample shape {input_shape}")
        was_training = self.net.training
        self.net.eval()
        with torch.no_grad():
            out = self.forward(torch.zeros(1, *input_shape))
        self.net.train(was_training)
        return tuple(out.shape[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.net.train(self.training and self._trainable)
        x = (x - self.mean) / self.std
        if self.include_top:
            logits = self.net(x)
            return logits.softmax(dim=1) if self.classifier_activation == "softmax" else logits
        features = self.net.forward_features(x)
        if self.pooling == "avg":
            return features.mean(dim=(2, 3))
        if self.pooling == "max":
            return features.amax(dim=(2, 3))
        return features

    def predict(self, x: Any, batch_size: int = 32) -> np.ndarray:
        """Outputs for NHWC images ``x`` (values 0..255) as numpy; feature maps come back NHWC, as in Keras."""
        images = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).permute(0, 3, 1, 2)
        was_training = self.training
        self.eval()
        with torch.inference_mode():
            out = torch.cat([self(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
        self.train(was_training)
        return (out.permute(0, 2, 3, 1) if out.dim() == 4 else out).numpy()


def _named_weights(model: str, weights: str | Path | None) -> WeightSpec | None:
    """The spec for a dataset name such as ``"imagenet"``; None for no weights or a file path."""
    if weights is None or not isinstance(weights, str) or Path(weights).suffix or Path(weights).is_file():
        return None
    if f"{model}.{weights}" in WEIGHTS:
        return weight_spec(f"{model}.{weights}")
    known = [s.name.split(".", 1)[1] for s in weight_specs(model)]
    raise ConfigError(
        f"{model} has no {weights!r} weights in cnnlab's zoo",
        where="keras.applications",
        fix=f"use weights={' or '.join(map(repr, known))}, a path to a weights file, or None"
        if known
        else "use weights=None (random) or a path to a weights file",
    )


def preprocess_input(x: Any) -> Any:
    """The identity: an :class:`Application` takes 0..255 images and normalises them itself.

    >>> preprocess_input(np.array([0.0, 255.0])).tolist()
    [0.0, 255.0]
    """
    return x


def _builder(model: str, default_weights: str, keras_name: str) -> Any:
    def build(
        include_top: bool = True,
        weights: str | Path | None = default_weights,
        input_shape: Sequence[int] | None = None,
        pooling: str | None = None,
        classes: int | None = None,
        classifier_activation: str | None = "softmax",
    ) -> Application:
        return Application(model, weights, include_top, input_shape, pooling, classes, classifier_activation)

    build.__name__ = build.__qualname__ = keras_name
    build.__doc__ = f"``{model}`` from cnnlab's zoo (weights ``{default_weights!r}`` by default) as an Application."
    return build


VGG16 = _builder("vgg16", "imagenet", "VGG16")
VGG19 = _builder("vgg19", "imagenet", "VGG19")
ResNet50 = _builder("resnet50", "imagenet", "ResNet50")
MobileNetV2 = _builder("mobilenet_v2", "imagenet", "MobileNetV2")
EfficientNetLiteB0 = _builder("efficientnet_lite0", "imagenet", "EfficientNetLiteB0")
ResNet20 = _builder("resnet20", "cifar10", "ResNet20")
ResNet56 = _builder("resnet56", "cifar10", "ResNet56")

__all__ = [
    "VGG16",
    "VGG19",
    "Application",
    "EfficientNetLiteB0",
    "MobileNetV2",
    "ResNet20",
    "ResNet50",
    "ResNet56",
    "preprocess_input",
]
