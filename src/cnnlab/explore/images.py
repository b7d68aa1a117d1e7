"""Images into the explorer, in memory (uploads are decoded by :func:`cnnlab.data.uploads.decode_image`): shrink a
huge one first (and say so), fit it to the model's input as training did, and read the ``--data`` folder.

>>> from cnnlab.explore.subject import zoo_subject
>>> subject = zoo_subject("cnn_small")                       # grey 28x28
>>> x, notes = prepare(subject, Image.new("RGB", (5000, 2500), (255, 255, 255)))
>>> tuple(x.shape), notes[0]
((1, 28, 28), 'the image is 5000x2500 pixels: resized to 2048x1024 in memory first (larger images are shrunk ...')
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from cnnlab.data.images import resize_image, to_8bit
from cnnlab.data.preprocess import load_image, preprocess_image
from cnnlab.explore.subject import Subject

MAX_SIDE = 2048
"""A longer side than this is shrunk (in memory, aspect kept) before anything else, with a note on the page."""


def prepare(subject: Subject, image: Image.Image) -> tuple[torch.Tensor, list[str]]:
    """The model input ``(C, H, W)`` for a decoded image, and notes on what was done to it."""
    channels, height, width = subject.input_size
    image = ImageOps.exif_transpose(image)
    notes = []
    if max(image.size) > MAX_SIDE:
        before = f"{image.width}x{image.height}"
        image = image.copy()
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)
        notes.append(
            f"the image is {before} pixels: resized to {image.width}x{image.height} in memory first "
            f"(larger images are shrunk to {MAX_SIDE} pixels on the longer side)"
        )
    image = to_8bit(image, channels)
    if subject.resize is not None:
        notes.append(f"shorter side resized to {subject.resize}, then the centre {height}x{width}: the model's input")
        return preprocess_image(image, height, subject.resize, subject.mean, subject.std), notes
    notes.append(f"{image.width}x{image.height} -> {width}x{height} ({subject.fit}): the model's input size")
    pixels = np.asarray(resize_image(image, (height, width), subject.fit), dtype=np.float32) / 255.0
    x = torch.from_numpy(pixels.reshape(height, width, channels)).permute(2, 0, 1)
    mean = torch.tensor(subject.mean, dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(subject.std, dtype=torch.float32).view(-1, 1, 1)
    return ((x - mean) / std).contiguous(), notes


def load_inputs(subject: Subject, paths: list[Path]) -> torch.Tensor:
    """Image files -> the model's input batch ``(B, C, H, W)`` (what ``--data`` images go through)."""
    return torch.stack([prepare(subject, load_image(p, subject.input_size[0]))[0] for p in paths])
