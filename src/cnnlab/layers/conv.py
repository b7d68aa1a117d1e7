"""Convolution layers: Conv1D/2D/3D, Conv2DTranspose, DepthwiseConv2D and SeparableConv2D.

All are cross-correlations (as in Keras and torch) on channels-first input. ``padding`` is
``'valid'``, ``'same'`` (TensorFlow's rule: the output is ``ceil(n / stride)`` and an odd padding
total puts the extra pixel after, so even kernels and strided convs pad asymmetrically), an int,
or one int / ``(before, after)`` per axis. Output sizes come from :mod:`cnnlab.core.shapes`.
Weights start Keras-style: ``glorot_uniform`` kernels and zero biases.

>>> import torch
>>> conv = Conv2D(8, 4, strides=2, padding="same", activation="relu")
>>> conv.compute_output_shape((3, 7, 7))
(8, 4, 4)
>>> conv(torch.randn(2, 3, 7, 7)).shape
torch.Size([2, 8, 4, 4])
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.core.errors import ShapeError
from cnnlab.core.shapes import conv_output_size, effective_kernel_size, resolve_padding, transposed_conv_output_size
from cnnlab.layers.activations import check_activation, make_activation
from cnnlab.layers.base import (
    INITIALIZERS,
    Layer,
    Shape,
    check_choice,
    check_padding,
    check_positive,
    init_weights,
    register_layer,
)

_CONV: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_AXES = {1: "(C, L)", 2: "(C, H, W)", 3: "(C, D, H, W)"}


def check_rank(layer: Layer, input_shape: Shape, rank: int) -> None:
    """Fail unless ``input_shape`` is channels plus ``rank`` spatial axes."""
    if len(input_shape) != rank + 1:
        layer.fail(
            f"expects per-sample input {_AXES[rank]} (channels first), received {input_shape}",
            fix="torch tensors are NCHW; numpy arrays are NHWC and get transposed by the model facade",
        )


def window_output(
    layer: Layer,
    input_shape: Shape,
    kernel: Sequence[int],
    strides: Sequence[int],
    padding: Any,
    dilation: Sequence[int],
    channels: int,
) -> Shape:
    """Output shape of a sliding window layer; a window that does not fit names the layer and both shapes."""
    sizes = input_shape[1:]
    pads = resolve_padding(padding, sizes, kernel, strides, dilation)
    try:
        out = [
            conv_output_size(n, k, s, p, d)
            for n, k, s, p, d in zip(sizes, kernel, strides, pads, dilation, strict=True)
        ]
    except ShapeError:
        padded = tuple(n + b + a for n, (b, a) in zip(sizes, pads, strict=True))
        window = tuple(effective_kernel_size(k, d) for k, d in zip(kernel, dilation, strict=True))
        layer.fail(
            f"the {window} window (kernel_size={tuple(kernel)}, dilation_rate={tuple(dilation)}) is larger than "
            f"the padded input {padded}. Received: input_shape={input_shape}, padding={padding!r}",
            fix="use a smaller kernel or dilation, padding='same', fewer downsampling layers, or a larger input",
        )
    return (channels, *out)


def flat_pads(pads: Sequence[tuple[int, int]]) -> list[int]:
    """``[(before, after)] per axis`` in F.pad's order (last axis first)."""
    return [v for before, after in reversed(pads) for v in (before, after)]


class _Window(Layer):
    """Shared geometry of the forward convolutions: padding is done by the conv module when it is
    symmetric and fixed; otherwise (even kernels or strided 'same') by ``F.pad`` before it."""

    rank: ClassVar[int] = 2

    def _init_geometry(
        self, kernel_size: Any, strides: Any, padding: Any, dilation_rate: Any, activation: Any, initializer: str
    ) -> None:
        cls = type(self).__name__
        self.kernel_size = check_positive(cls, "kernel_size", kernel_size, self.rank)
        self.strides = check_positive(cls, "strides", strides, self.rank)
        self.padding = check_padding(cls, padding, self.rank)
        self.dilation_rate = check_positive(cls, "dilation_rate", dilation_rate, self.rank)
        self.activation = check_activation(cls, activation)
        self.kernel_initializer = check_choice(cls, "kernel_initializer", initializer, list(INITIALIZERS))
        self.act = make_activation(self.activation)
        # 'same' with a stride > 1 pads by the input size (n mod stride), so it is resolved per call.
        self._pads_per_call = self.padding == "same" and any(s > 1 for s in self.strides)
        self._pre_pad: list[int] = []

    @abstractmethod
    def out_channels(self, in_channels: int) -> int:
        """Channels of the output for ``in_channels`` input channels."""

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_rank(self, input_shape, self.rank)
        if self.built and input_shape[0] != self.input_shape[0]:
            self.fail(f"was built for {self.input_shape[0]} input channels, received input_shape={input_shape}")
        self._check_channels(input_shape[0])
        return window_output(
            self,
            input_shape,
            self.kernel_size,
            self.strides,
            self.padding,
            self.dilation_rate,
            self.out_channels(input_shape[0]),
        )

    def _check_channels(self, in_channels: int) -> None:
        """Subclasses with groups check divisibility here."""

    def _module_padding(self, input_shape: Shape) -> tuple[int, ...]:
        """Symmetric padding for the conv module; asymmetric or per-call padding goes to ``F.pad``."""
        if self._pads_per_call:
            return (0,) * self.rank
        pads = resolve_padding(self.padding, input_shape[1:], self.kernel_size, self.strides, self.dilation_rate)
        if all(b == a for b, a in pads):
            return tuple(b for b, _ in pads)
        self._pre_pad = flat_pads(pads)
        return (0,) * self.rank

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        if self._pads_per_call:
            pads = resolve_padding("same", x.shape[2:], self.kernel_size, self.strides, self.dilation_rate)
            return F.pad(x, flat_pads(pads))
        return F.pad(x, self._pre_pad) if self._pre_pad else x


