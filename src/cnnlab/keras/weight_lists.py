"""Keras' weight lists and layer lookup, derived once for everything that holds Keras-layout ``weights``: a model,
an application, an inner output of one.

>>> from cnnlab.keras import Sequential, layers
>>> model = Sequential([layers.Dense(2, input_shape=(3,))])
>>> model.count_params(), len(model.trainable_weights), [w.shape for w in model.get_weights()]
(8, 2, [(3, 2), (2,)])
>>> find_layer(model.layers, "dens", None)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
cnnlab.core.errors.ConfigError: get_layer: no layer named 'dens' (did you mean 'dense'?). Fix: the layers: dense
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from cnnlab.core.errors import ConfigError, ShapeError

__all__ = ["WeightLists", "as_arrays", "assign_weights", "find_layer"]


def as_arrays(weights: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """``weights`` as numpy arrays (copies): Keras' ``get_weights``."""
    return [w.detach().cpu().numpy().copy() for w in weights]


def assign_weights(label: str, current: Sequence[torch.Tensor], weights: Sequence[Any]) -> None:
    """Copy ``weights`` (arrays in ``current``'s order and shapes) into ``current``: Keras' ``set_weights`` of
    ``label``; a wrong count or shape is an error naming the weight, and nothing is written."""
    values = [np.asarray(w) for w in weights]
    if len(values) != len(current):
        raise ShapeError(
            f"set_weights: {label} has {len(current)} weight arrays; received {len(values)}",
            fix="pass what get_weights() returns",
        )
    for i, (target, value) in enumerate(zip(current, values, strict=True)):
        if tuple(target.shape) != value.shape:
            raise ShapeError(
                f"set_weights: weight {i} of {label} has shape {tuple(target.shape)}; received {value.shape}",
                fix="pass what get_weights() returns, in Keras' layouts",
            )
    with torch.no_grad():
        for target, value in zip(current, values, strict=True):
            target.copy_(torch.as_tensor(value, dtype=target.dtype))


class WeightLists:
    """``trainable_weights``, ``non_trainable_weights``, ``get_weights``, ``set_weights`` and ``count_params`` from
    a ``weights`` property (torch views in Keras' layouts: writing to them writes the network)."""

    weights: list[torch.Tensor]
    label: str

    @property
    def trainable_weights(self) -> list[torch.Tensor]:
        """The weights ``fit`` updates (none after ``trainable = False``)."""
        return [w for w in self.weights if w.requires_grad]

    @property
    def non_trainable_weights(self) -> list[torch.Tensor]:
        """Frozen weights and BatchNorm's moving statistics."""
        return [w for w in self.weights if not w.requires_grad]

    def get_weights(self) -> list[np.ndarray]:
        """:attr:`weights` as numpy arrays (copies), Keras' ``get_weights``."""
        return as_arrays(self.weights)

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set every weight from arrays in :meth:`get_weights` order and shapes."""
        assign_weights(self.label, self.weights, weights)

    def count_params(self) -> int:
        """Number of weight values, BatchNorm's moving statistics included (Keras' count)."""
        return sum(w.numel() for w in self.weights)


def find_layer(layers: Sequence[Any], name: str | None, index: int | None) -> Any:
    """Keras' ``get_layer(name=...)`` / ``get_layer(index=...)`` over ``layers`` (a typo gets "did you mean")."""
    if (name is None) == (index is None):
        raise ConfigError("get_layer: give a name or an index, not both", fix="model.get_layer('conv2d')")
    if index is not None:
        if not -len(layers) <= index < len(layers):
            raise ConfigError(
                f"get_layer: index {index} is out of range: the model has {len(layers)} layers",
                fix=f"use 0..{len(layers) - 1}",
            )
        return layers[index]
    for layer in layers:
        if layer.name == name:
            return layer
    names = [str(layer.name) for layer in layers]
    close = difflib.get_close_matches(str(name), names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ConfigError(f"get_layer: no layer named {name!r}{hint}", fix=f"the layers: {', '.join(names)}")
