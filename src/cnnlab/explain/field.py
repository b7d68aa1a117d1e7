"""Where a unit looks: the exact receptive field of a layer's positions in the input image, found from gradients.

The field of output position ``(y, x)`` of a layer is the set of input pixels it depends on. Two ways to get it:

- arithmetic (:class:`cnnlab.core.shapes.AnchoredField`): walk the chain of convs and pools with their kernel,
  stride, dilation and padding. Exact and free, but only for a plain chain whose layers one can list;
- gradient support (this module): the input pixels where ``d unit(y, x) / d input`` is non-zero.

This module uses the gradient support, because it needs no list of layers: residual shortcuts, concatenated
branches and any order of modules are followed by autograd itself, and what it finds is what the forward pass
really does (padding, ceil-mode pools, dilation included). The real model's gradient cannot be used as it is:
a ReLU that is off, a max-pool that picks one pixel of its window, or weights that cancel would hide pixels that
the unit can see. So the gradient is taken through a *linearised, all-positive copy* (:func:`linearised`):
activations and normalisations become the identity, max-pools become average pools of the same window, every
conv or linear weight becomes a positive average and every bias zero. Every path from a pixel to the unit then
carries a positive product and nothing cancels, so the support is exactly the set of pixels connected to the
unit. ``tests/explain/test_units.py`` checks it equal to the arithmetic on plain chains of generated convs and
pools, and to ``cnnlab.layers.summary``'s longest-branch field on a ResNet.

A layer's field is an affine function of the position (output ``i`` sees ``start + i * jump`` to
``start + i * jump + size - 1`` along each axis, clipped to the image). So three neighbouring rows (and columns)
in the middle of the map are probed; when two of them lie inside the image, they give ``(size, jump, start)``,
and when that geometry predicts all three, it gives every position. When the field is larger than the image, each
needed row and column is probed on its own instead. A box is the bounding box of the field (a dilated kernel,
or a stride longer than the kernel, leaves pixels inside it that the unit skips); clipped by a probe, a box ends
at the last pixel the unit sees, so it can be up to ``dilation - 1`` pixels shorter than the clipped geometry.

>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1))
>>> geometry = layer_field(net, "3", (1, 28, 28))      # conv3 p1 -> pool2 -> conv3 p1
>>> geometry.rows                                       # 8 pixels, 2 apart, output 0 starts at -3
AnchoredField(size=8, jump=2, start=-3)
>>> geometry.box((0, 0)), geometry.box((5, 13))        # (top, left, bottom, right), end exclusive, clipped
((0, 0, 5, 5), (7, 23, 15, 28))
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.core.shapes import AnchoredField
from cnnlab.explain.hooks import HookSet, resolve_layer, tensor_output

Box = tuple[int, int, int, int]
"""``(top, left, bottom, right)`` in input pixels, bottom and right exclusive (``image[top:bottom, left:right]``)."""

# Element-wise activations: on the all-positive copy they would only rescale (or, for ReLU6/Hardtanh/sigmoids,
# saturate and zero the gradient), so they become the identity.
_ACTIVATIONS = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.Softplus,
)  # fmt: skip
# Normalisations subtract means, which would make values negative (and then a functional ReLU would cut paths).
_NORMS = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,
)
_MAX_POOLS = {nn.MaxPool1d: nn.AvgPool1d, nn.MaxPool2d: nn.AvgPool2d, nn.MaxPool3d: nn.AvgPool3d}
_ADAPTIVE_MAX_POOLS = {
    nn.AdaptiveMaxPool1d: nn.AdaptiveAvgPool1d,
    nn.AdaptiveMaxPool2d: nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool3d: nn.AdaptiveAvgPool3d,
}
_INPUT_VALUE = 1e-20
"""The probe image's pixel value. Averaging weights keep every activation at this value times the number of
branches summed on the way (2 per residual add), so even 50 adds stay far below the 6 where a functional
``relu6`` in a model's ``forward`` (EfficientNet-Lite) would clip, and far above float64's smallest number."""
_CHUNK = 8
"""Probe images per forward pass when rows are probed one by one (memory: a float64 copy of the activations)."""


@dataclass(frozen=True)
class LayerField:
    """The receptive field of every position of one layer, for one input size ``(C, H, W)``.

    ``rows``/``cols`` are the field's geometry along each axis when it was measured inside the image; ``None``
    when the field is larger than the image there, and the clipped spans of the positions asked for were
    probed one by one (``row_spans``/``col_spans``: position -> first and last pixel, inclusive).
    """

    layer: str
    input_size: tuple[int, int, int]
    map_size: tuple[int, int]
    rows: AnchoredField | None
    cols: AnchoredField | None
    row_spans: dict[int, tuple[int, int]] = field(default_factory=dict)
    col_spans: dict[int, tuple[int, int]] = field(default_factory=dict)

    def box(self, position: tuple[int, int]) -> Box:
        """The clipped field of map position ``(y, x)`` as ``(top, left, bottom, right)``, end exclusive."""
        y, x = position
        top, bottom = _span(self.rows, self.row_spans, y, self.input_size[1], "row")
        left, right = _span(self.cols, self.col_spans, x, self.input_size[2], "column")
        return top, left, bottom + 1, right + 1

    @property
    def size(self) -> tuple[int, int]:
        """The field's height and width in pixels where it fits in the image, else the image's (it is clipped)."""
        return (
            self.rows.size if self.rows else self.input_size[1],
            self.cols.size if self.cols else self.input_size[2],
        )


def layer_field(
    model: nn.Module,
    layer: str,
    input_size: tuple[int, int, int],
    positions: Iterable[tuple[int, int]] = (),
) -> LayerField:
    """The receptive field of ``layer``'s positions for inputs of ``input_size`` ``(C, H, W)`` (see the module
    docstring); ``positions`` are the ``(y, x)`` whose boxes will be asked for when the field does not fit.

    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 2, 5), nn.Conv2d(2, 2, 3, stride=2))
    >>> layer_field(net, "1", (3, 32, 32)).rows
    AnchoredField(size=7, jump=2, start=0)
    """
    return layer_fields(model, [layer], input_size, {layer: positions})[layer]


def layer_fields(
    model: nn.Module,
    layers: Sequence[str],
    input_size: tuple[int, int, int],
    positions: Mapping[str, Iterable[tuple[int, int]]] | None = None,
) -> dict[str, LayerField]:
    """:func:`layer_field` for several layers at once: one forward pass of the linearised copy probes them all
    (and one more per layer whose field is larger than the image).

    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1))
    >>> {name: (f.rows.size, f.rows.start) for name, f in layer_fields(net, ["0", "1"], (1, 9, 9)).items()}
    {'0': (3, -1), '1': (5, -2)}
    """
    net = linearised(model)
    names = {layer: resolve_layer(net, layer)[0] for layer in layers}
    positions = positions or {}
    with torch.enable_grad():
        # Images 0-2 probe three middle rows of every layer, images 3-5 three middle columns.
        x = torch.full((6, *input_size), _INPUT_VALUE, dtype=torch.float64, requires_grad=True)
        outputs = _run(net, list(names.values()), x)
        fields = {}
        for layer, name in names.items():
            maps = outputs[name]  # (6, C, h, w)
            map_size = (int(maps.shape[2]), int(maps.shape[3]))
            middles = [[i for i in (n // 2 - 1, n // 2, n // 2 + 1) if 0 <= i < n] for n in map_size]
            pick = torch.zeros_like(maps)
            for b, i in enumerate(middles[0]):  # images never mix in eval mode, so each answers its own question
                pick[b, :, i, :] = 1.0
            for b, i in enumerate(middles[1]):
                pick[3 + b, :, :, i] = 1.0
            (grads,) = torch.autograd.grad((maps * pick).sum(), x, retain_graph=True)  # (6, C, H, W)
            axes = []
            for axis, middle in enumerate(middles):
                spans = _spans(grads[3 * axis : 3 * axis + len(middle)], axis, middle, name)
                wanted = sorted({p[axis] for p in positions.get(layer, ())})
                axes.append(_geometry(net, name, input_size, axis, middle, spans, wanted))
            (rows, row_spans), (cols, col_spans) = axes
            fields[layer] = LayerField(name, input_size, map_size, rows, cols, row_spans, col_spans)
    return fields


def receptive_boxes(
    model: nn.Module, layer: str, input_size: tuple[int, int, int], positions: Sequence[tuple[int, int]]
) -> list[Box]:
    """The clipped field ``(top, left, bottom, right)`` (end exclusive) of each ``(y, x)`` of ``layer``.

    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2))    # 3x3 conv, then 2x2 pool: 4x4 fields
    >>> receptive_boxes(net, "1", (1, 12, 12), [(0, 0), (2, 4)])
    [(0, 0, 4, 4), (4, 8, 8, 12)]
    """
    geometry = layer_field(model, layer, input_size, positions)
    return [geometry.box(p) for p in positions]


def linearised(model: nn.Module) -> nn.Module:
    """A float64 copy of ``model`` in eval mode whose gradient support is its receptive field: activations and
    normalisations are the identity, max-pools average pools, conv and linear weights positive averages
    (each output the mean of its inputs), biases zero. The model itself is not changed.

    >>> from torch import nn
    >>> copy_ = linearised(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2)))
    >>> [type(m).__name__ for m in copy_], float(copy_[0].weight.sum() / 2)
    (['Conv2d', 'Identity', 'Identity', 'AvgPool2d'], 1.0)
    """
    net = copy.deepcopy(model).double().eval()
    for name, module in list(net.named_modules()):
        replacement = _replacement(module)
        if replacement is not None and name:
            parent, _, child = name.rpartition(".")
            setattr(net.get_submodule(parent) if parent else net, child, replacement)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.modules.conv._ConvNd | nn.Linear):
                weight = module.weight  # (out, in / groups, *kernel) or (out, in)
                module.weight.fill_(1.0 / math.prod(weight.shape[1:]))
                if module.bias is not None:
                    module.bias.zero_()
            else:
                for parameter in module.parameters(recurse=False):  # layer scales and the like: keep them positive
                    parameter.abs_()
    return net.requires_grad_(False)


def _replacement(module: nn.Module) -> nn.Module | None:
    if isinstance(module, _ACTIVATIONS + _NORMS):
        return nn.Identity()
    pool = _MAX_POOLS.get(type(module))
    if pool is not None:
        assert isinstance(module, nn.modules.pooling._MaxPoolNd)
        if module.dilation not in (1, (1,), (1, 1), (1, 1, 1)):
            raise ConfigError(
                "a dilated max-pool has no average-pool twin to measure its receptive field with",
                where=type(module).__name__,
                fix="choose a layer before the dilated pool",
            )
        return pool(module.kernel_size, module.stride, module.padding, module.ceil_mode, count_include_pad=True)
    adaptive = _ADAPTIVE_MAX_POOLS.get(type(module))
    if adaptive is not None:
        return adaptive(module.output_size)  # type: ignore[attr-defined]
    return None


def _geometry(
    net: nn.Module,
    name: str,
    input_size: tuple[int, int, int],
    axis: int,
    middle: list[int],
    spans: dict[int, tuple[int, int]],
    wanted: list[int],
) -> tuple[AnchoredField | None, dict[int, tuple[int, int]]]:
    """The affine geometry along ``axis`` (0 rows, 1 columns) if two of the middle positions' spans lie inside the
    image and the geometry they give predicts all three (clipped), else the spans of the ``wanted`` positions,
    probed one by one."""
    pixels = input_size[1 + axis]
    inside = [(i, spans[i]) for i in middle if spans[i][0] > 0 and spans[i][1] < pixels - 1]
    if len(inside) >= 2:
        (i0, (a0, b0)), (i1, (a1, _)) = inside[:2]
        jump, remainder = divmod(a1 - a0, i1 - i0)
        if jump > 0 and remainder == 0:
            geometry = AnchoredField(b0 - a0 + 1, jump, a0 - i0 * jump)
            if all(geometry.span(i, n=pixels) == spans[i] for i in middle):
                return geometry, {}
    missing = [i for i in wanted if i not in spans]
    for start in range(0, len(missing), _CHUNK):
        spans.update(_probe(net, name, input_size, axis, missing[start : start + _CHUNK]))
    return None, spans


def _probe(
    net: nn.Module, name: str, input_size: tuple[int, int, int], axis: int, indices: list[int]
) -> dict[int, tuple[int, int]]:
    """The spans of rows (or columns) ``indices`` of layer ``name``, one probe image each."""
    with torch.enable_grad():
        x = torch.full((len(indices), *input_size), _INPUT_VALUE, dtype=torch.float64, requires_grad=True)
        maps = _run(net, [name], x)[name]  # (B, C, h, w)
        pick = torch.zeros_like(maps)
        for b, i in enumerate(indices):
            if axis == 0:
                pick[b, :, i, :] = 1.0
            else:
                pick[b, :, :, i] = 1.0
        (grads,) = torch.autograd.grad((maps * pick).sum(), x)  # (B, C, H, W)
    return _spans(grads, axis, indices, name)


def _spans(grads: torch.Tensor, axis: int, indices: list[int], name: str) -> dict[int, tuple[int, int]]:
    """First and last input pixel along ``axis`` with a non-zero gradient in probe image ``b``, for ``indices[b]``."""
    support = grads.sum(dim=(1, 3 - axis)) > 0  # (B, H or W): positive paths only, so nothing cancels
    spans = {}
    for b, i in enumerate(indices):
        where = support[b].nonzero().flatten()
        if where.numel() == 0:
            raise ConfigError(
                f"position {i} of layer '{name}' does not depend on the input",
                where="layer",
                fix="choose a layer on the path from the input",
            )
        spans[i] = (int(where[0]), int(where[-1]))
    return spans


def _run(net: nn.Module, names: list[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The output of each of ``names`` for ``x``; each must come from exactly one call."""
    outputs: dict[str, list[torch.Tensor]] = {name: [] for name in names}

    def keeper(name: str) -> Callable[[nn.Module, Any, Any], None]:
        def keep(module: nn.Module, args: Any, output: Any) -> None:
            outputs[name].append(tensor_output(module, output).clone())  # a later in-place op must not change it

        return keep

    with HookSet() as hooks:
        for name in names:
            hooks.add(net.get_submodule(name).register_forward_hook(keeper(name)))
        net(x)
    for name, kept in outputs.items():
        if len(kept) != 1:
            raise ConfigError(
                f"layer '{name}' runs {len(kept)} times in one forward pass, so its units are ambiguous",
                where="layer",
                fix="choose a layer that runs once (a block, or a conv), not a shared activation",
            )
    return {name: kept[0] for name, kept in outputs.items()}


def _span(
    geometry: AnchoredField | None, spans: dict[int, tuple[int, int]], index: int, pixels: int, axis: str
) -> tuple[int, int]:
    if geometry is not None:
        return geometry.span(index, n=pixels)
    if index not in spans:
        raise ConfigError(
            f"the field of {axis} {index} was not measured",
            where="LayerField.box",
            fix="pass the positions to layer_field(..., positions=[(y, x), ...])",
        )
    return spans[index]
