"""An application's ``layers``: Keras' list of the layers inside ``MobileNetV2`` / ``VGG16`` / ``VGG19`` (the
same names and count as Keras), each one a view of the torch modules that hold its weights, so the course's
fine-tuning code freezes block by block:

    base_model.trainable = True
    for layer in base_model.layers[:120]:   # MobileNetV2: 154 layers, as Keras prints
        layer.trainable = False

Other zoo nets list their torch modules in order (names are torch's paths; Keras' counts differ).
Layers without weights (input, padding, add, pooling, activations) are in the list as Keras has them, with
nothing to freeze.

>>> from cnnlab.models import create_model
>>> names = [name for name, _ in keras_layer_modules("mobilenet_v2", create_model("mobilenet_v2"), False, None)]
>>> len(names), names[:4], names[119:121]
(154, ['input_layer', 'Conv1', 'bn_Conv1', 'Conv1_relu'], ['block_13_pad', 'block_13_depthwise'])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.keras.weight_lists import as_arrays
from cnnlab.layers.base import SymbolicTensor

if TYPE_CHECKING:
    from cnnlab.keras.applications import Application

LayerModules = list[tuple[str, nn.Module | None]]


class ApplicationLayer:
    """One of an application's inner layers: its Keras ``name``, its weights and a ``trainable`` flag.

    ``trainable = False`` freezes its weights (and a BatchNormalization's statistics, which then run in
    inference mode, as in Keras); a layer without weights has nothing to freeze."""

    built = True

    def __init__(self, name: str, module: nn.Module | None, application: Application | None = None) -> None:
        self.name = name
        self.module = module
        self.application = application
        self.keras_class_name = _keras_class(name, module)
        self.output_shape: tuple[int, ...] | None = None  # per sample, channels-first; set by trace_shapes
        self._trainable = True

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        if self.module is not None:
            self.module.requires_grad_(self._trainable)

    @property
    def weights(self) -> list[torch.Tensor]:
        """Its weights in Keras' order and layouts (:func:`keras_weights`)."""
        return [] if self.module is None else keras_weights(self.module)

    def get_weights(self) -> list[np.ndarray]:
        return as_arrays(self.weights)

    def count_params(self) -> int:
        return sum(w.numel() for w in self.weights)

    @property
    def output(self) -> SymbolicTensor:
        """Its output tensor on the application's input (Keras' ``layer.output``; VGG16 and VGG19), for
        ``Model(base.input, [base.get_layer(name).output, ...])`` (:mod:`cnnlab.keras.application_outputs`)."""
        if self.application is None:
            raise ConfigError(f"the layer {self.name} belongs to no application", fix="take it from base.layers")
        return self.application.inner_output(self.name)

    @property
    def frozen_batch_norm(self) -> nn.Module | None:
        """The BatchNorm module to run in inference mode, when this layer is one and is frozen."""
        is_norm = isinstance(self.module, nn.modules.batchnorm._BatchNorm)
        return self.module if is_norm and not self._trainable else None

    def __repr__(self) -> str:
        kind = "no weights" if self.module is None else type(self.module).__name__
        return f"<ApplicationLayer {self.name} ({kind}), trainable={self._trainable}>"


def keras_weights(module: nn.Module) -> list[torch.Tensor]:
    """``module``'s own weights as Keras lists them (BatchNorm: gamma, beta, moving mean, moving variance), in
    Keras' layouts; torch views: writing to them writes the network."""
    found = [_keras_layout(module, weight) for weight in module.parameters(recurse=False)]
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
        found += [module.running_mean, module.running_var]  # type: ignore[list-item]
    return found


