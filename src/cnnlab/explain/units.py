"""What a unit has learned, from data: the image patches that excite it most (Zeiler & Fergus 2014,
"Visualizing and Understanding Convolutional Networks", arXiv:1311.2901, Fig. 2; the "What are deep ConvNets
learning?" lecture of Andrew Ng's CNN course).

A *unit* is one channel of a layer's feature maps. Every image of a set runs through the model once; for each
unit, the image's strongest position ``(y, x)`` (its maximum over the map) is kept, and the ``k`` images with
the highest maxima win. So the ``k`` patches come from ``k`` different images: with several positions per image
a unit that fires along a whole stripe would fill its grid with nine shifted copies of one stripe. Each patch is
the exact receptive field of its position (:mod:`cnnlab.explain.field`), clipped to the image: a border
position's patch is smaller than the field.

>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2))
>>> images = torch.rand(12, 1, 16, 16)
>>> (result,) = top_patches(net, images, layers=["2"], units=[0, 1], k=9)
>>> result.layer, [u.unit for u in result.units], len(result.units[0].patches), result.field.size
('2', [0, 1], 9, (4, 4))
>>> patch = result.units[0].patches[0]
>>> patch.pixels.shape, patch.pixels.dtype          # (h, w, C) uint8: what the model saw there
((4, 4, 1), dtype('uint8'))
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.core.shapes import AnchoredField
from cnnlab.explain.field import Box, LayerField, layer_fields
from cnnlab.explain.hooks import HookSet, eval_mode, tensor_output
from cnnlab.report.units_page import LayerView, PatchView, UnitView, write_units_page

T = TypeVar("T")

Loader = Callable[[Sequence[Any]], torch.Tensor]
"""Items (image paths, tensors, ...) -> the model's input batch ``(B, C, H, W)``."""
ToImage = Callable[[torch.Tensor], np.ndarray]
"""One model input ``(C, H, W)`` -> the picture the model saw, uint8 ``(H, W, C)``."""

DEFAULT_LAYERS = 4
"""How many layers :func:`default_layers` picks, spread from the first stage to the last."""


@dataclass(frozen=True)
class Patch:
    """One of a unit's strongest responses: image ``image`` (index into the images given), its activation
    ``value`` at map position ``position`` ``(y, x)``, the field ``box`` ``(top, left, bottom, right)`` (end
    exclusive, clipped) and the crop ``pixels`` ``(h, w, C)`` uint8."""

    image: int
    value: float
    position: tuple[int, int]
    box: Box
    pixels: np.ndarray


@dataclass(frozen=True)
class UnitPatches:
    """A unit (channel) of a layer and its patches, strongest first."""

    unit: int
    patches: tuple[Patch, ...]


@dataclass(frozen=True)
class LayerPatches:
    """One layer: its channel count, map size, receptive field and the chosen units' patches."""

    layer: str
    channels: int
    map_size: tuple[int, int]
    field: LayerField
    units: tuple[UnitPatches, ...]


