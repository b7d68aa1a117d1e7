"""The activations style transfer compares: named layers of a backbone, the backbone cut after the last one.

Layers are named as the course names them for VGG (Keras' ``block4_conv2``: the conv's output after its
ReLU, as a Keras conv with ``activation='relu'`` gives it), or by any module path of the model
(``layer2``, ``features.12``). Other backbones default to five layers spread over their convolutions.

>>> from cnnlab.models import create_model
>>> names = vgg_layer_names(create_model("vgg19"))
>>> names["block1_conv1"], names["block4_conv2"], names["block5_conv1"]
('features.1', 'features.22', 'features.29')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.models.vgg import VGG
from cnnlab.tasks.style.costs import swag as swag_smoothing

COURSE_STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
GATYS_CONTENT_LAYER = "block4_conv2"  # Gatys et al. and jcjohnson's relu4_2; the course uses block5_conv4
CAFFE_ACTIVATION_SCALE = 1 / 255  # Caffe VGG's 0..255 activations back to the course's [0, 1] scale


def vgg_layer_names(model: nn.Module) -> dict[str, str]:
    """Keras' VGG layer names (``block<b>_conv<k>``, ``block<b>_pool``) -> module paths in ``model.features``.

    A conv's name points at the ReLU after it: Keras' conv layer includes its activation.
    """
    features = getattr(model, "features", None)
    if not isinstance(model, VGG) or not isinstance(features, nn.Sequential):
        return {}
    names: dict[str, str] = {}
    block, conv = 1, 0
    for index, module in enumerate(features):
        if isinstance(module, nn.Conv2d):
            conv += 1
            names[f"block{block}_conv{conv}"] = f"features.{index}"
        elif isinstance(module, nn.ReLU) and conv:
            names[f"block{block}_conv{conv}"] = f"features.{index}"
        elif isinstance(module, nn.MaxPool2d):
            names[f"block{block}_pool"] = f"features.{index}"
            block, conv = block + 1, 0
    return names


def default_layers(model: nn.Module) -> tuple[tuple[str, ...], str]:
    """``(style layers, content layer)`` for a backbone: Gatys' choice on VGG; else the model's stage ends
    (``feature_layers``) when it declares three or more, the content layer the second deepest; else five
    block outputs spread over its longest stack of blocks (a ``Sequential``/``ModuleList``), the fourth
    as content.

    >>> from cnnlab.models import create_model
    >>> default_layers(create_model("resnet18"))
    (('layer1', 'layer2', 'layer3', 'layer4'), 'layer3')
    >>> default_layers(create_model("efficientnet_lite0"))
    (('_blocks.0', '_blocks.4', '_blocks.8', '_blocks.11', '_blocks.15'), '_blocks.11')
    """
    if vgg_layer_names(model):
        return COURSE_STYLE_LAYERS, GATYS_CONTENT_LAYER
    stages = tuple(getattr(model, "feature_layers", ()))
    if len(stages) >= 3:
        return stages, stages[-2]
    stacks = [(name, len(m)) for name, m in model.named_modules() if isinstance(m, nn.Sequential | nn.ModuleList)]
    name, count = max(stacks, key=lambda item: item[1], default=("", 0))
    if count < 5:
        raise ConfigError(
            f"{type(model).__name__} has no stack of 5 or more blocks to take style layers from",
            where="--model",
            fix="pick a deeper zoo model (vgg19, resnet18, efficientnet_lite0), or name layers with --style-layers",
        )
    picks = [f"{name}.{round(i * (count - 1) / 4)}" for i in range(5)]
    return tuple(picks), picks[3]


class StyleFeatures(nn.Module):
    """Images in ``[0, 1]`` (RGB) -> ``{layer: activations}`` for the named layers, normalised for the
    backbone (``mean``/``std``), times ``scale`` and optionally SWAG-smoothed; the backbone is frozen and
    in eval mode.

    ``scale`` puts activations on the course's scale: the course feeds VGG pixels in ``[0, 1]``, Caffe's
    VGG weights want ``0..255``, so their activations are about 255x larger and, unscaled, the style cost
    (4th power) would swamp the content cost (2nd power) by ``255^2``; :data:`CAFFE_ACTIVATION_SCALE`.

    >>> from cnnlab.models import create_model
    >>> net = StyleFeatures(create_model("vgg11"), ["block1_conv1", "block2_conv1"])
    >>> {k: tuple(v.shape) for k, v in net(torch.rand(1, 3, 32, 32)).items()}
    {'block1_conv1': (1, 64, 32, 32), 'block2_conv1': (1, 128, 16, 16)}
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[str],
        mean: Sequence[float] = (0.0, 0.0, 0.0),
        std: Sequence[float] = (1.0, 1.0, 1.0),
        swag: bool = False,
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        aliases = vgg_layer_names(model)
        self.layers = tuple(dict.fromkeys(layers))
        paths = {name: aliases.get(name, name) for name in self.layers}
        modules = dict(model.named_modules())
        unknown = [name for name, path in paths.items() if path not in modules or not path]
        if unknown:
            valid = list(aliases) or [n for n, m in model.named_modules() if n and isinstance(m, nn.Conv2d | nn.ReLU)]
            shown = ", ".join(valid[:40]) + (" ..." if len(valid) > 40 else "")
            raise ConfigError(
                f"unknown layer {', '.join(repr(u) for u in unknown)} for {type(model).__name__}",
                where="style layers",
                fix=f"use one of: {shown}",
            )
        self.paths = paths
        self.swag = swag
        self.scale = scale
        self.register_buffer("mean", torch.tensor(list(mean)).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std)).view(1, -1, 1, 1))
        for p in model.parameters():
            p.requires_grad_(False)
        # A VGG stack is cut after the last layer asked for: nothing deeper is computed. Other nets run whole.
        if aliases:
            last = max(int(path.split(".")[1]) for path in paths.values())
            self.body: nn.Module = model.features[: last + 1].eval()
            self.run_whole = False
        else:
            self.body = model.eval()
            self.run_whole = True
        for module in self.body.modules():
            if isinstance(module, nn.ReLU):
                module.inplace = False  # a kept activation must not be overwritten by the next in-place op

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (image - self.mean) / self.std
        found: dict[str, torch.Tensor] = {}
        if not self.run_whole:
            wanted = {int(path.split(".")[1]): name for name, path in self.paths.items()}
            for index, module in enumerate(self.body):
                x = module(x)
                if index in wanted:
                    found[wanted[index]] = x
        else:
            found = self._hooked(x)
        if self.swag:
            found = {name: swag_smoothing(a) for name, a in found.items()}
        elif self.scale != 1.0:
            found = {name: a * self.scale for name, a in found.items()}
        return {name: found[name] for name in self.layers}

    def _hooked(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        found: dict[str, torch.Tensor] = {}
        handles = [
            self.body.get_submodule(path).register_forward_hook(
                lambda module, args, out, name=name: found.__setitem__(name, out)
            )
            for name, path in self.paths.items()
        ]
        try:
            forward = getattr(self.body, "forward_features", self.body)
            forward(x)
        finally:
            for handle in handles:
                handle.remove()
        return found


def layer_weights(layers: Sequence[str], weights: Sequence[float] | None = None) -> Mapping[str, float]:
    """Per style layer weight ``lambda_l``: equal and summing to 1 (the course's 0.2 x 5) unless given.

    >>> dict(layer_weights(["a", "b"])), dict(layer_weights(["a", "b"], [0.7, 0.3]))
    ({'a': 0.5, 'b': 0.5}, {'a': 0.7, 'b': 0.3})
    """
    if weights is None:
        return {name: 1.0 / len(layers) for name in layers}
    if len(weights) != len(layers):
        raise ConfigError(
            f"{len(weights)} style layer weights for {len(layers)} style layers",
            where="--style-layer-weights",
            fix="give one weight per style layer",
        )
    return dict(zip(layers, (float(w) for w in weights), strict=True))
