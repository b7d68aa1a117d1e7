"""The one home of convolution and pooling arithmetic.

Output size along one spatial axis (the textbook formula)::

    out = floor((n + p_before + p_after - f') / s) + 1,   f' = f + (f - 1)(d - 1)

with ``n`` the input size, ``f`` the kernel size, ``s`` the stride, ``d`` the dilation and
``p`` the padding on each side (``2p`` when symmetric).

>>> conv_output_size(6, 3)          # 6x6 image, 3x3 filter -> 4x4
4
>>> conv_output_size(6, 3, padding=1)
6
>>> conv_output_size(39, 5, stride=2)
18
>>> same_padding(7, 3, stride=2)    # TF 'same': out = ceil(7 / 2) = 4
(1, 1)

Counts follow the same conventions everywhere (``summary()``, ``cnnlab conv-calc``, the docs):
parameters are what ``sum(p.numel())`` reports, and one multiply-add (MAC) is one weight times one
input value added to an accumulator; bias additions and pooling comparisons are not counted.

>>> conv_params(3, 10, 3)           # 10 filters of 3x3x3, each with a bias
280
>>> conv_macs(192, 32, 5, output_size=28)   # 28x28x192 -> 5x5 conv -> 32 channels: 120.4M
120422400
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from cnnlab.core.errors import ShapeError

PaddingMode: TypeAlias = Literal["valid", "same"]
# One axis: symmetric int, or (before, after).
AxisPadding: TypeAlias = int | tuple[int, int]
# Any spatial rank: a mode, one int for every axis, or one AxisPadding per axis.
Padding: TypeAlias = PaddingMode | int | Sequence[AxisPadding]


def effective_kernel_size(kernel_size: int, dilation: int = 1) -> int:
    """Kernel extent with dilation: ``f' = f + (f - 1)(d - 1)``.

    >>> effective_kernel_size(3, dilation=2)
    5
    """
    _check_positive("kernel_size", kernel_size)
    _check_positive("dilation", dilation)
    return kernel_size + (kernel_size - 1) * (dilation - 1)


def conv_output_size(
    n: int,
    kernel_size: int,
    stride: int = 1,
    padding: AxisPadding = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Output length of a convolution or pooling window sliding over ``n`` positions.

    ``padding`` is an int (both sides) or ``(before, after)``. ``ceil_mode`` rounds up as
    PyTorch pooling does, dropping a last window that would start in the right padding.

    >>> conv_output_size(32, 5)        # LeNet-5 C1: 32 -> 28
    28
    >>> conv_output_size(5, 2, stride=2, ceil_mode=True)
    3
    """
    _check_positive("stride", stride)
    before, after = axis_padding(padding)
    f_eff = effective_kernel_size(kernel_size, dilation)
    span = n + before + after - f_eff
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= n + before:
        out -= 1  # PyTorch: the last window must start inside the input or the left padding
    # ceil mode (pooling) keeps a last window that hangs over the end, even when it is the only one.
    if out < 1:
        raise ShapeError(
            f"kernel extent {f_eff} (kernel_size={kernel_size}, dilation={dilation}) is larger than the padded "
            f"input {n + before + after} (size {n} + padding {before} + {after})",
            fix="use a smaller kernel or dilation, more padding or a larger input",
        )
    return out


