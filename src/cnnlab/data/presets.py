"""Named augmentation recipes; the CLI's ``--preset`` choices come from :data:`PRESETS`.

A preset is a function ``(train_images | None) -> Compose``; only recipes that learn from the
data (AlexNet's PCA colour) need the training images.

>>> len(PRESETS.names()), sorted(PRESETS.names())[:5]
(11, ['alexnet', 'cifar', 'cifar-cutout', 'fashion', 'fashion-cutout'])
>>> PRESETS.get("cifar")(None)(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)).shape
torch.Size([2, 3, 32, 32])
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from cnnlab.core.constants import IMAGENET_MEAN, IMAGENET_STD
from cnnlab.core.errors import ConfigError
from cnnlab.core.registry import Registry
from cnnlab.data.augment import (
    ColorJitter,
    Compose,
    Cutout,
    HorizontalFlip,
    Normalize,
    PCAColor,
    RandomAffine,
    RandomCrop,
    RandomResizedCrop,
    Rescale,
    VerticalFlip,
    from_keras,
)

Preset = Callable[[torch.Tensor | None], Compose]

PRESETS: Registry[Preset] = Registry("augmentation preset")


@PRESETS.register("none")
def _none(images: torch.Tensor | None) -> Compose:
    """No augmentation: uint8 -> float in [0, 1]."""
    return Compose([Rescale()])


@PRESETS.register("mnist")
def _mnist(images: torch.Tensor | None) -> Compose:
    """28x28 digits/clothes: rotate ±10°, shift ±10%, zoom 0.9-1.1 (no flips: a flipped 2 is not a 2)."""
    return Compose([Rescale(), RandomAffine(degrees=10, translate=(0.1, 0.1), zoom=(0.9, 1.1))])


@PRESETS.register("fashion")
def _fashion(images: torch.Tensor | None) -> Compose:
    """28x28 clothes: pad 2 (zeros, the background), random 28x28 crop, horizontal flip (a mirrored shirt)."""
    return Compose([RandomCrop(padding=2), HorizontalFlip(), Rescale()])


@PRESETS.register("fashion-cutout")
def _fashion_cutout(images: torch.Tensor | None) -> Compose:
    """The fashion recipe plus an 8x8 cutout, as Page's 24-epoch ResNet-9 CIFAR recipe (longer runs)."""
    return Compose([RandomCrop(padding=2), HorizontalFlip(), Cutout(8), Rescale()])


@PRESETS.register("cifar")
def _cifar(images: torch.Tensor | None) -> Compose:
    """32x32 (He et al. 2016): pad 4 (reflect), random 32x32 crop, horizontal flip."""
    return Compose([RandomCrop(padding=4, pad_mode="reflect"), HorizontalFlip(), Rescale()])


@PRESETS.register("photos")
def _photos(images: torch.Tensor | None) -> Compose:
    """Colour photos of any size: the cifar recipe scaled to the image (reflect-pad 1/8 of the side, random
    crop back, horizontal flip). What ``--aug auto`` picks for colour class folders."""
    side = min(images.shape[-2:]) if images is not None else 32
    return Compose([RandomCrop(padding=max(1, side // 8), pad_mode="reflect"), HorizontalFlip(), Rescale()])


@PRESETS.register("cifar-cutout")
def _cifar_cutout(images: torch.Tensor | None) -> Compose:
    """The cifar recipe plus a 16x16 cutout (DeVries & Taylor 2017)."""
    return Compose([RandomCrop(padding=4, pad_mode="reflect"), HorizontalFlip(), Cutout(16), Rescale()])


@PRESETS.register("imagenet")
def _imagenet(images: torch.Tensor | None) -> Compose:
    """224x224 (Inception/ResNet): random resized crop, flip, colour jitter 0.4, ImageNet normalisation."""
    return Compose(
        [
            Rescale(),  # float from here on: no uint8 round trip between steps
            RandomResizedCrop(224),
            HorizontalFlip(),
            ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4),
            Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


@PRESETS.register("alexnet")
def _alexnet(images: torch.Tensor | None) -> Compose:
    """224x224 (Krizhevsky et al. 2012): random resized crop, flip, PCA colour fitted on ``images``."""
    if images is None or images.shape[1] != 3:
        raise ConfigError("the alexnet preset needs RGB training images to fit PCA colour", where="alexnet")
    return Compose([Rescale(), RandomResizedCrop(224), HorizontalFlip(), PCAColor.fit(images)])


@PRESETS.register("keras-course")
def _keras_course(images: torch.Tensor | None) -> Compose:
    """Chollet's ImageDataGenerator recipe (Deep Learning with Python, cats vs dogs), Keras meanings."""
    return from_keras(
        rotation_range=40,
        width_shift_range=0.2,
        height_shift_range=0.2,
        shear_range=0.2,
        zoom_range=0.2,
        horizontal_flip=True,
        fill_mode="nearest",
        rescale=1 / 255,
    )


@PRESETS.register("segmentation")
def _segmentation(images: torch.Tensor | None) -> Compose:
    """For image/mask pairs (e.g. EM slices): flips, rotate ±15°, shift ±5%, zoom 0.9-1.1, reflect fill."""
    affine = RandomAffine(degrees=15, translate=(0.05, 0.05), zoom=(0.9, 1.1), fill="reflect")
    return Compose([Rescale(), HorizontalFlip(), VerticalFlip(), affine])
