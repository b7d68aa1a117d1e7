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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
    if span < 0:
        raise ShapeError(
            f"kernel ({f_eff} with dilation) is larger than the padded input ({n} + {before} + {after})",
            fix="use a smaller kernel, more padding or a larger input",
        )
    out = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= n + before:
        out -= 1  # PyTorch: the last window must start inside the input or the left padding
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
    if isinstance(padding, int):
        pair = (padding, padding)
    else:
        pair = (int(padding[0]), int(padding[1]))
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
        raise ShapeError(f"padding must be 'valid', 'same', an int or one value per axis. Received: padding={padding!r}")
    if isinstance(padding, int):
        return [axis_padding(padding)] * rank
    if len(padding) != rank:
        raise ShapeError(f"padding needs one entry per spatial axis ({rank}). Received: padding={padding}")
    return [axis_padding(p) for p in padding]


def _check_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ShapeError(f"{name} must be a positive integer. Received: {name}={value!r}")