def _keras_layout(module: nn.Module, weight: nn.Parameter) -> torch.Tensor:
    """A torch weight as Keras lays it out: conv kernels ``(kh, kw, in, out)`` (depthwise ``(kh, kw, C, m)``),
    dense kernels ``(in, out)``; others as they are."""
    if isinstance(module, nn.Conv2d) and weight is module.weight:
        if module.groups > 1 and module.groups == module.in_channels:
            return weight[:, 0].unflatten(0, (module.in_channels, -1)).permute(2, 3, 0, 1)
        return weight.permute(2, 3, 1, 0)
    if isinstance(module, nn.Linear) and weight is module.weight:
        return weight.t()
    return weight


def trace_shapes(layers: list[ApplicationLayer], net: nn.Module, forward: Any, input_shape: tuple[int, ...]) -> None:
    """Set each layer's ``output_shape`` from one pass of ``forward`` on zeros of ``input_shape`` (C, H, W);
    a layer without a module gets the shape its Keras class makes of the previous one."""
    seen: dict[int, tuple[int, ...]] = {}

    def record(module: nn.Module, args: Any, out: torch.Tensor) -> None:  # returns None: the output stays
        seen.setdefault(id(module), tuple(out.shape[1:]))

    hooks = [layer.module.register_forward_hook(record) for layer in layers if layer.module is not None]
    was_training = net.training
    try:
        net.eval()
        with torch.no_grad():
            forward(torch.zeros(1, *input_shape))
    finally:
        for hook in hooks:
            hook.remove()
        net.train(was_training)
    previous = input_shape
    for layer in layers:
        if layer.module is not None:
            layer.output_shape = seen.get(id(layer.module))
        elif layer.keras_class_name == "ZeroPadding2D":  # Keras pads bottom and right by one before stride 2
            layer.output_shape = (previous[0], previous[1] + 1, previous[2] + 1)
        elif layer.keras_class_name == "MaxPooling2D":
            layer.output_shape = (previous[0], previous[1] // 2, previous[2] // 2)
        elif layer.keras_class_name.startswith("Global"):
            layer.output_shape = previous[:1]
        elif layer.keras_class_name == "Flatten":
            layer.output_shape = (int(np.prod(previous)),)
        else:  # the input, an Add
            layer.output_shape = previous
        previous = layer.output_shape or previous


_WEIGHTLESS = {
    "input_layer": "InputLayer",
    "flatten": "Flatten",
    "global_average_pooling2d": "GlobalAveragePooling2D",
    "global_max_pooling2d": "GlobalMaxPooling2D",
}
"""Keras' classes of the weightless layers :func:`keras_layer_modules` names, by name; by suffix below."""
_WEIGHTLESS_SUFFIXES = {"_pad": "ZeroPadding2D", "_add": "Add", "_pool": "MaxPooling2D"}


def _keras_class(name: str, module: nn.Module | None) -> str:
    """Keras' class name for an inner layer (``Conv2D``, ``DepthwiseConv2D``, ``BatchNormalization``, ...)."""
    if isinstance(module, nn.Conv2d):
        return "DepthwiseConv2D" if module.groups > 1 and module.groups == module.in_channels else "Conv2D"
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return "BatchNormalization"
    if isinstance(module, nn.Linear):
        return "Dense"
    if isinstance(module, nn.ReLU | nn.ReLU6):
        return "ReLU"
    if module is not None:
        return type(module).__name__
    if name in _WEIGHTLESS:
        return _WEIGHTLESS[name]
    return next((kind for suffix, kind in _WEIGHTLESS_SUFFIXES.items() if name.endswith(suffix)), "Layer")


def keras_layer_modules(model: str, net: nn.Module, include_top: bool, pooling: str | None) -> LayerModules:
    """``(Keras name, torch module or None)`` for each layer of the application, in Keras' order."""
    builders = {"mobilenet_v2": _mobilenet_v2, "vgg16": _vgg, "vgg19": _vgg}
    if model in builders:
        found = builders[model](net)
    else:
        found = [(name, module) for name, module in net.named_modules() if not list(module.children())]
        if not include_top:  # the classifier include_top=False dropped (Identity modules now)
            found = [(n, m) for n, m in found if not isinstance(m, nn.Identity)]
    top: LayerModules = []
    if include_top and model == "mobilenet_v2":
        top = [("global_average_pooling2d", None), ("predictions", net.get_submodule("classifier.1"))]
    elif include_top and model in builders:
        top = [
            ("flatten", None),
            ("fc1", net.get_submodule("classifier.0")),
            ("fc2", net.get_submodule("classifier.3")),
        ]
        top.append(("predictions", net.get_submodule("classifier.6")))
    found = [("input_layer", None), *found]
    if include_top:
        return found + top
    pools = {"avg": "global_average_pooling2d", "max": "global_max_pooling2d"}
    return found + ([(pools[pooling], None)] if pooling in pools else [])


def _mobilenet_v2(net: nn.Module) -> LayerModules:
    """Keras' MobileNetV2 names on torchvision's layout (``features.0`` stem, 17 inverted residuals, the 1x1
    head): 154 layers without the top."""
    get: Any = net.get_submodule
    found: LayerModules = [("Conv1", get("features.0.0")), ("bn_Conv1", get("features.0.1"))]
    found += [("Conv1_relu", get("features.0.2"))]
    first = "features.1.conv"
    found += [
        ("expanded_conv_depthwise", get(f"{first}.0.0")),
        ("expanded_conv_depthwise_BN", get(f"{first}.0.1")),
        ("expanded_conv_depthwise_relu", get(f"{first}.0.2")),
        ("expanded_conv_project", get(f"{first}.1")),
        ("expanded_conv_project_BN", get(f"{first}.2")),
    ]
    for block in range(1, 17):
        prefix, path = f"block_{block}_", f"features.{block + 1}.conv"
        found += [(f"{prefix}expand", get(f"{path}.0.0")), (f"{prefix}expand_BN", get(f"{path}.0.1"))]
        found += [(f"{prefix}expand_relu", get(f"{path}.0.2"))]
        if get(f"{path}.1.0").stride[0] == 2:
            found.append((f"{prefix}pad", None))  # Keras pads explicitly before a strided depthwise conv
        found += [
            (f"{prefix}depthwise", get(f"{path}.1.0")),
            (f"{prefix}depthwise_BN", get(f"{path}.1.1")),
            (f"{prefix}depthwise_relu", get(f"{path}.1.2")),
            (f"{prefix}project", get(f"{path}.2")),
            (f"{prefix}project_BN", get(f"{path}.3")),
        ]
        if get(f"features.{block + 1}").use_res_connect:
            found.append((f"{prefix}add", None))
    head = [("Conv_1", get("features.18.0")), ("Conv_1_bn", get("features.18.1")), ("out_relu", get("features.18.2"))]
    return found + head


def vgg_layers(net: nn.Module) -> list[tuple[str, nn.Module | None, nn.Module]]:
    """Keras' VGG layers (``block1_conv1`` ... ``block5_pool``) over torch's ``features``: each name with the module
    holding its weights (the convolution; None for a pooling) and the module whose output is the layer's (a
    convolution and its ReLU are one Keras layer, so the ReLU's; the max-pooling)."""
    found: list[tuple[str, nn.Module | None, nn.Module]] = []
    block, conv, weights = 1, 0, None
    for module in net.get_submodule("features").children():
        if isinstance(module, nn.Conv2d):
            conv, weights = conv + 1, module
        elif isinstance(module, nn.ReLU):
            found.append((f"block{block}_conv{conv}", weights, module))
        elif isinstance(module, nn.MaxPool2d):
            found.append((f"block{block}_pool", None, module))
            block, conv = block + 1, 0
    return found


def _vgg(net: nn.Module) -> LayerModules:
    """Keras' VGG names (``block1_conv1`` ... ``block5_pool``) with the modules holding their weights."""
    return [(name, weights) for name, weights, _ in vgg_layers(net)]