def same_padding(n: int, kernel_size: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow/Keras 'same' padding ``(before, after)``: output is ``ceil(n / stride)``.

    An odd total is split with the extra pixel after, as TF does.

    >>> same_padding(28, 3)
    (1, 1)
    >>> same_padding(28, 4)
    (1, 2)
    """
    _check_positive("stride", stride)
    out = math.ceil(n / stride)
    total = max((out - 1) * stride + effective_kernel_size(kernel_size, dilation) - n, 0)
    return total // 2, total - total // 2


def size_preserving_padding(n: int, kernel_size: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """Padding that keeps the output size equal to ``n`` for any stride.

    From ``(n + 2p - f') / s + 1 = n``: ``p = (n*s - n + f' - s) / 2``, split as TF does when odd.

    >>> size_preserving_padding(6, 3)
    (1, 1)
    >>> size_preserving_padding(6, 3, stride=2)
    (3, 4)
    """
    total = n * stride - n + effective_kernel_size(kernel_size, dilation) - stride
    return total // 2, total - total // 2


def axis_padding(padding: AxisPadding) -> tuple[int, int]:
    """Normalise one axis' padding to ``(before, after)``.

    >>> axis_padding(2)
    (2, 2)
    """
    pair = (padding, padding) if isinstance(padding, int) else (int(padding[0]), int(padding[1]))
    if min(pair) < 0:
        raise ShapeError(f"padding must be >= 0. Received: padding={padding}")
    return pair


def resolve_padding(
    padding: Padding,
    sizes: Sequence[int],
    kernel_size: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
) -> list[tuple[int, int]]:
    """Turn any padding spec into ``(before, after)`` per spatial axis.

    >>> resolve_padding("same", [28, 28], [3, 3], [1, 1], [1, 1])
    [(1, 1), (1, 1)]
    >>> resolve_padding((1, 2), [28, 28], [3, 3], [1, 1], [1, 1])
    [(1, 1), (2, 2)]
    """
    rank = len(sizes)
    if padding == "valid":
        return [(0, 0)] * rank
    if padding == "same":
        return [same_padding(n, f, s, d) for n, f, s, d in zip(sizes, kernel_size, stride, dilation, strict=True)]
    if isinstance(padding, str):
        raise ShapeError(
            f"padding must be 'valid', 'same', an int or one value per axis. Received: padding={padding!r}"
        )
    if isinstance(padding, int):
        return [axis_padding(padding)] * rank
    if len(padding) != rank:
        raise ShapeError(f"padding needs one entry per spatial axis ({rank}). Received: padding={padding}")
    return [axis_padding(p) for p in padding]


def pool_output_size(
    n: int,
    kernel_size: int,
    stride: int | None = None,
    padding: AxisPadding = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Output length of max or average pooling; ``stride`` defaults to ``kernel_size`` as in PyTorch.

    PyTorch also requires each side's padding to be at most half the kernel size.

    >>> pool_output_size(28, 2)         # LeNet-5 S2: 28 -> 14
    14
    >>> pool_output_size(7, 3, stride=2, padding=1, ceil_mode=True)
    4
    """
    _check_positive("kernel_size", kernel_size)
    before, after = axis_padding(padding)
    if 2 * max(before, after) > kernel_size:
        raise ShapeError(
            f"pooling padding must be at most half the kernel size. Received: padding={padding}, "
            f"kernel_size={kernel_size}",
            fix=f"use padding <= {kernel_size // 2}",
        )
    return conv_output_size(n, kernel_size, kernel_size if stride is None else stride, padding, dilation, ceil_mode)


def transposed_conv_output_size(
    n: int,
    kernel_size: int,
    stride: int = 1,
    padding: AxisPadding = 0,
    output_padding: int = 0,
    dilation: int = 1,
) -> int:
    """Output length of a transposed convolution: ``(n - 1)s - p_before - p_after + f' + output_padding``.

    It inverts :func:`conv_output_size`; ``output_padding`` (less than the stride or the dilation)
    picks one of the sizes a strided convolution maps to the same ``n``.

    >>> transposed_conv_output_size(4, 3)               # undoes 6x6 -> 3x3 conv -> 4x4
    6
    >>> transposed_conv_output_size(7, 3, stride=2, padding=1, output_padding=1)   # 7 -> 14
    14
    """
    _check_positive("stride", stride)
    _check_positive("input size", n)
    before, after = axis_padding(padding)
    f_eff = effective_kernel_size(kernel_size, dilation)
    if not 0 <= output_padding < max(stride, dilation):
        raise ShapeError(
            f"output_padding must be >= 0 and smaller than the stride ({stride}) or the dilation ({dilation}). "
            f"Received: output_padding={output_padding}",
            fix="use output_padding in range(max(stride, dilation))",
        )
    out = (n - 1) * stride - before - after + f_eff + output_padding
    if out < 1:
        raise ShapeError(
            f"transposed convolution output size would be {out}: padding {before} + {after} removes more than "
            f"the {(n - 1) * stride + f_eff + output_padding} positions that input size {n} with kernel extent "
            f"{f_eff} and stride {stride} produce",
            fix="use less padding or a larger input",
        )
    return out


def conv_output_formula(
    n: int, kernel_size: int, stride: int = 1, padding: AxisPadding = 0, dilation: int = 1, ceil_mode: bool = False
) -> str:
    """The textbook formula with the numbers put in, ending in :func:`conv_output_size`'s answer.

    >>> conv_output_formula(39, 5, stride=2)
    'floor((39 + 2*0 - 5) / 2) + 1 = 18'
    >>> print(conv_output_formula(28, 3, padding=(1, 1), dilation=2))
    floor((28 + 2*1 - 5) / 1) + 1 = 26   (f' = 3 + (3 - 1)(2 - 1) = 5)
    """
    out = conv_output_size(n, kernel_size, stride, padding, dilation, ceil_mode)
    before, after = axis_padding(padding)
    pad = f"2*{before}" if before == after else f"{before} + {after}"
    f_eff = effective_kernel_size(kernel_size, dilation)
    text = f"{'ceil' if ceil_mode else 'floor'}(({n} + {pad} - {f_eff}) / {stride}) + 1 = {out}"
    if dilation > 1:
        text += f"   (f' = {kernel_size} + ({kernel_size} - 1)({dilation} - 1) = {f_eff})"
    return text


@dataclass(frozen=True)
class ReceptiveField:
    """Along one axis: how many input pixels one output value sees (``size``), and how many input
    pixels apart two neighbouring output values are (``jump``, the product of the strides so far)."""

    size: int = 1
    jump: int = 1

    def then(self, kernel_size: int, stride: int = 1, dilation: int = 1) -> ReceptiveField:
        """The field after one more conv or pool: ``r + (f' - 1) * j`` and ``j * s``.

        >>> ReceptiveField().then(3).then(3)      # two 3x3 convs see 5x5
        ReceptiveField(size=5, jump=1)
        >>> ReceptiveField().then(2, stride=2).then(3)
        ReceptiveField(size=6, jump=2)
        """
        _check_positive("stride", stride)
        return ReceptiveField(
            self.size + (effective_kernel_size(kernel_size, dilation) - 1) * self.jump, self.jump * stride
        )


def receptive_fields(layers: Iterable[tuple[int, int, int]]) -> list[ReceptiveField]:
    """Walk ``(kernel_size, stride, dilation)`` layers; one :class:`ReceptiveField` per layer output.

    >>> [rf.size for rf in receptive_fields([(5, 1, 1), (2, 2, 1), (5, 1, 1), (2, 2, 1)])]   # LeNet-5
    [5, 6, 14, 16]
    """
    fields: list[ReceptiveField] = []
    field = ReceptiveField()
    for kernel_size, stride, dilation in layers:
        field = field.then(kernel_size, stride, dilation)
        fields.append(field)
    return fields


@dataclass(frozen=True)
class AnchoredField:
    """A :class:`ReceptiveField` that also knows where it lies: ``start`` is the first input pixel that output 0
    sees (negative when the field reaches into the padding), so output ``i`` sees input pixels
    ``start + i * jump`` to ``start + i * jump + size - 1`` (what an exact crop of the image needs).

    >>> AnchoredField().then(3, padding=1).then(2, stride=2).then(3, padding=1)   # conv3 p1, pool2, conv3 p1
    AnchoredField(size=8, jump=2, start=-3)
    >>> _.span(0), _.span(0, n=28), _.span(13, n=28)   # outputs 0 and 13 of a 28-pixel axis; clipped to it
    ((-3, 4), (0, 4), (23, 27))
    """

    size: int = 1
    jump: int = 1
    start: int = 0

    def then(self, kernel_size: int, stride: int = 1, dilation: int = 1, padding: AxisPadding = 0) -> AnchoredField:
        """The field after one more conv or pool: size and jump as :meth:`ReceptiveField.then`, and
        ``start - p_before * j`` (the window of output 0 begins ``p_before`` of the previous layer's steps early).

        >>> AnchoredField().then(3, padding=1).then(3, padding=1)   # 'same' convs: centred on the output pixel
        AnchoredField(size=5, jump=1, start=-2)
        """
        field = ReceptiveField(self.size, self.jump).then(kernel_size, stride, dilation)
        before, _ = axis_padding(padding)
        return AnchoredField(field.size, field.jump, self.start - before * self.jump)

    def span(self, index: int, n: int | None = None) -> tuple[int, int]:
        """First and last input pixel (inclusive) that output ``index`` sees; clipped to ``0..n-1`` when the
        input length ``n`` is given.

        >>> AnchoredField(size=5, jump=1, start=-2).span(0), AnchoredField(size=5, jump=1, start=-2).span(0, n=8)
        ((-2, 2), (0, 2))
        """
        first = self.start + index * self.jump
        last = first + self.size - 1
        if n is None:
            return first, last
        _check_positive("n", n)
        return max(first, 0), min(last, n - 1)

    @property
    def field(self) -> ReceptiveField:
        """The size and jump alone."""
        return ReceptiveField(self.size, self.jump)


def anchored_fields(layers: Iterable[tuple[int, int, int, AxisPadding]]) -> list[AnchoredField]:
    """Walk ``(kernel_size, stride, dilation, padding)`` layers; one :class:`AnchoredField` per layer output.

    >>> [(f.size, f.jump, f.start) for f in anchored_fields([(3, 1, 1, 1), (2, 2, 1, 0), (3, 1, 1, 1)])]
    [(3, 1, -1), (4, 2, -1), (8, 2, -3)]
    """
    fields: list[AnchoredField] = []
    field = AnchoredField()
    for kernel_size, stride, dilation, padding in layers:
        field = field.then(kernel_size, stride, dilation, padding)
        fields.append(field)
    return fields


def conv_params(
    in_channels: int, out_channels: int, kernel_size: int | Sequence[int], groups: int = 1, bias: bool = True
) -> int:
    """Weights and biases of a convolution: ``out * (in / groups) * prod(kernel) + out``.

    An int ``kernel_size`` means a square ``f x f`` kernel.

    >>> conv_params(3, 10, 3)                 # 10 filters of 3x3x3 plus 10 biases
    280
    >>> conv_params(32, 64, (3, 3), groups=32, bias=False)
    576
    """
    _check_groups(in_channels, out_channels, groups)
    return out_channels * (in_channels // groups) * _area(kernel_size) + (out_channels if bias else 0)


def conv_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: int | Sequence[int],
    output_size: int | Sequence[int],
    groups: int = 1,
) -> int:
    """Multiply-adds of a convolution: every output value costs ``(in / groups) * prod(kernel)``.

    Int sizes mean square. For a transposed convolution pass the *input* size as ``output_size``:
    every input value is multiplied by a whole kernel.

    >>> conv_macs(192, 32, 5, output_size=28)                                   # 120.4M
    120422400
    >>> conv_macs(192, 16, 1, output_size=28) + conv_macs(16, 32, 5, output_size=28)  # 1x1 bottleneck: 12.4M
    12443648
    """
    _check_groups(in_channels, out_channels, groups)
    return _area(output_size) * out_channels * (in_channels // groups) * _area(kernel_size)


def depthwise_conv_params(
    channels: int, kernel_size: int | Sequence[int], depth_multiplier: int = 1, bias: bool = True
) -> int:
    """A depthwise convolution (``groups = channels``): one ``f x f`` filter per channel and multiplier.

    >>> depthwise_conv_params(32, 3)
    320
    """
    return conv_params(channels, channels * depth_multiplier, kernel_size, groups=channels, bias=bias)


def depthwise_conv_macs(
    channels: int, kernel_size: int | Sequence[int], output_size: int | Sequence[int], depth_multiplier: int = 1
) -> int:
    """Multiply-adds of a depthwise convolution: ``prod(output) * channels * multiplier * prod(kernel)``.

    >>> depthwise_conv_macs(32, 3, output_size=112)
    3612672
    """
    return conv_macs(channels, channels * depth_multiplier, kernel_size, output_size, groups=channels)


def separable_conv_params(
    in_channels: int,
    out_channels: int,
    kernel_size: int | Sequence[int],
    depth_multiplier: int = 1,
    bias: bool = True,
) -> int:
    """A depthwise convolution without bias followed by a 1x1 pointwise one (Keras ``SeparableConv2D``).

    >>> separable_conv_params(3, 32, 3)       # 3*9 depthwise + 3*32 pointwise + 32 biases
    155
    """
    mid = in_channels * depth_multiplier
    return depthwise_conv_params(in_channels, kernel_size, depth_multiplier, bias=False) + conv_params(
        mid, out_channels, 1, bias=bias
    )


def separable_conv_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: int | Sequence[int],
    output_size: int | Sequence[int],
    depth_multiplier: int = 1,
) -> int:
    """Multiply-adds of a separable convolution: the depthwise part plus the pointwise part.

    >>> separable_conv_macs(192, 32, 5, output_size=28)   # vs 120,422,400 for the full 5x5 conv
    8580096
    """
    mid = in_channels * depth_multiplier
    return depthwise_conv_macs(in_channels, kernel_size, output_size, depth_multiplier) + conv_macs(
        mid, out_channels, 1, output_size
    )


def dense_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """A fully connected layer: ``in * out`` weights plus ``out`` biases.

    >>> dense_params(400, 120)                # LeNet-5 C5 on the flattened 5x5x16
    48120
    """
    _check_positive("in_features", in_features)
    _check_positive("out_features", out_features)
    return in_features * out_features + (out_features if bias else 0)


def dense_macs(in_features: int, out_features: int) -> int:
    """Multiply-adds of a fully connected layer for one input vector.

    >>> dense_macs(400, 120)
    48000
    """
    _check_positive("in_features", in_features)
    _check_positive("out_features", out_features)
    return in_features * out_features


def batchnorm_params(num_features: int, affine: bool = True) -> int:
    """Trainable parameters of batch norm: a scale and a shift per channel.

    The running mean and variance (another ``2 * num_features`` values) are buffers, not
    parameters, so ``sum(p.numel())`` does not count them (Keras lists them as non-trainable).

    >>> batchnorm_params(64)
    128
    """
    _check_positive("num_features", num_features)
    return 2 * num_features if affine else 0


def batchnorm_macs(num_features: int, output_size: int | Sequence[int]) -> int:
    """Multiply-adds of batch norm at inference: one ``x * scale + shift`` per output value.

    >>> batchnorm_macs(64, output_size=56)
    200704
    """
    _check_positive("num_features", num_features)
    return num_features * _area(output_size)


def _check_groups(in_channels: int, out_channels: int, groups: int) -> None:
    _check_positive("in_channels", in_channels)
    _check_positive("out_channels", out_channels)
    _check_positive("groups", groups)
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if value % groups:
            raise ShapeError(
                f"{name} must be divisible by groups. Received: {name}={value}, groups={groups}",
                fix="pick groups among the common divisors of in_channels and out_channels",
            )


def _area(size: int | Sequence[int]) -> int:
    """Product of a size; an int means a square ``n x n``."""
    dims = (size, size) if isinstance(size, int) else tuple(size)
    for value in dims:
        _check_positive("size", value)
    return math.prod(dims)


def _check_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ShapeError(f"{name} must be a positive integer. Received: {name}={value!r}")