class _Conv(_Window):
    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str | int | Sequence[Any] = "valid",
        dilation_rate: int | Sequence[int] = 1,
        groups: int = 1,
        activation: str | None = None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        *,
        name: str | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__(name=name, input_shape=input_shape)
        cls = type(self).__name__
        self.filters = check_positive(cls, "filters", filters)
        self.groups = check_positive(cls, "groups", groups)
        if self.filters % self.groups:
            raise ShapeError(
                f"{cls}: filters must be divisible by groups. Received: filters={filters}, groups={groups}",
                fix="pick filters as a multiple of groups",
            )
        self.use_bias = bool(use_bias)
        self._init_geometry(kernel_size, strides, padding, dilation_rate, activation, kernel_initializer)

    def out_channels(self, in_channels: int) -> int:
        return self.filters

    def _check_channels(self, in_channels: int) -> None:
        if in_channels % self.groups:
            self.fail(f"input channels ({in_channels}) must be divisible by groups={self.groups}")

    def create(self, input_shape: Shape) -> None:
        self.conv = _CONV[self.rank](
            input_shape[0],
            self.filters,
            self.kernel_size,
            stride=self.strides,
            padding=self._module_padding(input_shape),
            dilation=self.dilation_rate,
            groups=self.groups,
            bias=self.use_bias,
        )
        init_weights(self.conv, self.kernel_initializer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(self._pad(x)))


@register_layer
class Conv1D(_Conv):
    """1-D convolution over ``(C, L)``.

    >>> Conv1D(4, 3, padding="same").compute_output_shape((2, 10))
    (4, 10)
    """

    rank = 1


@register_layer
class Conv2D(_Conv):
    """2-D convolution over ``(C, H, W)``: ``Conv2D(filters, kernel_size, strides, padding, dilation_rate,
    groups, activation, use_bias)``.

    >>> Conv2D(32, 3, input_shape=(1, 28, 28)).compute_output_shape((1, 28, 28))
    (32, 26, 26)
    """

    rank = 2


@register_layer
class Conv3D(_Conv):
    """3-D convolution over ``(C, D, H, W)``.

    >>> Conv3D(2, 3, strides=2).compute_output_shape((1, 9, 9, 9))
    (2, 4, 4, 4)
    """

    rank = 3


@register_layer
class DepthwiseConv2D(_Window):
    """One ``kernel_size`` filter per input channel (times ``depth_multiplier``), no mixing across channels.

    >>> DepthwiseConv2D(3, depth_multiplier=2, padding="same").compute_output_shape((4, 8, 8))
    (8, 8, 8)
    """

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str | int | Sequence[Any] = "valid",
        depth_multiplier: int = 1,
        dilation_rate: int | Sequence[int] = 1,
        activation: str | None = None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        *,
        name: str | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__(name=name, input_shape=input_shape)
        self.depth_multiplier = check_positive(type(self).__name__, "depth_multiplier", depth_multiplier)
        self.use_bias = bool(use_bias)
        self._init_geometry(kernel_size, strides, padding, dilation_rate, activation, kernel_initializer)

    def out_channels(self, in_channels: int) -> int:
        return in_channels * self.depth_multiplier

    def create(self, input_shape: Shape) -> None:
        c = input_shape[0]
        self.conv = nn.Conv2d(
            c,
            c * self.depth_multiplier,
            self.kernel_size,
            stride=self.strides,
            padding=self._module_padding(input_shape),
            dilation=self.dilation_rate,
            groups=c,
            bias=self.use_bias,
        )
        init_weights(self.conv, self.kernel_initializer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(self._pad(x)))


