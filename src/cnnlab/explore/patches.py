"""The top-9 patches of a unit over the ``--data`` folder (:func:`cnnlab.explain.units.top_patches`): the
image regions that excite it most, at most one per image, each the unit's exact receptive field.

One pass over the images finds the best patches of every channel of a layer at once, kept for the next click.
A large folder is searched in an evenly spaced subset (the page says so): at most :data:`MAX_IMAGES` images, and
fewer for a big model, so that one search costs about :data:`SEARCH_MACS` multiply-adds (a few seconds).

>>> import tempfile
>>> from pathlib import Path
>>> from PIL import Image
>>> from cnnlab.explore.layers import describe_layers
>>> from cnnlab.explore.subject import zoo_subject
>>> folder = Path(tempfile.mkdtemp())
>>> for i in range(12):
...     Image.new("L", (28, 28), i * 20).save(folder / f"{i}.png")
>>> subject = zoo_subject("cnn_small")
>>> layer = next(layer for layer in describe_layers(subject.model, subject.input_size) if layer.type == "Conv2d")
>>> found = DataPatches(subject, folder).unit(layer, channel=0)
>>> len(found["patches"]), found["searched"], found["patches"][0]["png"][:22]
(9, 12, 'data:image/png;base64,')
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Any

from cnnlab.core.errors import ConfigError
from cnnlab.data.images import image_files
from cnnlab.explain.units import LayerPatches, padded, top_patches
from cnnlab.explore.images import load_inputs
from cnnlab.explore.layers import Layer
from cnnlab.explore.maps import data_url, png_bytes
from cnnlab.explore.subject import Subject

MAX_IMAGES = 256
"""At most this many images are searched per layer."""
SEARCH_MACS = 100e9
"""Multiply-adds one search may spend (resnet18 at 224 px: 55 images, cnn_small at 28 px: all 256)."""
MIN_IMAGES = 16
K = 9


class DataPatches:
    """The ``--data`` folder and the top patches found in it so far, per layer."""

    def __init__(self, subject: Subject, folder: Path, macs_per_image: int = 0) -> None:
        self.subject = subject
        self.folder = folder
        self.images = image_files(folder)
        most = max(MIN_IMAGES, min(MAX_IMAGES, int(SEARCH_MACS // max(1, macs_per_image))))
        self.searched = self.images[:: math.ceil(len(self.images) / most)]
        self._found: dict[str, LayerPatches] = {}

    def relative(self) -> list[str]:
        """Every image's path inside the folder."""
        return [str(p.relative_to(self.folder)) for p in self.images]

    def unit(self, layer: Layer, channel: int) -> dict[str, Any]:
        """The top patches of ``channel`` of ``layer`` as JSON for the page (PNG data URLs, strongest first)."""
        if layer.calls > 1:
            raise ConfigError(
                f"layer '{layer.name}' runs {layer.calls} times in one forward pass, so the best patches of its "
                "units are ambiguous",
                where="top patches",
                fix="pick the block around it, or the layer before it",
            )
        found = self._found.get(layer.name)
        if found is None:
            channels = layer.output_shapes[0][1]
            (found,) = top_patches(
                self.subject.model,
                self.searched,
                partial(load_inputs, self.subject),
                layers=[layer.name],
                units=list(range(channels)),
                k=K,
                to_image=self.subject.to_image,
            )
            self._found[layer.name] = found
        patches = [
            {
                "png": data_url(png_bytes(_plain(padded(patch, found.field)))),
                "value": patch.value,
                "image": str(self.searched[patch.image].relative_to(self.folder)),
                "position": list(patch.position),
                "box": list(patch.box),
            }
            for patch in found.units[channel].patches
        ]
        return {
            "patches": patches,
            "field": list(found.field.size),
            "searched": len(self.searched),
            "images": len(self.images),
        }


def _plain(pixels: Any) -> Any:
    """``(h, w, 1)`` grey as ``(h, w)`` (what Pillow takes); RGB as it is."""
    return pixels[..., 0] if pixels.shape[2] == 1 else pixels
