"""The explorer's layer list: one entry per module call, numbers from ``cnnlab.layers.summary()`` (shapes,
parameters, multiply-adds, receptive field) and the arithmetic written out (:mod:`cnnlab.explore.arithmetic`).

A model the explorer cannot hook (no module call returns image feature maps, or a TorchScript module) is a
:class:`~cnnlab.core.errors.ConfigError` naming the layer types it supports.

>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 2))
>>> layers = describe_layers(net, (1, 8, 8))
>>> [(layer.name, layer.type, layer.maps) for layer in layers][:3]
[('', 'Sequential', False), ('0', 'Conv2d', True), ('1', 'ReLU', True)]
>>> layers[1].params, layers[1].macs, layers[3].receptive_field
(40, 1296, ((4, 2), (4, 2)))
>>> describe_layers(nn.Sequential(nn.Flatten(), nn.Linear(64, 2)), (1, 8, 8))
Traceback (most recent call last):
...
cnnlab.core.errors.ConfigError: cnnlab explore cannot hook Sequential: no layer returns image feature maps ...
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.explore.arithmetic import Arithmetic, arithmetic
from cnnlab.explore.record import record_calls
from cnnlab.layers.summary import summary

Shape = tuple[int, ...]

SUPPORTED = (
    "Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d, adaptive pools, BatchNorm2d, activations (ReLU, ...), "
    "Dropout2d, and blocks (nn.Sequential or any nn.Module) made of them"
)
"""What the explorer shows maps of: module calls that return feature maps ``(B, C, h, w)``."""


@dataclass(frozen=True)
class Layer:
    """One call of one module: ``summary()``'s row (``params`` = the module's own, counted at its first call;
    ``macs`` None for blocks; ``receptive_field`` ``(size, jump)`` per axis or None) and its written arithmetic.
    ``maps``: the output is one batch of feature maps that the page shows."""

    index: int
    name: str
    type: str
    depth: int
    occurrence: int
    calls: int
    is_leaf: bool
    input_shape: Shape | None
    output_shapes: tuple[Shape, ...]
    params: int
    macs: int | None
    receptive_field: tuple[tuple[int, int], ...] | None
    maps: bool
    arithmetic: Arithmetic

    @property
    def label(self) -> str:
        """``layer1.0.relu (call 2 of 2)`` for a module called twice; ``(model)`` for the whole model."""
        name = self.name or "(model)"
        return f"{name} (call {self.occurrence + 1} of {self.calls})" if self.calls > 1 else name

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every field, and the label."""
        data = asdict(self)
        data["output_shapes"] = [list(s) for s in self.output_shapes]
        data["input_shape"] = None if self.input_shape is None else list(self.input_shape)
        data["receptive_field"] = None if self.receptive_field is None else [list(f) for f in self.receptive_field]
        data["arithmetic"]["shape"] = list(self.arithmetic.shape)
        return {**data, "label": self.label}


def describe_layers(model: nn.Module, input_size: tuple[int, int, int]) -> list[Layer]:
    """Every module call of ``model`` on one image of ``input_size`` ``(C, H, W)``, in ``summary()``'s order."""
    if isinstance(model, torch.jit.ScriptModule):
        raise ConfigError(
            f"cnnlab explore cannot hook a TorchScript module ({type(model).__name__})",
            where="model",
            fix=f"explore the PyTorch model itself (a run folder or a zoo name); explore shows {SUPPORTED}",
        )
    table = summary(model, input_size)
    calls = record_calls(model, torch.zeros(1, *input_size))
    if [row.name for row in table.layers] != [call.name for call in calls]:
        raise ConfigError(
            f"{type(model).__name__} called its layers in another order in a second forward pass",
            where="model",
            fix="explore a model whose forward pass does the same thing every time",
        )
    counts = Counter(call.name for call in calls)
    layers = [
        Layer(
            index=call.index,
            name=call.name,
            type=call.type,
            depth=row.depth,
            occurrence=call.occurrence,
            calls=counts[call.name],
            is_leaf=row.is_leaf,
            input_shape=call.input_shape,
            output_shapes=row.output_shapes,
            params=row.trainable + row.frozen,
            macs=row.macs,
            receptive_field=None
            if row.receptive_field is None
            else tuple((f.size, f.jump) for f in row.receptive_field),
            maps=call.has_maps and len(row.output_shapes) == 1,
            arithmetic=arithmetic(call.module, call.input_shape, _first(row.output_shapes), call.occurrence == 0),
        )
        for row, call in zip(table.layers, calls, strict=True)
    ]
    if not any(layer.maps for layer in layers[1:]):
        raise _unhookable(model)
    return layers


def _first(shapes: tuple[Shape, ...]) -> Shape | None:
    return shapes[0] if shapes else None


def _unhookable(model: nn.Module) -> ConfigError:
    leaves = sorted({type(m).__name__ for m in model.modules() if next(m.children(), None) is None and m is not model})
    seen = f"its layers: {', '.join(leaves)}" if leaves else "it has no submodules: its forward calls functions"
    return ConfigError(
        f"cnnlab explore cannot hook {type(model).__name__}: no layer returns image feature maps (B, C, h, w) "
        f"that a forward hook can see ({seen})",
        where="model",
        fix=f"explore an image model built from nn.Module layers: {SUPPORTED}",
    )