@register_layer
class SeparableConv2D(_Window):
    """Depthwise ``kernel_size`` conv (times ``depth_multiplier``), then a 1x1 conv to ``filters`` (with the bias).

    >>> sep = SeparableConv2D(16, 3, input_shape=(8, 10, 10))
    >>> sep.build((8, 10, 10)), sum(p.numel() for p in sep.parameters())  # 8*9 + 8*16 + 16
    ((16, 8, 8), 216)
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str | int | Sequence[Any] = "valid",
        depth_multiplier: int = 1,
        dilation_rate: int | Sequence[int] = 1,
        activation: str | None = None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        *,
        name: str | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__(name=name, input_shape=input_shape)
        cls = type(self).__name__
        self.filters = check_positive(cls, "filters", filters)
        self.depth_multiplier = check_positive(cls, "depth_multiplier", depth_multiplier)
        self.use_bias = bool(use_bias)
        self._init_geometry(kernel_size, strides, padding, dilation_rate, activation, kernel_initializer)

    def out_channels(self, in_channels: int) -> int:
        return self.filters

    def create(self, input_shape: Shape) -> None:
        c, mid = input_shape[0], input_shape[0] * self.depth_multiplier
        self.depthwise = nn.Conv2d(
            c,
            mid,
            self.kernel_size,
            stride=self.strides,
            padding=self._module_padding(input_shape),
            dilation=self.dilation_rate,
            groups=c,
            bias=False,
        )
        self.pointwise = nn.Conv2d(mid, self.filters, 1, bias=self.use_bias)
        init_weights(self.depthwise, self.kernel_initializer)
        init_weights(self.pointwise, self.kernel_initializer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.pointwise(self.depthwise(self._pad(x))))


@register_layer
class Conv2DTranspose(Layer):
    """Transposed 2-D convolution (the gradient of ``Conv2D`` with respect to its input).

    Keras' sizes: ``'same'`` gives ``n * strides``; ``'valid'`` gives ``n * strides + max(f' - strides, 0)``
    with ``f'`` the dilated kernel; an int ``p`` gives ``(n - 1) * strides + f' - 2p``. For ``'same'``
    the odd pixel is cropped at the end, matching TensorFlow.

    >>> Conv2DTranspose(4, 3, strides=2, padding="same").compute_output_shape((8, 7, 7))
    (4, 14, 14)
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str | int = "valid",
        dilation_rate: int | Sequence[int] = 1,
        activation: str | None = None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        *,
        name: str | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__(name=name, input_shape=input_shape)
        cls = type(self).__name__
        self.filters = check_positive(cls, "filters", filters)
        self.kernel_size = check_positive(cls, "kernel_size", kernel_size, 2)
        self.strides = check_positive(cls, "strides", strides, 2)
        self.dilation_rate = check_positive(cls, "dilation_rate", dilation_rate, 2)
        padding = check_padding(cls, padding, 2)
        if not isinstance(padding, str | int):
            raise ShapeError(
                f"{cls}: padding must be 'valid', 'same' or an int. Received: padding={padding!r}",
                fix="crop the output with a following layer for uneven padding",
            )
        self.padding = padding
        self.activation = check_activation(cls, activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = check_choice(cls, "kernel_initializer", kernel_initializer, list(INITIALIZERS))
        self.act = make_activation(self.activation)
        self._geometry = [
            self._axis_geometry(k, s, d)
            for k, s, d in zip(self.kernel_size, self.strides, self.dilation_rate, strict=True)
        ]

    def _axis_geometry(self, k: int, s: int, d: int) -> tuple[int, int, int]:
        """``(module padding, output_padding, crop at the end)`` for one axis."""
        f_eff = effective_kernel_size(k, d)
        if isinstance(self.padding, int):
            return self.padding, 0, 0
        if self.padding == "valid" or f_eff < s:
            return 0, max(s - f_eff, 0), 0
        total = f_eff - s  # 'same': TF crops total // 2 before and the rest after
        return total // 2, 0, total % 2

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_rank(self, input_shape, 2)
        if self.built and input_shape[0] != self.input_shape[0]:
            self.fail(f"was built for {self.input_shape[0]} input channels, received input_shape={input_shape}")
        try:
            out = [
                transposed_conv_output_size(n, k, s, (p, p + crop), op, d)
                for n, k, s, d, (p, op, crop) in zip(
                    input_shape[1:], self.kernel_size, self.strides, self.dilation_rate, self._geometry, strict=True
                )
            ]
        except ShapeError as exc:
            self.fail(f"{exc.what}. Received: input_shape={input_shape}, padding={self.padding!r}", fix=exc.fix)
        return (self.filters, *out)

    def create(self, input_shape: Shape) -> None:
        self.conv = nn.ConvTranspose2d(
            input_shape[0],
            self.filters,
            self.kernel_size,
            stride=self.strides,
            padding=tuple(p for p, _, _ in self._geometry),
            output_padding=tuple(op for _, op, _ in self._geometry),
            dilation=self.dilation_rate,
            bias=self.use_bias,
        )
        init_weights(self.conv, self.kernel_initializer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)  # (B, filters, H', W')
        (_, _, crop_h), (_, _, crop_w) = self._geometry
        if crop_h or crop_w:
            y = y[:, :, : y.shape[2] - crop_h, : y.shape[3] - crop_w]
        return self.act(y)
