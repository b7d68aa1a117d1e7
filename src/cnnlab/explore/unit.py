"""One unit (a position ``(y, x)`` of channel ``c`` in one layer's maps): where it looks in the image, and how
its value was made from the layer's input.

- a Conv2d unit: the input patch under the kernel (the layer's recorded input, padded as torch pads it), the
  kernel of channel ``c``, and the dot product ``sum(patch * kernel) + bias``, per input channel and in total;
- a MaxPool2d / AvgPool2d unit: the window and its maximum or mean;
- a BatchNorm2d unit: ``(x - mean) / sqrt(var + eps) * gamma + beta``; an element-wise activation: ``f(x)``.

The receptive field is exact: the input pixels with a non-zero gradient of this one unit in the all-positive
linearised copy of the model (:func:`cnnlab.explain.field.linearised`: nothing cancels, so the support is every
pixel the unit is connected to), found for the module's own call even when the module runs several times.

>>> from torch import nn
>>> conv = nn.Conv2d(1, 1, 3, padding=1)
>>> x = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
>>> terms = conv_terms(conv, x, channel=0, y=0, x=0)
>>> terms.patch[0].tolist()                       # the top-left window: one row and column of zero padding
[[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 4.0, 5.0]]
>>> terms.rows, terms.cols
([-1, 0, 1], [-1, 0, 1])
>>> bool(torch.isclose(terms.total, conv(x)[0, 0, 0, 0].double(), atol=1e-5))
True
>>> from cnnlab.explain.field import linearised
>>> unit_box(linearised(nn.Sequential(conv, nn.MaxPool2d(2))), "1", 0, (1, 8, 8), 0, 1, 2)  # 3x3 conv, 2x2 pool
(1, 3, 5, 7)
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.explain.field import Box
from cnnlab.explain.hooks import HookSet
from cnnlab.explore.arithmetic import conv_padding
from cnnlab.explore.record import Call, occurrence_hook

SHOWN_CHANNELS = 6
"""Input channels whose patch and kernel the page writes out (the largest contributions); the rest are summed."""
_PROBE = 1e-20
"""The probe image's value in the linearised copy (see :mod:`cnnlab.explain.field`: far from float64's limits)."""
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish)


@dataclass(frozen=True)
class ConvTerms:
    """The dot product behind one conv unit: ``patch`` and ``kernel`` ``(C_in/g, k_h, k_w)``, the input channels
    they cover (``channels``), the input rows and columns under the kernel (negative or past the end: padding)."""

    patch: torch.Tensor
    kernel: torch.Tensor
    bias: float
    channels: list[int]
    rows: list[int]
    cols: list[int]

    @property
    def partial(self) -> torch.Tensor:
        """Each input channel's share ``sum(patch[c] * kernel[c])`` ``(C_in/g,)``, in float64."""
        return (self.patch.double() * self.kernel.double()).sum(dim=(1, 2))

    @property
    def total(self) -> torch.Tensor:
        """``sum(patch * kernel) + bias`` in float64."""
        return self.partial.sum() + self.bias


