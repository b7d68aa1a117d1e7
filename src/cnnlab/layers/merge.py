"""Merge layers for functional graphs: Concatenate and Add. Both take a list of inputs.

>>> from cnnlab.layers import Conv2D, Input
>>> x = Input((3, 16, 16))
>>> Concatenate()([Conv2D(8, 1)(x), Conv2D(4, 3, padding="same")(x)]).shape
(12, 16, 16)
"""

from __future__ import annotations

import torch

from cnnlab.core.errors import ConfigError
from cnnlab.layers.base import Layer, Shape, register_layer


def _check_list(layer: Layer, input_shape: list[Shape]) -> None:
    if len(input_shape) < 2:
        layer.fail(f"needs a list of at least 2 inputs, received {len(input_shape)}", fix="pass [a, b, ...]")


@register_layer
class Concatenate(Layer):
    """Join inputs along ``axis`` of the batch tensor (default 1: channels of NCHW; negative counts from the end).

    >>> Concatenate().compute_output_shape([(8, 4, 4), (2, 4, 4)])
    (10, 4, 4)
    """

    multi_input = True

    def __init__(self, axis: int = 1, *, name: str | None = None) -> None:
        super().__init__(name=name)
        if not isinstance(axis, int) or axis == 0:
            raise ConfigError(
                f"Concatenate: axis must be a non-zero int (0 is the batch axis). Received: axis={axis!r}",
                fix="use axis=1 for the channels of NCHW tensors",
            )
        self.axis = axis

    def _sample_axis(self, rank: int) -> int:
        """``axis`` as an index into the per-sample shape of ``rank`` axes."""
        axis = self.axis - 1 if self.axis > 0 else rank + self.axis
        if not 0 <= axis < rank:
            self.fail(f"axis={self.axis} is out of range for inputs with {rank + 1} axes (batch included)")
        return axis

    def compute_output_shape(self, input_shape: list[Shape]) -> Shape:
        _check_list(self, input_shape)
        same_rank = len({len(s) for s in input_shape}) == 1
        axis = self._sample_axis(len(input_shape[0]))
        if not same_rank or len({s[:axis] + s[axis + 1 :] for s in input_shape}) != 1:
            shapes = " and ".join(str(s) for s in input_shape)
            self.fail(
                f"inputs must match on every axis except axis={self.axis}. Received shapes: {shapes}",
                fix="resize the branches (padding='same', matching strides) so only the channels differ",
            )
        first = input_shape[0]
        return (*first[:axis], sum(s[axis] for s in input_shape), *first[axis + 1 :])

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, dim=self.axis)


@register_layer
class Add(Layer):
    """Element-wise sum of inputs of one shape (no broadcasting), e.g. a residual connection.

    >>> Add().compute_output_shape([(8, 4, 4), (8, 4, 4)])
    (8, 4, 4)
    """

    multi_input = True

    def __init__(self, *, name: str | None = None) -> None:
        super().__init__(name=name)

    def compute_output_shape(self, input_shape: list[Shape]) -> Shape:
        _check_list(self, input_shape)
        if len(set(input_shape)) != 1:
            shapes = " and ".join(str(s) for s in input_shape)
            self.fail(
                f"inputs must have the same shape. Received shapes: {shapes}",
                fix="project the shortcut with Conv2D(filters, 1, strides=...) to match the other branch",
            )
        return input_shape[0]

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out
