"""The explorer's state and answers: the model's layers, the images looked at (the last few, in memory) and,
per image, every layer call's recorded input and output; each view is JSON for the page.

>>> from cnnlab.explore.samples import sample
>>> from cnnlab.explore.subject import zoo_subject
>>> explorer = Explorer(zoo_subject("cnn_small"))
>>> seen = explorer.look(sample("disc"), "built-in: disc")
>>> conv = next(layer.index for layer in explorer.layers if layer.type == "Conv2d")
>>> view = explorer.layer_view(seen["id"], conv)
>>> view["grid"]["channels"], view["layer"]["type"]
(32, 'Conv2d')
>>> unit = explorer.unit_view(seen["id"], conv, 5, 3, 4)
>>> abs(unit["value"] - unit["dot"]) < 1e-4, unit["box"]      # the model's value = the dot product
(True, [2, 3, 5, 6])
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.explain.field import linearised
from cnnlab.explore.cam import cam_view
from cnnlab.explore.images import MAX_SIDE, prepare
from cnnlab.explore.layers import SUPPORTED, Layer, describe_layers
from cnnlab.explore.maps import data_url, map_grid, png_bytes
from cnnlab.explore.patches import DataPatches
from cnnlab.explore.record import Call, record_calls
from cnnlab.explore.samples import SAMPLES
from cnnlab.explore.subject import Subject
from cnnlab.explore.unit import explain_unit, unit_box

KEEP = 4
"""Images kept in memory (each with every layer's maps); an older one is dropped and must be picked again."""
TOP = 5
UNIT_LAYERS = "Conv2d (the dot product), MaxPool2d and AvgPool2d (the window), BatchNorm2d and activations"


class UnknownImage(KeyError):
    """An image id the explorer no longer holds (or never had)."""


@dataclass(frozen=True)
class Seen:
    """One image looked at: its input ``x`` ``(C, H, W)``, the picture the model saw, every layer call, the
    class probabilities and notes on how it was prepared."""

    id: str
    origin: str
    x: torch.Tensor
    picture: np.ndarray
    calls: list[Call]
    probabilities: torch.Tensor | None
    notes: list[str]


class Explorer:
    """Answers for the page about ``subject``; ``data`` is a folder of images (pick from it, and the top patches
    of a unit). Thread-safe: one model computation at a time."""

    def __init__(self, subject: Subject, data: Path | None = None) -> None:
        self.subject = subject
        self.layers = describe_layers(subject.model, subject.input_size)
        macs = sum(layer.macs or 0 for layer in self.layers if layer.is_leaf)
        self.patches = DataPatches(subject, data, macs) if data is not None else None
        self._seen: OrderedDict[str, Seen] = OrderedDict()
        self._lock = threading.Lock()
        self._linear: nn.Module | None = None
        self._linear_error: str | None = None

    def info(self) -> dict[str, Any]:
        """The model, its layers, the pictures on offer, and what the explorer supports."""
        subject = self.subject
        data = None
        if self.patches is not None:
            data = {
                "folder": str(self.patches.folder),
                "images": self.patches.relative(),
                "searched": len(self.patches.searched),
            }
        return {
            "name": subject.name,
            "source": subject.source,
            "trained": subject.trained,
            "note": subject.note,
            "input_size": list(subject.input_size),
            "classes": list(subject.classes),
            "layers": [layer.to_dict() for layer in self.layers],
            "samples": list(SAMPLES),
            "data": data,
            "supported": SUPPORTED,
            "unit_layers": UNIT_LAYERS,
            "max_side": MAX_SIDE,
        }

    def look(self, image: Image.Image, origin: str) -> dict[str, Any]:
        """Run the model on a decoded image, keep every layer's maps, and answer its id, notes and top classes."""
        x, notes = prepare(self.subject, image)
        key = hashlib.sha1(x.numpy().tobytes()).hexdigest()[:16]
        started = time.perf_counter()
        with self._lock:
            seen = self._seen.get(key)
            if seen is None:
                calls = record_calls(self.subject.model, x[None])
                if [c.name for c in calls] != [layer.name for layer in self.layers]:
                    raise ConfigError(
                        f"{self.subject.name} called other layers for this image than for a blank one",
                        where="model",
                        fix="explore a model whose forward pass does the same thing for every image",
                    )
                seen = Seen(key, origin, x, self.subject.to_image(x), calls, _probabilities(calls[0]), notes)
                self._seen[key] = seen
                while len(self._seen) > KEEP:
                    self._seen.popitem(last=False)
            self._seen.move_to_end(key)
        top = []
        if seen.probabilities is not None:
            values, indices = seen.probabilities.topk(min(TOP, len(seen.probabilities)))
            top = [
                {"class": int(i), "label": self.subject.classes[int(i)], "probability": float(v)}
                for v, i in zip(values, indices, strict=True)
            ]
        return {"id": key, "origin": origin, "notes": notes, "top": top, "elapsed_ms": _ms(started)}

    def data_image(self, relative: str) -> Image.Image:
        """An image of the ``--data`` folder by its path inside it (only those listed: no other file is read)."""
        if self.patches is None:
            raise ConfigError("no --data folder was given", where="data", fix="start with --data FOLDER")
        listed = dict(zip(self.patches.relative(), self.patches.images, strict=True))
        if relative not in listed:
            raise DataError(f"'{relative}' is not an image of the --data folder", where="data", fix="pick one listed")
        return Image.open(listed[relative])

    def input_png(self, image_id: str) -> bytes:
        """The picture the model saw, as PNG."""
        picture = self._get(image_id).picture
        return png_bytes(picture[..., 0] if picture.shape[2] == 1 else picture)

    def layer_view(self, image_id: str, index: int) -> dict[str, Any]:
        """Layer call ``index``'s arithmetic and, for feature maps, the grid of its channels for this image."""
        started = time.perf_counter()
        layer, call = self._layer(index), self._get(image_id).calls[index]
        view: dict[str, Any] = {"layer": layer.to_dict()}
        if layer.maps and call.output is not None:
            grid = map_grid(call.output[0])
            view["grid"] = {
                "png": data_url(grid.png),
                "channels": grid.channels,
                "total_channels": grid.total_channels,
                "columns": grid.columns,
                "scale": grid.scale,
                "tile_height": grid.tile_height,
                "tile_width": grid.tile_width,
                "gap": grid.gap,
                "low": grid.low,
                "high": grid.high,
            }
        elif call.output is not None and call.output.dim() == 2:
            values = call.output[0]
            order = values.argsort(descending=True)[:10]
            view["vector"] = {"length": len(values), "top": [[int(i), float(values[i])] for i in order]}
        view["elapsed_ms"] = _ms(started)
        return view

    def unit_view(self, image_id: str, index: int, channel: int, y: int, x: int) -> dict[str, Any]:
        """Unit ``(channel, y, x)`` of layer call ``index``: its value, what made it, and its receptive field."""
        started = time.perf_counter()
        layer, seen = self._layer(index), self._get(image_id)
        call = seen.calls[index]
        if not layer.maps or call.output is None:
            raise ConfigError(f"layer '{layer.label}' has no feature maps to click", where="layer")
        _, channels, height, width = call.output.shape
        if not (0 <= channel < channels and 0 <= y < height and 0 <= x < width):
            raise ConfigError(
                f"no unit ({channel}, {y}, {x}) in maps of {channels} x {height} x {width}",
                where="unit",
                fix=f"channel 0..{channels - 1}, y 0..{height - 1}, x 0..{width - 1}",
            )
        is_image = (
            call.input is not None and call.input.shape[1:] == seen.x.shape and torch.equal(call.input[0], seen.x)
        )
        answer = explain_unit(call, channel, y, x, is_image)
        with self._lock:
            net = self._linearised()
            box = (
                None
                if net is None
                else unit_box(net, layer.name, layer.occurrence, self.subject.input_size, channel, y, x)
            )
        answer.update(
            layer=layer.label,
            type=layer.type,
            channel=channel,
            y=y,
            x=x,
            box=None if box is None else list(box),
            box_error=self._linear_error,
            receptive_field=layer.receptive_field,
            elapsed_ms=_ms(started),
        )
        return answer

    def cam_view(self, image_id: str, target: int | None) -> dict[str, Any]:
        """Grad-CAM of class ``target`` (None: the predicted class) for the image."""
        started = time.perf_counter()
        seen = self._get(image_id)
        if target is not None and not 0 <= target < len(self.subject.classes):
            raise ConfigError(
                f"class {target} is out of range", where="class", fix=f"use 0..{len(self.subject.classes) - 1}"
            )
        with self._lock:
            view = cam_view(self.subject, seen.x, seen.picture, target)
        return {**view, "elapsed_ms": _ms(started)}

    def top_view(self, index: int, channel: int) -> dict[str, Any]:
        """The top-9 patches of unit ``channel`` of layer call ``index`` over the ``--data`` folder."""
        started = time.perf_counter()
        if self.patches is None:
            raise ConfigError(
                "top patches need a folder of images", where="data", fix="start cnnlab explore with --data FOLDER"
            )
        layer = self._layer(index)
        if not layer.maps or not 0 <= channel < layer.output_shapes[0][1]:
            raise ConfigError(f"layer '{layer.label}' has no channel {channel}", where="unit")
        with self._lock:
            view = self.patches.unit(layer, channel)
        return {**view, "elapsed_ms": _ms(started)}

    def _layer(self, index: int) -> Layer:
        if not 0 <= index < len(self.layers):
            raise ConfigError(f"no layer {index}", where="layer", fix=f"use 0..{len(self.layers) - 1}")
        return self.layers[index]

    def _get(self, image_id: str) -> Seen:
        with self._lock:
            seen = self._seen.get(image_id)
        if seen is None:
            raise UnknownImage(image_id)
        return seen

    def _linearised(self) -> nn.Module | None:
        """The all-positive copy the receptive fields are measured on (made once); None with the reason kept
        when the model has a layer without a linear twin (a dilated max-pool)."""
        if self._linear is None and self._linear_error is None:
            try:
                self._linear = linearised(self.subject.model)
            except ConfigError as exc:
                self._linear_error = str(exc)
        return self._linear


def _probabilities(model_call: Call) -> torch.Tensor | None:
    """Softmax of the model's output when it is one row of class scores."""
    out = model_call.output
    return out[0].softmax(dim=0) if out is not None and out.dim() == 2 else None


def _ms(started: float) -> float:
    return round(1000 * (time.perf_counter() - started), 1)
