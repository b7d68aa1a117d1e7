"""Core layers: Dense, Flatten, Dropout, SpatialDropout2D, BatchNormalization, ZeroPadding2D,
UpSampling2D and Rescaling.

>>> import torch
>>> head = [Flatten(), Dense(10, activation="softmax")]
>>> x = torch.randn(2, 3, 4, 4)
>>> for layer in head:
...     x = layer(x)
>>> x.shape, round(x.sum().item(), 4)
(torch.Size([2, 10]), 2.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.layers.activations import check_activation, make_activation
from cnnlab.layers.base import (
    INITIALIZERS,
    Layer,
    Shape,
    check_choice,
    check_positive,
    check_rate,
    init_weights,
    register_layer,
)
from cnnlab.layers.conv import check_rank

_BATCH_NORM: dict[int, type[nn.Module]] = {1: nn.BatchNorm1d, 2: nn.BatchNorm1d, 3: nn.BatchNorm2d, 4: nn.BatchNorm3d}


@register_layer
class Dense(Layer):
    """Fully connected layer on ``(features,)`` input: ``Dense(units, activation=None, use_bias=True)``.

    >>> Dense(128, activation="relu").compute_output_shape((5408,))
    (128,)
    """

    def __init__(
        self,
        units: int,
        activation: str | None = None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        *,
        name: str | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__(name=name, input_shape=input_shape)
        self.units = check_positive("Dense", "units", units)
        self.activation = check_activation("Dense", activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = check_choice("Dense", "kernel_initializer", kernel_initializer, list(INITIALIZERS))
        self.act = make_activation(self.activation)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 1:
            self.fail(
                f"expects flat (features,) input, received {input_shape}",
                fix="put Flatten() or GlobalAveragePooling2D() before Dense",
            )
        if self.built and input_shape != self.input_shape:
            self.fail(f"was built for input {self.input_shape}, received {input_shape}")
        return (self.units,)

    def create(self, input_shape: Shape) -> None:
        self.linear = nn.Linear(input_shape[0], self.units, bias=self.use_bias)
        init_weights(self.linear, self.kernel_initializer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.linear(x))


@register_layer
class Flatten(Layer):
    """``(C, H, W) -> (C * H * W,)`` in channels-first order (whatever the memory layout).

    >>> Flatten().compute_output_shape((32, 13, 13))
    (5408,)
    """

    def __init__(self, *, name: str | None = None, input_shape: Sequence[int] | None = None) -> None:
        super().__init__(name=name, input_shape=input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (math.prod(input_shape),)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x, 1)


@register_layer
class Dropout(Layer):
    """Zero each value with probability ``rate`` while training (scaling the rest by ``1 / (1 - rate)``)."""

    def __init__(self, rate: float, *, name: str | None = None, input_shape: Sequence[int] | None = None) -> None:
        super().__init__(name=name, input_shape=input_shape)
        self.rate = check_rate("Dropout", rate)
        self.dropout = nn.Dropout(self.rate)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(x)


@register_layer
class SpatialDropout2D(Layer):
    """Zero whole channels of ``(C, H, W)`` with probability ``rate`` while training."""

    def __init__(self, rate: float, *, name: str | None = None, input_shape: Sequence[int] | None = None) -> None:
        super().__init__(name=name, input_shape=input_shape)
        self.rate = check_rate("SpatialDropout2D", rate)
        self.dropout = nn.Dropout2d(self.rate)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_rank(self, input_shape, 2)
        return input_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(x)


@register_layer
class BatchNormalization(Layer):
    """Batch normalisation over the channel axis (axis 1 of NCHW, or the features of ``(N, F)``).

    Keras' defaults and meaning: ``momentum=0.99`` is the weight of the *old* running average
    (torch's ``momentum`` is ``1 - 0.99``), ``epsilon=1e-3``.

    >>> bn = BatchNormalization()
    >>> bn.build((16, 8, 8)), bn.bn.momentum
    ((16, 8, 8), 0.010000000000000009)
    """

    def __init__(
        self,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        *,
        name: str | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__(name=name, input_shape=input_shape)
        if not 0 <= momentum < 1:
            raise ConfigError(
                f"BatchNormalization: momentum must be in [0, 1). Received: momentum={momentum}", fix="e.g. 0.99"
            )
        if epsilon <= 0:
            raise ConfigError(f"BatchNormalization: epsilon must be > 0. Received: epsilon={epsilon}", fix="e.g. 1e-3")
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) not in _BATCH_NORM:
            self.fail(f"expects (C,), (C, L), (C, H, W) or (C, D, H, W) input, received {input_shape}")
        if self.built and input_shape[0] != self.input_shape[0]:
            self.fail(f"was built for {self.input_shape[0]} channels, received input_shape={input_shape}")
        return input_shape

    def create(self, input_shape: Shape) -> None:
        self.bn = _BATCH_NORM[len(input_shape)](
            input_shape[0], eps=self.epsilon, momentum=1 - self.momentum, affine=self.center or self.scale
        )
        if self.bn.affine and not self.center:
            self.bn.bias.requires_grad_(False)  # stays 0
        if self.bn.affine and not self.scale:
            self.bn.weight.requires_grad_(False)  # stays 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x)


def _axis_pair(value: Any) -> tuple[int, int] | None:
    """An int or a ``(before, after)`` pair of ints >= 0, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value, value
    if isinstance(value, Sequence) and len(value) == 2 and all(isinstance(v, int) and v >= 0 for v in value):
        return value[0], value[1]
    return None


@register_layer
class ZeroPadding2D(Layer):
    """Pad height and width with zeros: ``padding`` is an int, ``(h, w)`` or ``((top, bottom), (left, right))``.

    >>> ZeroPadding2D(((1, 2), (0, 3))).compute_output_shape((3, 4, 4))
    (3, 7, 7)
    """

    def __init__(
        self, padding: int | Sequence[Any] = 1, *, name: str | None = None, input_shape: Sequence[int] | None = None
    ) -> None:
        super().__init__(name=name, input_shape=input_shape)
        both = _axis_pair(padding)
        axes = [both, both] if both else [_axis_pair(p) for p in padding] if isinstance(padding, Sequence) else [None]
        if len(axes) != 2 or None in axes or (both is None and len(padding) != 2):
            raise ConfigError(
                f"ZeroPadding2D: padding must be an int, (h, w) or ((top, bottom), (left, right)) of ints >= 0. "
                f"Received: padding={padding!r}",
                fix="e.g. padding=1",
            )
        (top, bottom), (left, right) = axes
        self.padding = ((top, bottom), (left, right))
        self.pad = nn.ZeroPad2d((left, right, top, bottom))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_rank(self, input_shape, 2)
        (top, bottom), (left, right) = self.padding
        c, h, w = input_shape
        return (c, h + top + bottom, w + left + right)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pad(x)


@register_layer
class UpSampling2D(Layer):
    """Repeat (``'nearest'``) or interpolate (``'bilinear'``, half-pixel centres as in Keras) by ``size``.

    >>> UpSampling2D((2, 3)).compute_output_shape((8, 4, 4))
    (8, 8, 12)
    """

    def __init__(
        self,
        size: int | Sequence[int] = 2,
        interpolation: str = "nearest",
        *,
        name: str | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__(name=name, input_shape=input_shape)
        self.size = check_positive("UpSampling2D", "size", size, 2)
        self.interpolation = check_choice("UpSampling2D", "interpolation", interpolation, ["nearest", "bilinear"])
        align = False if self.interpolation == "bilinear" else None
        self.upsample = nn.Upsample(
            scale_factor=tuple(float(s) for s in self.size), mode=self.interpolation, align_corners=align
        )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_rank(self, input_shape, 2)
        c, h, w = input_shape
        return (c, h * self.size[0], w * self.size[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsample(x)


@register_layer
class Rescaling(Layer):
    """``x * scale + offset``; integer input (uint8 images) comes out as float32.

    >>> Rescaling(1 / 127.5, offset=-1)(torch.tensor([[0, 255]], dtype=torch.uint8))
    tensor([[-1.,  1.]])
    """

    def __init__(
        self, scale: float, offset: float = 0.0, *, name: str | None = None, input_shape: Sequence[int] | None = None
    ) -> None:
        super().__init__(name=name, input_shape=input_shape)
        self.scale, self.offset = float(scale), float(offset)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_floating_point():
            x = x.float()
        return x * self.scale + self.offset