def top_patches(
    model: nn.Module,
    images: Sequence[T] | torch.Tensor,
    load: Loader | None = None,
    layers: Sequence[str] | None = None,
    units: int | Sequence[int] = 8,
    k: int = 9,
    batch_size: int = 64,
    to_image: ToImage | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[LayerPatches]:
    """The ``k`` strongest patches (at most one per image) of units of ``layers`` over ``images``.

    ``images`` is anything ``load`` turns into model input, ``batch_size`` items at a time (default: a tensor
    ``(N, C, H, W)`` of model inputs, or a list of ``(C, H, W)`` tensors). ``layers`` default to
    :func:`default_layers`. ``units`` is a list of channels, or a count ``n``: the ``n`` units whose ``k`` best
    activations have the highest mean (the ones that respond most; ties go to the lower index), listed by index.
    ``to_image`` turns one model input back into the picture to crop from (default: min-max scaled to uint8).
    ``progress`` is called with the number of images after each batch.

    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    >>> (result,) = top_patches(net, torch.rand(5, 3, 8, 8), layers=["1"], units=2, k=3)
    >>> len(result.units), [len(u.patches) for u in result.units], result.units[0].patches[0].box[2:] <= (8, 8)
    (2, [3, 3], True)
    """
    load = load or _stack
    if len(images) == 0:
        raise DataError("no images to look at", where="top_patches", fix="pass at least one image")
    if k < 1:
        raise ConfigError(f"k must be at least 1. Received: k={k}", where="top_patches")
    first = load(images[:1])
    input_size = _input_size(first)
    names = list(layers) if layers else default_layers(model, input_size)
    if not names:
        raise ConfigError(
            f"{type(model).__name__} has no Conv2d layer to pick units from",
            where="layers",
            fix="name the layers, e.g. layers=['features.3'] (any module that returns feature maps)",
        )
    check_layers(model, names, input_size, units)
    tops = {name: _Top(k) for name in names}
    with HookSet() as hooks, eval_mode(model), torch.no_grad():
        for name in names:
            hooks.add(model.get_submodule(name).register_forward_hook(tops[name].hook))
        for start in range(0, len(images), batch_size):
            batch = load(images[start : start + batch_size])
            for top in tops.values():
                top.begin(start)
            model(batch)
            for name, top in tops.items():
                top.check(name)
            if progress is not None:
                progress(len(batch))
    chosen = {name: _units(top, units, name) for name, top in tops.items()}
    needed = sorted({i for name, top in tops.items() for i in top.images_of(chosen[name])})
    pictures = dict(zip(needed, _pictures(images, needed, load, to_image or _to_uint8, batch_size), strict=True))
    positions = {name: [p for unit in chosen[name] for p in top.positions_of(unit)] for name, top in tops.items()}
    fields = layer_fields(model, names, input_size, positions)
    results = []
    for name, top in tops.items():
        geometry = fields[name]
        rows = tuple(
            UnitPatches(unit, tuple(_patch(i, value, pos, geometry, pictures[i]) for i, value, pos in top.best(unit)))
            for unit in chosen[name]
        )
        results.append(LayerPatches(name, top.channels, geometry.map_size, geometry, rows))
    return results


def crop(image: np.ndarray, box: Box) -> np.ndarray:
    """``image[top:bottom, left:right]`` as a copy (``image`` is ``(H, W)`` or ``(H, W, C)``).

    >>> crop(np.arange(16).reshape(4, 4), (1, 2, 3, 4)).tolist()
    [[6, 7], [10, 11]]
    """
    top, left, bottom, right = box
    return np.array(image[top:bottom, left:right])


def layer_names(model: nn.Module, input_size: tuple[int, int, int]) -> list[str]:
    """Layers whose units can be shown: modules that run once and return feature maps ``(B, C, h, w)``, in the
    order they finish.

    >>> layer_names(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten()), (1, 8, 8))
    ['0', '1']
    """
    return [event.name for event in _trace(model, input_size) if event.calls == 1 and event.maps]


def default_layers(model: nn.Module, input_size: tuple[int, int, int], count: int = DEFAULT_LAYERS) -> list[str]:
    """Up to ``count`` layers spread from the first stage to the last: the model's ``feature_layers`` (the
    modules that end each stage, as the zoo's ResNets declare them), else the end of each run of convolutions
    at one resolution (the last conv there, or the block that wraps it with its normalisation and activation).

    >>> from cnnlab.models import create_model
    >>> default_layers(create_model("cnn_small"), (1, 28, 28))
    ['features.1', 'features.4']
    >>> default_layers(create_model("resnet20"), (3, 32, 32))
    ['layer1', 'layer2', 'layer3']
    """
    declared = getattr(model, "feature_layers", ())
    if declared:
        names = list(declared)
    else:
        events = _trace(model, input_size)
        names = []
        for index, event in enumerate(events):
            if not isinstance(event.module, nn.Conv2d) or event.shape is None:
                continue
            later = [e for e in events[index + 1 :] if isinstance(e.module, nn.Conv2d | nn.Linear)]
            if later and later[0].shape is not None and later[0].shape[2:] == event.shape[2:]:
                continue  # another conv at this resolution comes later: not the end of the run
            names.append(_wrapper(events, index))
    if len(names) <= count:
        return names
    picks = np.linspace(0, len(names) - 1, count).round().astype(int)
    return [names[i] for i in sorted(set(picks.tolist()))]


def check_layers(
    model: nn.Module,
    layers: Sequence[str],
    input_size: tuple[int, int, int],
    units: int | Sequence[int] | None = None,
) -> None:
    """Raise a one-line :class:`ConfigError` naming the valid layers if any of ``layers`` cannot be shown, or the
    valid channels if a unit in the list ``units`` is not one of a layer's (before any image is read).

    >>> check_layers(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), ["2"], (1, 8, 8))
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.ConfigError: Sequential has no layer '2' with feature maps [--layers]. Fix: use one of 0, 1
    """
    events = {event.name: event for event in _trace(model, input_size) if event.calls == 1 and event.maps}
    valid = list(events)
    for name in layers:
        if name not in events:
            close = difflib.get_close_matches(name, valid, n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise ConfigError(
                f"{type(model).__name__} has no layer '{name}' with feature maps",
                where="--layers",
                fix=f"{hint}use one of {_listing(valid)}",
            )
        shape = events[name].shape
        assert shape is not None
        _check_units(units, shape[1], name)


def _check_units(units: int | Sequence[int] | None, channels: int, layer: str) -> None:
    if units is None:
        return
    if isinstance(units, int):
        if units < 1:
            raise ConfigError(f"units must be at least 1. Received: {units}", where="--units")
        return
    bad = [u for u in units if not 0 <= u < channels]
    if bad or not units:
        raise ConfigError(
            f"layer '{layer}' has units 0..{channels - 1}; asked for {bad or 'none'}",
            where="--units",
            fix=f"pick channels in 0..{channels - 1}, or pass a count",
        )


def padded(patch: Patch, geometry: LayerField) -> np.ndarray:
    """The patch's pixels on a checkerboard the size of the whole field, placed where the field lies: a patch
    clipped at the image's border keeps its scale and position in the grid (the checkerboard is outside).

    >>> from torch import nn
    >>> geometry = layer_fields(nn.Sequential(nn.Conv2d(1, 1, 3, padding=1)), ["0"], (1, 6, 6))["0"]
    >>> pixels = np.full((2, 3, 1), 255, np.uint8)             # position (0, 1): rows 0-1 of rows -1..1
    >>> padded(Patch(0, 1.0, (0, 1), geometry.box((0, 1)), pixels), geometry)[..., 0].tolist()
    [[96, 160, 96], [255, 255, 255], [255, 255, 255]]
    """
    _, height, width = geometry.input_size
    top, left, bottom, right = patch.box
    before_y, after_y = _padding(geometry.rows, patch.position[0], top, bottom, height)
    before_x, after_x = _padding(geometry.cols, patch.position[1], left, right, width)
    pixels = patch.pixels.reshape(bottom - top, right - left, -1)
    out_h, out_w = bottom - top + before_y + after_y, right - left + before_x + after_x
    board = np.where((np.arange(out_h)[:, None] + np.arange(out_w)[None, :]) % 2 == 0, 96, 160).astype(np.uint8)
    canvas = np.repeat(board[..., None], pixels.shape[2], axis=2)  # (h, w, C)
    canvas[before_y : before_y + pixels.shape[0], before_x : before_x + pixels.shape[1]] = pixels
    return canvas


def write_page(
    path: str | Path,
    layers: Sequence[LayerPatches],
    maximised: Mapping[str, torch.Tensor] | None = None,
    names: Sequence[str] | None = None,
    title: str = "What each unit responds to",
    intro: Sequence[str] = (),
) -> Path:
    """Write the units page (:mod:`cnnlab.report.units_page`): per layer, per unit, the padded top patches
    (captioned with ``names[image]``, the activation and the box) beside ``maximised[layer][i]`` (images
    ``(U, C, H, W)`` in [0, 1], one per unit in the layer's order; none: no maximisation column).

    >>> import tempfile
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    >>> layers = top_patches(net, torch.rand(4, 1, 8, 8), layers=["1"], units=[0, 1], k=3)
    >>> page = write_page(tempfile.mkdtemp() + "/units.html", layers, {"1": torch.rand(2, 1, 8, 8)})
    >>> page.read_text().count("<img ")   # 2 units x (3 patches + 1 maximisation image)
    8
    """
    views = []
    for layer in layers:
        images = (maximised or {}).get(layer.layer)
        units = []
        for index, unit in enumerate(layer.units):
            patches = [PatchView(padded(p, layer.field), _caption(p, names)) for p in unit.patches]
            picture = None if images is None else images[index].detach().permute(1, 2, 0).cpu().numpy()
            units.append(UnitView(unit.unit, patches, picture))
        views.append(LayerView(layer.layer, describe(layer), units))
    return write_units_page(path, title, intro, views)


def describe(layer: LayerPatches) -> str:
    """One line about a layer: units, map size and receptive field.

    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2))
    >>> describe(top_patches(net, torch.rand(2, 1, 10, 10), layers=["1"], units=1, k=1)[0])
    '2 units on 4x4 maps; each position sees 4x4 input pixels, 2 apart'
    """
    field, (h, w) = layer.field, layer.map_size
    text = f"{layer.channels} units on {h}x{w} maps; "
    if field.rows is None or field.cols is None:
        size = f"{field.input_size[1]}x{field.input_size[2]}"
        return text + f"the receptive field is larger than the {size} input, so patches are clipped"
    jumps = {field.rows.jump, field.cols.jump}
    apart = f"{field.rows.jump}" if len(jumps) == 1 else f"{field.rows.jump}/{field.cols.jump}"
    return text + f"each position sees {field.rows.size}x{field.cols.size} input pixels, {apart} apart"


def summary(layers: Sequence[LayerPatches], names: Sequence[str] | None = None) -> list[dict[str, object]]:
    """The results as plain data (for JSON): per layer its units and, per unit, each patch's image, activation,
    map position and box ``[top, left, bottom, right]`` (end exclusive).

    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    >>> row = summary(top_patches(net, torch.ones(2, 1, 5, 5), layers=["1"], units=[0], k=1), ["a.png", "b.png"])[0]
    >>> row["layer"], row["units"][0]["patches"][0]["image"], row["units"][0]["patches"][0]["box"]
    ('1', 'a.png', [0, 0, 3, 3])
    """
    rows: list[dict[str, object]] = []
    for layer in layers:
        field = layer.field
        rows.append(
            {
                "layer": layer.layer,
                "channels": layer.channels,
                "map_size": list(layer.map_size),
                "field": {
                    axis: None
                    if geometry is None
                    else {"size": geometry.size, "jump": geometry.jump, "start": geometry.start}
                    for axis, geometry in (("rows", field.rows), ("cols", field.cols))
                },
                "units": [
                    {
                        "unit": unit.unit,
                        "patches": [
                            {
                                "image": names[p.image] if names is not None else p.image,
                                "activation": p.value,
                                "position": list(p.position),
                                "box": list(p.box),
                            }
                            for p in unit.patches
                        ],
                    }
                    for unit in layer.units
                ],
            }
        )
    return rows


def _padding(geometry: AnchoredField | None, index: int, first: int, end: int, pixels: int) -> tuple[int, int]:
    """How many pixels of the field lie before and after the clipped span ``first:end`` along one axis."""
    if geometry is not None:
        start, last = geometry.span(index)
        return max(0, -start), max(0, last - (pixels - 1))
    missing = pixels - (end - first)  # the field covers more than the image: pad to the image's size
    return (missing, 0) if first == 0 and end < pixels else (0, missing)


def _caption(patch: Patch, names: Sequence[str] | None) -> str:
    source = names[patch.image] if names is not None else f"image {patch.image}"
    top, left, bottom, right = patch.box
    return (
        f"{source}: activation {patch.value:.4g} at map ({patch.position[0]}, {patch.position[1]}); "
        f"pixels rows {top}-{bottom - 1}, columns {left}-{right - 1}"
    )


@dataclass(frozen=True)
class _Event:
    name: str
    module: nn.Module
    shape: tuple[int, ...] | None  # the output's shape if it is one tensor
    calls: int

    @property
    def maps(self) -> bool:
        return self.shape is not None and len(self.shape) == 4


def _trace(model: nn.Module, input_size: tuple[int, int, int]) -> list[_Event]:
    """Every named submodule that ran on one zero image, in the order it finished, with its output shape."""
    order: list[str] = []
    shapes: dict[str, tuple[int, ...] | None] = {}
    calls: dict[str, int] = {}

    def record(name: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            calls[name] = calls.get(name, 0) + 1
            if name not in shapes:
                order.append(name)
                shapes[name] = tuple(output.shape) if isinstance(output, torch.Tensor) else None

        return hook

    modules = dict(model.named_modules())
    with HookSet() as hooks, eval_mode(model), torch.no_grad():
        for name, module in modules.items():
            if name:
                hooks.add(module.register_forward_hook(record(name)))
        model(torch.zeros(1, *input_size))
    return [_Event(name, modules[name], shapes[name], calls[name]) for name in order]


def _wrapper(events: list[_Event], index: int) -> str:
    """The last module that finishes after the conv ``events[index]`` at its resolution before the next conv:
    the conv itself, its activation, or the block that wraps conv, norm and activation (``features.1``)."""
    conv = events[index]
    assert conv.shape is not None
    chosen = conv.name
    for event in events[index + 1 :]:
        if isinstance(event.module, nn.Conv2d | nn.Linear) or event.shape is None or event.shape[2:] != conv.shape[2:]:
            break
        if len(event.shape) == 4 and event.calls == 1:
            chosen = event.name
    return chosen


class _Top:
    """The running ``k`` best (value, image, position) per channel of one layer, at most one per image."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.values = torch.empty(0)  # (<= k, C), best first
        self.images = torch.empty(0, dtype=torch.long)  # (<= k, C)
        self.positions = torch.empty(0, dtype=torch.long)  # (<= k, C), flat y * w + x
        self.map_width = 0
        self.channels = 0
        self._offset = 0
        self._calls = 0

    def begin(self, offset: int) -> None:
        self._offset, self._calls = offset, 0

    def hook(self, module: nn.Module, args: Any, output: Any) -> None:
        # Reduce here, not after the forward pass: a later in-place op (ReLU(inplace=True)) may change the output.
        maps = tensor_output(module, output).detach().float()  # (B, C, h, w)
        self._calls += 1
        self.map_width, self.channels = maps.shape[3], maps.shape[1]
        flat = maps.flatten(2).nan_to_num(nan=-torch.inf)  # (B, C, h * w)
        values, positions = flat.max(dim=2)  # (B, C): the first maximum of each map
        images = torch.arange(self._offset, self._offset + len(maps))[:, None].expand_as(values)
        if self.values.numel():
            values = torch.cat([self.values, values])
            images = torch.cat([self.images, images])
            positions = torch.cat([self.positions, positions])
        # Stable: among equal values the earlier image (kept rows come first) wins, so results do not depend on
        # the batch size.
        order = values.sort(dim=0, descending=True, stable=True).indices[: self.k]  # (k, C)
        self.values = values.gather(0, order)
        self.images = images.gather(0, order)
        self.positions = positions.gather(0, order)

    def check(self, name: str) -> None:
        if self._calls != 1:
            raise ConfigError(
                f"layer '{name}' runs {self._calls} times in one forward pass, so its units are ambiguous",
                where="--layers",
                fix="choose a layer that runs once (a block, or a conv), not a shared activation",
            )

    def best(self, unit: int) -> list[tuple[int, float, tuple[int, int]]]:
        return [
            (int(i), float(v), divmod(int(p), self.map_width))
            for i, v, p in zip(self.images[:, unit], self.values[:, unit], self.positions[:, unit], strict=True)
        ]

    def images_of(self, units: Sequence[int]) -> set[int]:
        return {int(i) for i in self.images[:, list(units)].flatten()}

    def positions_of(self, unit: int) -> list[tuple[int, int]]:
        return [pos for _, _, pos in self.best(unit)]


def _units(top: _Top, units: int | Sequence[int], layer: str) -> list[int]:
    _check_units(units, top.channels, layer)
    if isinstance(units, int):
        score = top.values.mean(dim=0)  # (C,)
        order = score.sort(descending=True, stable=True).indices[:units]
        return sorted(int(u) for u in order)
    return list(units)


def _pictures(
    images: Sequence[Any] | torch.Tensor, needed: list[int], load: Loader, to_image: ToImage, batch_size: int
) -> list[np.ndarray]:
    """The pictures (uint8 ``(H, W, C)``) of the images that won somewhere, loaded again: keeping every input of
    the data pass would hold the whole folder in memory."""
    pictures: list[np.ndarray] = []
    for start in range(0, len(needed), batch_size):
        batch = load([images[i] for i in needed[start : start + batch_size]])
        pictures.extend(to_image(x) for x in batch)
    return pictures


def _patch(image: int, value: float, position: tuple[int, int], geometry: LayerField, picture: np.ndarray) -> Patch:
    box = geometry.box(position)
    return Patch(image, value, position, box, crop(picture, box))


def _stack(items: Sequence[Any] | torch.Tensor) -> torch.Tensor:
    return items if isinstance(items, torch.Tensor) else torch.stack(list(items))


def _input_size(batch: torch.Tensor) -> tuple[int, int, int]:
    if not isinstance(batch, torch.Tensor) or batch.dim() != 4:
        shape = tuple(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__
        raise DataError(f"expected images as a batch (B, C, H, W), got {shape}", where="load")
    channels, height, width = batch.shape[1:]
    return int(channels), int(height), int(width)


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """Min-max scale one input ``(C, H, W)`` to uint8 ``(H, W, C)`` (a constant image becomes 0)."""
    x = x.detach().float().cpu()
    span = x.max() - x.min()
    scaled = (x - x.min()) / span if span > 0 else torch.zeros_like(x)
    return (scaled * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _listing(names: Sequence[str], limit: int = 40) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    shown = sorted(names, key=lambda n: n.count("."))[:limit]  # the outer blocks first
    return f"{', '.join(n for n in names if n in shown)} ... ({len(names)} in all)"
