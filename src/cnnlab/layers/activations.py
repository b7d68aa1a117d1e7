"""Activations by Keras name, and the ``Activation`` layer.

``softmax`` works over the channel axis (dim 1 of an NCHW or (N, units) tensor) and always
returns float32, also under bf16 autocast, so probabilities stay exact enough for a log loss.
``leaky_relu`` uses Keras' slope 0.2 (torch's default is 0.01).

>>> import torch
>>> Activation("relu6")(torch.tensor([[-1.0, 3.0, 9.0]])).tolist()
[[0.0, 3.0, 6.0]]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from cnnlab.layers.base import Layer, Shape, check_choice, register_layer


class Softmax(nn.Module):
    """Softmax over dim 1, computed and returned in float32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=1, dtype=torch.float32)


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "linear": nn.Identity,
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softmax": Softmax,
    "swish": nn.SiLU,
}


def check_activation(layer: str, activation: Any) -> str | None:
    """``None`` or a known activation name (see :data:`ACTIVATIONS`)."""
    return None if activation is None else check_choice(layer, "activation", activation, list(ACTIVATIONS))


def make_activation(activation: str | None) -> nn.Module:
    """The torch module for an activation name (``None``: identity)."""
    return ACTIVATIONS[activation or "linear"]()


@register_layer
class Activation(Layer):
    """Apply an activation by name: relu, relu6, leaky_relu, elu, gelu, sigmoid, tanh, softmax, swish, linear.

    >>> Activation("softmax")(torch.zeros(1, 4)).tolist()
    [[0.25, 0.25, 0.25, 0.25]]
    """

    def __init__(self, activation: str, *, name: str | None = None, input_shape: Shape | None = None) -> None:
        super().__init__(name=name, input_shape=input_shape)
        self.activation = check_choice("Activation", "activation", activation, list(ACTIVATIONS))
        self.act = make_activation(self.activation)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x)
