"""``keras.applications``: zoo networks with local pretrained weights, for transfer learning.

Each builder (``VGG16``, ``VGG19``, ``ResNet50``, ``MobileNetV2``, ``EfficientNetLiteB0``, and the
CIFAR-10 nets ``ResNet20`` / ``ResNet56``) returns an :class:`Application`: a layer that goes first in
a ``Sequential`` (the course's ``Sequential([conv_base, layers.Flatten(), ...])`` or ``model.add(conv_base)``),
is called on an ``Input`` in a functional model, or is used on its own with :meth:`Application.predict`. It
takes images with values 0..255, as Keras' EfficientNet does: it normalises them with its weights' mean/std
itself, so :func:`preprocess_input` is the identity. In a model it is one row of ``summary()``, of type
``Functional``, with its parameter count, as Keras shows its applications.

``weights``: None (random), a path to a weights file, or the name of the dataset the zoo has
weights for (``"imagenet"``, ``"cifar10"``): the file is looked up locally (``$CNNLAB_WEIGHTS``,
``~/.cache/cnnlab/weights``), never downloaded. ``include_top=False`` drops the classifier:
feature maps, or one vector per image with ``pooling='avg'`` / ``'max'``. ``input_shape`` is
channels-last ``(H, W, C)``. ``base.trainable = False`` freezes the weights (and BatchNorm statistics).
``weights`` / ``get_weights()`` / ``count_params()`` list every layer's weights and BatchNorm's moving
statistics, per layer in Keras' order and layouts (conv kernels ``(kh, kw, in, out)``).

Not Keras' weights: these are cnnlab's zoo files (torchvision's for the ImageNet nets), so numbers
differ from Keras' own ``VGG16`` while the architecture matches.

>>> base = ResNet20(weights=None, include_top=False, pooling="avg", input_shape=(32, 32, 3))
>>> base.predict(np.zeros((2, 32, 32, 3), np.float32)).shape
(2, 64)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.core.constants import IMAGENET_MEAN, IMAGENET_STD
from cnnlab.core.errors import ConfigError, ShapeError
from cnnlab.keras.application_layers import ApplicationLayer, keras_layer_modules, keras_weights, trace_shapes
from cnnlab.keras.application_outputs import InnerOutput, output_modules
from cnnlab.keras.layers import KERAS_LAYERS, Input, channels_last
from cnnlab.keras.weight_lists import WeightLists, find_layer
from cnnlab.layers.base import Layer, Shape, SymbolicTensor
from cnnlab.models.imagenet_classes import IMAGENET_CLASSES
from cnnlab.models.registry import create_model, input_options
from cnnlab.models.weights import WEIGHTS, WeightSpec, weight_spec, weight_specs

_POOLING = (None, "avg", "max")


class Application(WeightLists, Layer):
    """A zoo network as a Keras-style layer (see the module); build it with the named builders.

    >>> MobileNetV2(weights=None, include_top=False, input_shape=(96, 96, 3)).count_params()   # as Keras'
    2257984"""

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
        trainable: bool = True,
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
        self.model, self.weights_source, self.include_top, self.pooling = model, weights, include_top, pooling
        self.classes, self.classifier_activation = classes, classifier_activation
        self.activation = classifier_activation if include_top else None  # what compile reads for its loss
        spec = _named_weights(model, weights)
        if shape is not None:
            _check_size(model, shape, where)
        self.net = create_model(  # Keras' architecture at every size: no small-input stem (cnnlab's own option)
            model,
            weights=spec if spec is not None else weights,
            num_classes=classes if include_top else None,
            in_chans=None if shape is None else shape[0],
        )
        self._features: list[nn.Module] | None = None  # the modules include_top=False uses (traced once)
        self._layers: list[ApplicationLayer] | None = None  # Keras' inner layers, made when first asked for
        family = weight_specs(model)  # the input normalisation of the zoo's weights, with or without them
        mean, std = (family[0].mean, family[0].std) if family else (IMAGENET_MEAN, IMAGENET_STD)
        channels = 3 if shape is None else shape[0]
        self.register_buffer("mean", torch.tensor(mean[:channels]).view(1, -1, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(std[:channels]).view(1, -1, 1, 1) * 255, persistent=False)
        if not include_top:  # drop the zoo net's unused classifier: not kept in memory, not saved (VGG16: 123M values)
            used = {id(m) for m in self._used_modules()}
            for child_name, child in list(self.net.named_children()):
                if not any(id(m) in used for m in child.modules()):
                    setattr(self.net, child_name, nn.Identity())
        self._trainable = True
        self.trainable = trainable

    #: What Keras' ``summary()`` calls an application's type.
    keras_class_name = "Functional"

    @property
    def trainable(self) -> bool:
        """False freezes every weight, and BatchNorm keeps its statistics (Keras' ``base.trainable = False``)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        self.net.requires_grad_(self._trainable)
        for layer in self._layers or []:  # as in Keras, the whole model's flag sets every inner layer's
            layer.trainable = self._trainable

    @property
    def layers(self) -> list[ApplicationLayer]:
        """The layers inside, in Keras' order and names for MobileNetV2 (154 without the top), VGG16 and VGG19
        (torch's module paths for the other nets); ``layer.trainable = False`` freezes one
        (:mod:`cnnlab.keras.application_layers`).

        >>> base = MobileNetV2(weights=None, include_top=False, input_shape=(96, 96, 3))
        >>> base.trainable = True
        >>> for layer in base.layers[:120]:
        ...     layer.trainable = False
        >>> len(base.layers), base.layers[1].name, len(base.trainable_weights)
        (154, 'Conv1', 36)
        """
        if self._layers is None:
            found = keras_layer_modules(self.model, self.net, self.include_top, self.pooling)
            self._layers = [ApplicationLayer(name, module, self) for name, module in found]
            for layer in self._layers:
                layer.trainable = self._trainable
        return self._layers

    # ----- the graph: Keras' base.input, base.output, base.get_layer(name).output -------------------------
    @property
    def input(self) -> SymbolicTensor:
        """The application's input tensor (Keras' ``base_model.input``): ``Model(base.input, outputs)`` builds a
        model over the application (``base.output``) or its inner layers (``base.get_layer(name).output``)."""
        start = self.__dict__.get("_graph_input")
        if start is None:
            if self.input_shape is None:
                raise ConfigError(
                    f"{self.label}: the application has no input tensor without an input shape",
                    fix="build it with input_shape=(H, W, C)",
                )
            start = self.__dict__["_graph_input"] = Input(shape=channels_last(self.input_shape))
        return start.output

    @property
    def output(self) -> SymbolicTensor:
        """The application's output tensor on :attr:`input` (Keras' ``base_model.output``): put a head on it, e.g.
        ``Model(base.input, Dense(5)(GlobalAveragePooling2D()(base.output)))``."""
        if self.__dict__.get("_graph_output") is None:
            self.__dict__["_graph_output"] = self(self.input)
        return self.__dict__["_graph_output"]

    def get_layer(self, name: str | None = None, index: int | None = None) -> ApplicationLayer:
        """An inner layer by ``name`` or ``index`` of :attr:`layers` (Keras' ``base.get_layer("block5_conv4")``)."""
        return find_layer(self.layers, name, index)  # type: ignore[no-any-return]

    def inner_output(self, name: str) -> SymbolicTensor:
        """The output tensor of the inner layer ``name`` (what ``get_layer(name).output`` returns)."""
        made: dict[str, SymbolicTensor] = self.__dict__.setdefault("_inner_outputs", {})
        if name == "input_layer":
            return self.input
        if name not in made:
            modules = output_modules(self.model, self.net)
            if name not in modules:
                raise ConfigError(
                    f"{self.label}: the output of the inner layer {name!r} is not available"
                    + ("" if modules else f": inner outputs are kept for VGG16 and VGG19, not {self.model}"),
                    fix="use the application's own output (base.output), or VGG16 / VGG19 for inner activations",
                )
            if not self.built:  # now, not on the first pass with the hooks on
                self.build(self.input_shape)
            trace_shapes(self.layers, self.net, self.forward, self.input_shape)  # type: ignore[arg-type]
            layer = self.get_layer(name)
            made[name] = InnerOutput(self, name, modules[name], layer.keras_class_name)(self.input)
        return made[name]

    def inner_outputs(self) -> list[InnerOutput]:
        """The :class:`InnerOutput` layers made so far (one pass of the net computes all of them)."""
        return [t.layer for t in self.__dict__.get("_inner_outputs", {}).values()]  # type: ignore[misc]

    def summary(self, print_fn: Any = None, show_trainable: bool = False) -> None:
        """Keras' table of the layers inside (:attr:`layers`), with output shapes and parameters."""
        from cnnlab.keras.models import print_summary  # models imports this module

        shape = self.input_shape if self.input_shape is not None else (self.mean.shape[1], 224, 224)
        trace_shapes(self.layers, self.net, self.forward, shape)  # type: ignore[arg-type]
        print_summary(str(self.name), self.layers, self.weights, self.trainable_weights, print_fn, show_trainable)

    # ----- Keras' weight lists ----------------------------------------------------------------------
    @property
    def weights(self) -> list[torch.Tensor]:
        """Every weight, layer by layer in Keras' order (BatchNorm: gamma, beta, moving mean, moving variance)
        and layouts; torch views: writing to them writes the network."""
        return [weight for module in self._used_modules() for weight in keras_weights(module)]

    def _used_modules(self) -> list[nn.Module]:
        """The net's modules in order; without the top, only those ``forward_features`` runs (traced once on
        zeros, in inference mode), so the classifier the zoo net still holds is not listed or counted."""
        if self.include_top:
            return list(self.net.modules())
        if self._features is None:
            shape = self.input_shape if self.input_shape is not None else (self.mean.shape[1], 224, 224)
            called: set[int] = set()
            hooks = [m.register_forward_hook(lambda m, args, out: called.add(id(m))) for m in self.net.modules()]
            was_training = self.net.training
            try:
                self.net.eval()
                with torch.no_grad():
                    self.net.forward_features(torch.zeros(1, *shape))  # type: ignore[operator]
            finally:
                for hook in hooks:
                    hook.remove()
                self.net.train(was_training)
            self._features = [m for m in self.net.modules() if id(m) in called]
        return self._features

    def get_config(self) -> dict[str, Any]:
        """The builder's arguments (shapes channels-last): a saved model rebuilds the net and loads its weights
        from the model file (``weights=None`` here: the zoo file is not needed again)."""
        return {
            "layer": "Application",
            "model": self.model,
            "weights": None,
            "include_top": self.include_top,
            "input_shape": None if self.input_shape is None else list(channels_last(self.input_shape)),  # type: ignore[arg-type]
            "pooling": self.pooling,
            "classes": self.classes,
            "classifier_activation": self.classifier_activation,
            "name": self.name,
            "trainable": self.trainable,
        }

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
        for layer in self._layers or []:  # a frozen BatchNormalization runs in inference mode, as in Keras
            norm = layer.frozen_batch_norm
            if norm is not None:
                norm.eval()
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


if "Application" not in KERAS_LAYERS:  # saved models rebuild it by name (once, however this file is imported)
    KERAS_LAYERS.add("Application", Application)

_KERAS_MIN_SIDE = 32  # Keras' applications refuse smaller images ("Input size must be at least 32x32")


def _check_size(model: str, shape: Shape, where: str) -> None:
    """cnnlab's size rules for the net, and Keras' smallest input for the nets that would need cnnlab's
    small-input stem (which changes the architecture: Keras has none)."""
    if input_options(model, shape) and min(shape[1:]) < _KERAS_MIN_SIDE:
        raise ConfigError(
            f"{model} takes images of at least {_KERAS_MIN_SIDE}x{_KERAS_MIN_SIDE} (as Keras' applications); "
            f"received input_shape {channels_last(shape)}",
            where=where,
            fix="resize the images, or use cnnlab.models.create_model(..., small_input=True) outside cnnlab.keras",
        )


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


def decode_predictions(preds: Any, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """Keras' ``decode_predictions`` for 1000-class ImageNet outputs: per image, the ``top`` classes as
    ``(class index, name, score)``, best first; the name is Keras' (the first ImageNet name, spaces as
    underscores: ``'tabby'``, ``'tiger_cat'``). Keras gives the WordNet id first (``'n02123045'``); cnnlab keeps
    no WordNet table offline, so the first item is the class index as a string.

    >>> scores = np.zeros((1, 1000), np.float32); scores[0, 309], scores[0, 310] = 0.7, 0.2
    >>> decode_predictions(scores, top=2)
    [[('309', 'bee', 0.7), ('310', 'ant', 0.2)]]
    """
    values = np.asarray(preds, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(IMAGENET_CLASSES):
        raise ShapeError(
            f"decode_predictions expects a batch of 1000 ImageNet scores, shape (samples, 1000). "
            f"Received: shape={values.shape}",
            fix="pass the output of an ImageNet classifier (include_top=True)",
        )
    names = [name.split(",")[0].strip().replace(" ", "_") for name in IMAGENET_CLASSES]
    best = np.argsort(-values, axis=1, kind="stable")[:, :top]
    rows = zip(values, best, strict=True)
    return [[(str(i), names[i], round(float(row[i]), 6)) for i in order] for row, order in rows]


def _model_module(name: str, builders: dict[str, Any]) -> ModuleType:
    """``keras.applications.<name>`` (``mobilenet_v2``, ``vgg16``, ...): the builders, ``preprocess_input`` and
    ``decode_predictions``, importable as ``from cnnlab.keras.applications.mobilenet_v2 import preprocess_input``."""
    module = ModuleType(f"{__name__}.{name}", f"Keras' ``applications.{name}``: {', '.join(builders)}.")
    shared = {"preprocess_input": preprocess_input, "decode_predictions": decode_predictions}
    for key, value in {**builders, **shared}.items():
        setattr(module, key, value)
    sys.modules[module.__name__] = module
    return module


def _builder(model: str, default_weights: str, keras_name: str) -> Any:
    def build(
        include_top: bool = True,
        weights: str | Path | None = default_weights,
        input_shape: Sequence[int] | None = None,
        pooling: str | None = None,
        classes: int | None = None,
        classifier_activation: str | None = "softmax",
        name: str | None = None,
    ) -> Application:
        rows = 224 if input_shape is None else int(input_shape[0])
        default = f"mobilenetv2_1.00_{rows}" if keras_name == "MobileNetV2" else keras_name.lower()  # Keras' names
        return Application(
            model, weights, include_top, input_shape, pooling, classes, classifier_activation, name=name or default
        )

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

mobilenet_v2 = _model_module("mobilenet_v2", {"MobileNetV2": MobileNetV2})
vgg16 = _model_module("vgg16", {"VGG16": VGG16})
vgg19 = _model_module("vgg19", {"VGG19": VGG19})
resnet50 = _model_module("resnet50", {"ResNet50": ResNet50})
resnet = _model_module("resnet", {"ResNet50": ResNet50})

__all__ = [
    "VGG16",
    "VGG19",
    "Application",
    "EfficientNetLiteB0",
    "MobileNetV2",
    "ResNet20",
    "ResNet50",
    "ResNet56",
    "decode_predictions",
    "mobilenet_v2",
    "preprocess_input",
    "resnet",
    "resnet50",
    "vgg16",
    "vgg19",
]
