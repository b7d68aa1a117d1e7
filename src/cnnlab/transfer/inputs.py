"""Input adaptation: images reach the pretrained weights at their input size, channels and normalisation.

- size: smaller images are padded (centred, black) to the weights' size, as Fashion-MNIST 28x28 goes
  to 32x32 for a CIFAR net; larger or non-square ones are padded to a square, then resized
  (``fit="pad"``), stretched (``fit="stretch"``), or centre-cropped (``fit="crop"``: images decoded at
  the spec's ``resize`` side, then cropped to its input size, the usual ImageNet evaluation recipe);
- channels: grey images are repeated into RGB, so the weights' per-channel normalisation applies as
  it does to a grey photo;
- normalisation: the mean/std the weights were trained with (from their :class:`WeightSpec`), not the
  dataset's.

>>> grey = torch.full((2, 1, 28, 28), 200, dtype=torch.uint8)
>>> out = adapt_images(grey, (3, 32, 32))
>>> out.shape, out[0, :, 0, 0].tolist(), out[0, :, 16, 16].tolist()
(torch.Size([2, 3, 32, 32]), [0, 0, 0], [200, 200, 200])
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from cnnlab.core.errors import ConfigError
from cnnlab.data.augment import Compose, Normalize
from cnnlab.data.datasets import Dataset
from cnnlab.data.images import Fit
from cnnlab.models.weights import WeightSpec


@dataclass(frozen=True)
class InputSpec:
    """What a pretrained backbone expects: ``(C, H, W)`` and the per-channel mean/std on [0, 1] pixels."""

    size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]


def input_spec(spec: WeightSpec) -> InputSpec:
    """The input a weight file expects.

    >>> from cnnlab.models import weight_spec
    >>> input_spec(weight_spec("resnet20.cifar10")).size
    (3, 32, 32)
    """
    return InputSpec(spec.input_size, tuple(spec.mean), tuple(spec.std))


def adapt_images(images: torch.Tensor, size: tuple[int, int, int], fit: Fit = "pad") -> torch.Tensor:
    """uint8 images ``(N, C, H, W)`` -> uint8 ``(N, *size)`` (see the module docstring for the rules)."""
    if fit not in ("pad", "stretch", "crop"):
        raise ConfigError(f"fit must be 'pad', 'stretch' or 'crop'. Received: fit={fit!r}", where="adapt_images")
    channels, height, width = size
    x = images
    if x.shape[1] != channels:
        if x.shape[1] == 1:
            x = x.expand(-1, channels, -1, -1)  # grey -> RGB: the same intensity in every channel
        elif channels == 1 and x.shape[1] == 3:
            luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            x = (x.float() * luma).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
        else:
            raise ConfigError(
                f"cannot adapt {x.shape[1]}-channel images to {channels} channels",
                where="adapt_images",
                fix="use grey or RGB images, or weights for this number of channels",
            )
    h, w = x.shape[-2:]
    if (h, w) == (height, width):
        return x.contiguous()
    if fit == "crop" and h >= height and w >= width:
        top, left = (h - height) // 2, (w - width) // 2
        return x[:, :, top : top + height, left : left + width].contiguous()
    if fit in ("pad", "crop"):
        small = h <= height and w <= width
        out_h, out_w = (height, width) if small else (max(h, w), max(h, w))
        top, left = (out_h - h) // 2, (out_w - w) // 2
        x = F.pad(x, (left, out_w - w - left, top, out_h - h - top))  # (N, C, out_h, out_w), black border
        if small:
            return x.contiguous()
    y = F.interpolate(x.float(), size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return y.round().clamp(0, 255).to(torch.uint8)


def adapt_dataset(data: Dataset, size: tuple[int, int, int], fit: Fit = "pad") -> Dataset:
    """The dataset with its images passed through :func:`adapt_images` (targets and names kept)."""
    return replace(data, images=adapt_images(data.images, size, fit))


def with_normalisation(pipeline: Compose, mean: tuple[float, ...], std: tuple[float, ...]) -> Compose:
    """``pipeline`` with any ``Normalize`` dropped and one with the weights' ``mean``/``std`` at the end.

    An augmentation preset may normalise with the ImageNet statistics; pretrained weights need their own.

    >>> from cnnlab.data.augment import Rescale
    >>> with_normalisation(Compose([Rescale(), Normalize([0.4], [0.2])]), (0.5,), (0.5,)).transforms[-1]
    Normalize(mean=[0.5], std=[0.5])
    """
    kept = [t for t in pipeline.transforms if not isinstance(t, Normalize)]
    return Compose([*kept, Normalize(mean, std)])
