"""Image preprocessing for inference with pretrained weights: open, resize, centre-crop, normalise.

The usual ImageNet evaluation recipe: resize the shorter side to ``resize`` (256), crop the central
``size`` (224), scale to 0..1, then ``(x - mean) / std`` per channel.

>>> from PIL import Image
>>> image = Image.new("RGB", (300, 200), (255, 0, 0))
>>> x = preprocess_image(image, size=224, resize=256, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
>>> x.shape, x[0, 0, 0].item(), x[1, 0, 0].item()
(torch.Size([3, 224, 224]), 1.0, -1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnnlab.data.images import read_image


def load_image(path: str | Path, channels: int = 3) -> Image.Image:
    """Open an image the one way cnnlab decodes images (:func:`~cnnlab.data.images.read_image`: EXIF
    orientation, pixel-count guard, 16-bit and palette modes), as an RGB (3 channels) or grey (1) PIL image."""
    pixels = read_image(path, channels=channels)  # (H, W, C) uint8
    return Image.fromarray(pixels[..., 0] if channels == 1 else pixels)


def preprocess_image(
    image: Image.Image, size: int, resize: int, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """Shorter side to ``resize`` (bilinear), central ``size`` x ``size`` crop, normalised ``(C, size, size)``."""
    width, height = image.size
    scale = resize / min(width, height)
    image = image.resize((max(size, round(width * scale)), max(size, round(height * scale))), Image.Resampling.BILINEAR)
    left, top = (image.width - size) // 2, (image.height - size) // 2
    image = image.crop((left, top, left + size, top + size))
    array = np.asarray(image, dtype=np.float32) / 255.0  # (H, W, C) or (H, W)
    x = torch.from_numpy(array.reshape(size, size, -1)).permute(2, 0, 1)  # (C, H, W)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return (x - mean_t) / std_t
