"""Pooling layers: Max/AveragePooling 1D/2D/3D and the global poolings.

``strides`` defaults to ``pool_size``. With ``padding='same'`` (TensorFlow's rule, possibly
asymmetric) padded cells never win a max and are not counted in an average, as in Keras.

>>> import torch
>>> MaxPooling2D(2, padding="same")(-torch.ones(1, 1, 3, 3)).tolist()   # padding is -inf, not 0
[[[[-1.0, -1.0], [-1.0, -1.0]]]]
>>> AveragePooling2D(2, padding="same")(torch.ones(1, 1, 3, 3)).tolist()  # padding is not counted
[[[[1.0, 1.0], [1.0, 1.0]]]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.core.shapes import resolve_padding
from cnnlab.layers.base import Layer, Shape, check_padding, check_positive, register_layer
from cnnlab.layers.conv import check_rank, flat_pads, window_output

_MAX: dict[int, type[nn.Module]] = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_AVG: dict[int, type[nn.Module]] = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}


class _Pooling(Layer):
    rank: ClassVar[int] = 2
    mode: ClassVar[str] = "max"

    def __init__(
        self,
        pool_size: int | Sequence[int] = 2,
        strides: int | Sequence[int] | None = None,
        padding: str | int | Sequence[Any] = "valid",
        *,
        name: str | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__(name=name, input_shape=input_shape)
        cls = type(self).__name__
        self.pool_size = check_positive(cls, "pool_size", pool_size, self.rank)
        self.strides = self.pool_size if strides is None else check_positive(cls, "strides", strides, self.rank)
        self.padding = check_padding(cls, padding, self.rank)
        table = _MAX if self.mode == "max" else _AVG
        self.pool = table[self.rank](self.pool_size, self.strides)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_rank(self, input_shape, self.rank)
        ones = (1,) * self.rank
        return window_output(self, input_shape, self.pool_size, self.strides, self.padding, ones, input_shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == "valid":
            return self.pool(x)
        sizes = x.shape[2:]
        pads = flat_pads(resolve_padding(self.padding, sizes, self.pool_size, self.strides, (1,) * self.rank))
        if not any(pads):
            return self.pool(x)
        if self.mode == "max":
            return self.pool(F.pad(x, pads, value=float("-inf")))
        # Average over the real cells only: pool the zero-padded input and divide by the pooled mask.
        count = self.pool(F.pad(torch.ones((1, 1, *sizes), dtype=x.dtype, device=x.device), pads))
        return self.pool(F.pad(x, pads)) / count


@register_layer
class MaxPooling1D(_Pooling):
    """Max over windows of ``(C, L)``.

    >>> MaxPooling1D(3).compute_output_shape((4, 10))
    (4, 3)
    """

    rank, mode = 1, "max"


@register_layer
class MaxPooling2D(_Pooling):
    """Max over windows of ``(C, H, W)``.

    >>> MaxPooling2D().compute_output_shape((32, 26, 26))
    (32, 13, 13)
    """

    rank, mode = 2, "max"


@register_layer
class MaxPooling3D(_Pooling):
    """Max over windows of ``(C, D, H, W)``.

    >>> MaxPooling3D(2).compute_output_shape((1, 4, 5, 6))
    (1, 2, 2, 3)
    """

    rank, mode = 3, "max"


@register_layer
class AveragePooling1D(_Pooling):
    """Mean over windows of ``(C, L)``.

    >>> AveragePooling1D(2, padding="same").compute_output_shape((4, 5))
    (4, 3)
    """

    rank, mode = 1, "avg"


@register_layer
class AveragePooling2D(_Pooling):
    """Mean over windows of ``(C, H, W)``.

    >>> AveragePooling2D(3, strides=1).compute_output_shape((2, 5, 5))
    (2, 3, 3)
    """

    rank, mode = 2, "avg"


@register_layer
class AveragePooling3D(_Pooling):
    """Mean over windows of ``(C, D, H, W)``.

    >>> AveragePooling3D(2).compute_output_shape((1, 4, 4, 4))
    (1, 2, 2, 2)
    """

    rank, mode = 3, "avg"


class _GlobalPooling(Layer):
    rank: ClassVar[int] = 2
    mode: ClassVar[str] = "avg"

    def __init__(
        self, keepdims: bool = False, *, name: str | None = None, input_shape: Sequence[int] | None = None
    ) -> None:
        super().__init__(name=name, input_shape=input_shape)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_rank(self, input_shape, self.rank)
        return (input_shape[0], *(1,) * self.rank) if self.keepdims else (input_shape[0],)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(2, 2 + self.rank))
        if self.mode == "avg":
            return x.mean(dim=dims, keepdim=self.keepdims)
        return x.amax(dim=dims, keepdim=self.keepdims)


@register_layer
class GlobalAveragePooling1D(_GlobalPooling):
    """Mean over the length: ``(C, L) -> (C,)``."""

    rank, mode = 1, "avg"


@register_layer
class GlobalAveragePooling2D(_GlobalPooling):
    """Mean over height and width: ``(C, H, W) -> (C,)`` (``(C, 1, 1)`` with ``keepdims=True``).

    >>> GlobalAveragePooling2D().compute_output_shape((64, 7, 7))
    (64,)
    """

    rank, mode = 2, "avg"


@register_layer
class GlobalAveragePooling3D(_GlobalPooling):
    """Mean over depth, height and width: ``(C, D, H, W) -> (C,)``."""

    rank, mode = 3, "avg"


@register_layer
class GlobalMaxPooling1D(_GlobalPooling):
    """Max over the length: ``(C, L) -> (C,)``."""

    rank, mode = 1, "max"


@register_layer
class GlobalMaxPooling2D(_GlobalPooling):
    """Max over height and width: ``(C, H, W) -> (C,)``.

    >>> GlobalMaxPooling2D(keepdims=True).compute_output_shape((64, 7, 7))
    (64, 1, 1)
    """

    rank, mode = 2, "max"


@register_layer
class GlobalMaxPooling3D(_GlobalPooling):
    """Max over depth, height and width: ``(C, D, H, W) -> (C,)``."""

    rank, mode = 3, "max"
