"""A layer's arithmetic as the course writes it, with the numbers filled in: the output size formula per axis,
the parameter count and the multiply-adds.

Sizes come from :mod:`cnnlab.core.shapes` (the formulas ``summary()`` checks against torch), counts are
written as the product that gives them; the caller shows ``summary()``'s own numbers next to them.

>>> from torch import nn
>>> conv = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
>>> lines = arithmetic(conv, (1, 3, 224, 224), (1, 64, 112, 112), first_call=True)
>>> print(lines.shape[0])
height and width: floor((n + 2p - d(k - 1) - 1) / s) + 1 = floor((224 + 2*3 - 1*(7 - 1) - 1) / 2) + 1 = 112
>>> print(lines.params)
C_out*(C_in/g)*k_h*k_w + bias = 64*3*7*7 + 0 = 9,408
>>> print(lines.macs)
C_out*(C_in/g)*k_h*k_w*H_out*W_out = 64*3*7*7*112*112 = 118,013,952
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from cnnlab.core import shapes

Shape = tuple[int, ...]

_CONV_SYMBOLS = "floor((n + 2p - d(k - 1) - 1) / s) + 1"
_AXES = ("height", "width")


@dataclass(frozen=True)
class Arithmetic:
    """Display lines: ``shape`` (one per axis, or one for both when they agree), ``params`` and ``macs``."""

    shape: tuple[str, ...]
    params: str
    macs: str


def arithmetic(module: nn.Module, inp: Shape | None, out: Shape | None, first_call: bool) -> Arithmetic:
    """The arithmetic of one call of ``module`` from input shape ``inp`` to output shape ``out``;
    ``first_call`` False: its parameters were counted at an earlier call (a shared module)."""
    return Arithmetic(_shape(module, inp, out), _params(module, first_call), _macs(module, inp, out))


def _shape(module: nn.Module, inp: Shape | None, out: Shape | None) -> tuple[str, ...]:
    if inp is None or out is None:
        return (f"output {_dims(out)}" if out else "no tensor output",)
    window = _window(module, inp)
    if window is not None:
        lines = window
    elif type(module) is nn.ConvTranspose2d and len(inp) == 4:
        lines = _transposed(module, inp)  # type: ignore[arg-type]
    elif isinstance(module, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d) and len(inp) == 4:
        size = f"{out[2]} x {out[3]}"
        lines = [f"output size set by the layer: {inp[2]} x {inp[3]} -> {size} (windows of about n / out pixels)"]
    elif isinstance(module, nn.Flatten) and len(out) == 2:
        factors = "*".join(str(n) for n in inp[1:])
        lines = [f"C*h*w = {factors} = {out[1]:,} values in one vector"]
    elif isinstance(module, nn.Linear):
        lines = [f"features: {module.in_features:,} -> {module.out_features:,}"]
    elif inp == out:
        lines = [f"shape kept: {_dims(out)}"]
    else:
        lines = [f"{_dims(inp)} -> {_dims(out)}"]
    return tuple(lines)


def _window(module: nn.Module, inp: Shape) -> list[str] | None:
    """Conv2d and 2-D pools: the sliding-window formula per axis (exact types: a subclass may pad in its forward)."""
    if len(inp) != 4 or type(module) not in (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d):
        return None
    kernel, stride = _pair(module.kernel_size), _pair(module.stride or module.kernel_size)  # type: ignore[arg-type]
    dilation = _pair(getattr(module, "dilation", 1))
    ceil = bool(getattr(module, "ceil_mode", False))
    sizes = inp[2:]
    pads = (
        conv_padding(module, sizes) if isinstance(module, nn.Conv2d) else [_symmetric(p) for p in _pair(module.padding)]
    )  # type: ignore[arg-type]
    texts = []
    for n, k, s, (before, after), d in zip(sizes, kernel, stride, pads, dilation, strict=True):
        out = shapes.conv_output_size(n, k, s, (before, after), d, ceil)
        rounding = "ceil" if ceil else "floor"
        symbols = _CONV_SYMBOLS.replace("floor", rounding)
        pad = f"2*{before}" if before == after else f"{before} + {after}"
        if before != after:
            symbols = symbols.replace("2p", "p_before + p_after")
        texts.append(f"{symbols} = {rounding}(({n} + {pad} - {d}*({k} - 1) - 1) / {s}) + 1 = {out}")
    if texts[0] == texts[1]:
        return [f"height and width: {texts[0]}"]
    return [f"{axis}: {text}" for axis, text in zip(_AXES, texts, strict=True)]


def _transposed(module: nn.ConvTranspose2d, inp: Shape) -> list[str]:
    texts = []
    values = (module.kernel_size, module.stride, module.padding, module.output_padding, module.dilation)
    for n, k, s, p, o, d in zip(inp[2:], *(_pair(v) for v in values), strict=True):  # type: ignore[arg-type]
        out = shapes.transposed_conv_output_size(n, k, s, p, o, d)
        texts.append(
            f"(n - 1)s - 2p + d(k - 1) + output_padding + 1 = ({n} - 1)*{s} - 2*{p} + {d}*({k} - 1) + {o} + 1 = {out}"
        )
    if texts[0] == texts[1]:
        return [f"height and width: {texts[0]}"]
    return [f"{axis}: {text}" for axis, text in zip(_AXES, texts, strict=True)]


def _params(module: nn.Module, first_call: bool) -> str:
    own = sum(p.numel() for p in module.parameters(recurse=False))
    inside = sum(p.numel() for p in module.parameters())
    if not first_call:
        return "0 here: a shared layer's parameters are counted at its first call"
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        kh, kw = _pair(module.kernel_size)  # type: ignore[arg-type]
        transposed = isinstance(module, nn.ConvTranspose2d)
        first, second = (
            (module.in_channels, module.out_channels) if transposed else (module.out_channels, module.in_channels)
        )
        per_group = second // module.groups
        bias = module.out_channels if module.bias is not None else 0
        symbols = "C_in*(C_out/g)*k_h*k_w + bias" if transposed else "C_out*(C_in/g)*k_h*k_w + bias"
        groups = f" (g = {module.groups})" if module.groups > 1 else ""
        return f"{symbols}{groups} = {first}*{per_group}*{kh}*{kw} + {bias} = {first * per_group * kh * kw + bias:,}"
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        if not module.affine:
            return "0 (no affine scale and shift; the running mean and variance are buffers)"
        return f"2*C = 2*{module.num_features} = {own:,} (gamma and beta; the running mean and variance are buffers)"
    if isinstance(module, nn.Linear):
        bias = module.out_features if module.bias is not None else 0
        total = module.out_features * module.in_features + bias
        return f"out*in + bias = {module.out_features}*{module.in_features} + {bias} = {total:,}"
    if next(module.children(), None) is not None:
        return f"{own:,} of its own; {inside:,} in its layers"
    return f"{own:,}" if own else "0 (no weights)"


def _macs(module: nn.Module, inp: Shape | None, out: Shape | None) -> str:
    if next(module.children(), None) is not None:
        return "- (its layers carry the cost)"
    if inp is None or out is None:
        return "0"
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d) and len(out) == 4:
        kh, kw = _pair(module.kernel_size)  # type: ignore[arg-type]
        per_group = module.in_channels // module.groups
        transposed = isinstance(module, nn.ConvTranspose2d)
        h, w = inp[2:] if transposed else out[2:]
        where = "H_in*W_in" if transposed else "H_out*W_out"
        total = module.out_channels * per_group * kh * kw * h * w
        return f"C_out*(C_in/g)*k_h*k_w*{where} = {module.out_channels}*{per_group}*{kh}*{kw}*{h}*{w} = {total:,}"
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and len(out) >= 3:
        factors = [module.num_features, *out[2:]]
        return f"C*H*W = {'*'.join(map(str, factors))} = {math.prod(factors):,} (one scale and shift per value)"
    if isinstance(module, nn.Linear):
        vectors = math.prod(out[1:-1]) if len(out) > 2 else 1
        total = vectors * module.in_features * module.out_features
        times = f"{vectors}*" if vectors > 1 else ""
        return f"in*out = {times}{module.in_features}*{module.out_features} = {total:,}"
    return "0 (no multiplications by weights)"


def conv_padding(conv: nn.Conv2d, sizes: Sequence[int]) -> list[tuple[int, int]]:
    """``(before, after)`` zero padding per axis as torch applies it (``'same'`` puts the odd pixel after).

    >>> conv_padding(nn.Conv2d(1, 1, 4, padding="same"), (8, 8)), conv_padding(nn.Conv2d(1, 1, 3, padding=1), (8, 8))
    ([(1, 2), (1, 2)], [(1, 1), (1, 1)])
    """
    if conv.padding == "valid":
        return [(0, 0), (0, 0)]
    if conv.padding == "same":
        totals = [d * (k - 1) for d, k in zip(_pair(conv.dilation), _pair(conv.kernel_size), strict=True)]  # type: ignore[arg-type]
        return [(t // 2, t - t // 2) for t in totals]
    return [(p, p) for p in _pair(conv.padding)]  # type: ignore[arg-type]


def _symmetric(p: int) -> tuple[int, int]:
    return p, p


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _dims(shape: Shape | None) -> str:
    return "x".join(map(str, shape)) if shape else "-"