def conv_terms(conv: nn.Conv2d, inp: torch.Tensor, channel: int, y: int, x: int) -> ConvTerms:
    """The patch of the conv's input ``inp`` ``(1, C_in, H, W)`` that output ``(channel, y, x)`` sees, its kernel
    and bias (padding as the layer pads: zeros, or its ``padding_mode``)."""
    (top, bottom), (left, right) = conv_padding(conv, inp.shape[2:])
    mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
    padded = F.pad(inp, (left, right, top, bottom), mode=mode)[0]  # (C_in, H + pads, W + pads)
    (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
    per_group = conv.in_channels // conv.groups
    group = channel // (conv.out_channels // conv.groups)
    channels = list(range(group * per_group, (group + 1) * per_group))
    rows = [y * sh + dh * i for i in range(kh)]
    cols = [x * sw + dw * j for j in range(kw)]
    patch = padded[channels][:, rows][:, :, cols]
    bias = 0.0 if conv.bias is None else float(conv.bias[channel].detach())
    kernel = conv.weight[channel].detach().float()  # (C_in/g, k_h, k_w)
    return ConvTerms(patch, kernel, bias, channels, [r - top for r in rows], [c - left for c in cols])


def explain_unit(call: Call, channel: int, y: int, x: int, input_is_image: bool) -> dict[str, Any]:
    """What made unit ``(channel, y, x)`` of ``call``'s output, as JSON for the page; ``input_is_image``: the
    layer's input is the model's input (its channels are the image's colours)."""
    assert call.output is not None
    value = float(call.output[0, channel, y, x])
    answer: dict[str, Any] = {"value": value, "kind": "block" if not call.is_leaf else "other"}
    module, inp = call.module, call.input
    if inp is None or inp.dim() != 4:
        return answer
    if type(module) is nn.Conv2d:
        return {**answer, **_conv_json(conv_terms(module, inp, channel, y, x), input_is_image)}
    if type(module) in (nn.MaxPool2d, nn.AvgPool2d):
        return {**answer, **_pool_json(module, inp, channel, y, x)}
    if inp.shape == call.output.shape:
        before = float(inp[0, channel, y, x])
        if isinstance(module, nn.BatchNorm2d) and module.running_mean is not None:
            return {**answer, **_norm_json(module, before, channel)}
        if isinstance(module, _ACTIVATIONS):
            with torch.no_grad():
                result = float(module(torch.tensor([before])))
            formula = f"{type(module).__name__}({before:.6g})"
            return {**answer, "kind": "activation", "input": before, "formula": formula, "result": result}
    return answer


def unit_box(
    net: nn.Module, name: str, occurrence: int, input_size: tuple[int, int, int], channel: int, y: int, x: int
) -> Box:
    """The receptive field ``(top, left, bottom, right)`` (end exclusive, clipped to the image) of unit
    ``(channel, y, x)`` of the ``occurrence``-th call of layer ``name`` in ``net``, a :func:`linearised` copy."""
    found: list[torch.Tensor] = []

    def stop(output: torch.Tensor) -> None:
        found.append(output)
        raise _Reached

    module = net.get_submodule(name)
    image = torch.full((1, *input_size), _PROBE, dtype=torch.float64, requires_grad=True)
    with HookSet() as hooks, torch.enable_grad():
        hooks.add(module.register_forward_hook(occurrence_hook(occurrence, stop)))
        with contextlib.suppress(_Reached):  # the rest of the model cannot change this unit: stop there
            net(image)
        if not found:
            raise ConfigError(f"layer '{name}' did not run {occurrence + 1} time(s)", where="layer")
        (grad,) = torch.autograd.grad(found[0][0, channel, y, x], image)
    support = grad[0].sum(dim=0) > 0  # (H, W)
    rows, cols = support.any(dim=1).nonzero().flatten(), support.any(dim=0).nonzero().flatten()
    if rows.numel() == 0:
        raise ConfigError(f"unit ({channel}, {y}, {x}) of layer '{name}' does not depend on the input", where="unit")
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


class _Reached(Exception):
    """Raised from a forward hook once the wanted call has run."""


def _conv_json(terms: ConvTerms, input_is_image: bool) -> dict[str, Any]:
    partial = terms.partial
    order = partial.abs().argsort(descending=True)[:SHOWN_CHANNELS].sort().values.tolist()
    names = ["R", "G", "B"] if input_is_image and len(terms.channels) == 3 else None
    shown = [
        {
            "channel": terms.channels[i],
            "name": names[i] if names else f"input channel {terms.channels[i]}",
            "patch": _rounded(terms.patch[i]),
            "kernel": _rounded(terms.kernel[i]),
            "sum": float(partial[i]),
        }
        for i in order
    ]
    rest = float(partial.sum() - partial[order].sum())
    return {
        "kind": "conv",
        "rows": terms.rows,
        "cols": terms.cols,
        "terms": len(terms.channels) * terms.patch.shape[1] * terms.patch.shape[2],
        "input_channels": len(terms.channels),
        "shown": shown,
        "rest": rest,
        "rest_channels": len(terms.channels) - len(shown),
        "bias": terms.bias,
        "dot": float(terms.total),
    }


def _pool_json(pool: nn.Module, inp: torch.Tensor, channel: int, y: int, x: int) -> dict[str, Any]:
    """The window of one pooled value (padding outside the input is left out of a max, and counted in a mean
    as the layer says)."""
    (kh, kw), (sh, sw), (ph, pw) = (_pair(v) for v in (pool.kernel_size, pool.stride, pool.padding))
    dh, dw = _pair(getattr(pool, "dilation", 1))
    height, width = inp.shape[2:]
    rows = [y * sh - ph + dh * i for i in range(kh)]
    cols = [x * sw - pw + dw * j for j in range(kw)]
    inside = [[0 <= r < height and 0 <= c < width for c in cols] for r in rows]
    window = [
        [float(inp[0, channel, r, c]) if ok else None for (c, ok) in zip(cols, row, strict=True)]
        for r, row in zip(rows, inside, strict=True)
    ]
    values = [v for row in window for v in row if v is not None]
    if isinstance(pool, nn.MaxPool2d):
        return {"kind": "maxpool", "rows": rows, "cols": cols, "window": window, "result": max(values)}
    in_padding = [r for r in rows if -ph <= r < height + ph]
    padded_cols = [c for c in cols if -pw <= c < width + pw]
    divisor = pool.divisor_override or (len(in_padding) * len(padded_cols) if pool.count_include_pad else len(values))
    return {
        "kind": "avgpool",
        "rows": rows,
        "cols": cols,
        "window": window,
        "divisor": divisor,
        "result": sum(values) / divisor,
    }


def _norm_json(norm: nn.BatchNorm2d, before: float, channel: int) -> dict[str, Any]:
    mean, var = float(norm.running_mean[channel]), float(norm.running_var[channel])  # type: ignore[index]
    gamma = float(norm.weight[channel].detach()) if norm.weight is not None else 1.0
    beta = float(norm.bias[channel].detach()) if norm.bias is not None else 0.0
    result = (before - mean) / math.sqrt(var + norm.eps) * gamma + beta
    formula = f"({before:.6g} - {mean:.6g}) / sqrt({var:.6g} + {norm.eps:g}) * {gamma:.6g} + {beta:.6g}"
    return {"kind": "batchnorm", "input": before, "formula": formula, "result": result}


def _rounded(values: torch.Tensor) -> list[list[float]]:
    return [[round(float(v), 6) for v in row] for row in values]


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))
