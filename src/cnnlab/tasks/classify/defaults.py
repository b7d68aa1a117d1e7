"""Training defaults chosen from the data, for the settings a user left open (``--aug auto``, no ``--epochs``,
no ``--batch-size``). Each choice comes with the reason the run log and the console print.

Why these rules (measured on a 600-image, 4-class folder of shapes, issue 19): resnet20 with the round-1
defaults (no augmentation, 10-15 epochs of batch 128: under 100 optimiser steps) reached 64% validation
accuracy while fitting the training set; with flips and crops and 30 epochs it reached 91.5%. Small data
needs augmentation and more passes; large data is well served by the round-1 numbers.

- augmentation: grey images get small rotations, shifts and zooms (no flips: a mirrored digit is another
  digit); colour images get a reflect-padded random crop (1/8 of the side) and a horizontal flip, the
  CIFAR recipe at any size.
- epochs: enough passes to show the model about 20,000 images, at least 10 (the round-1 default) and at
  most 40.
- batch size: at most 128 and at most a sixteenth of the training images (a power of two, at least 8),
  so a small set still gives several optimiser steps per epoch.
- image size, when the images of a folder differ in size and no ``--img-size`` is given: the median
  shorter side, rounded to a multiple of 8, within 16 .. 224 (read from the file headers, before decoding).

>>> choose_epochs(540), choose_epochs(60_000), choose_batch_size(540), choose_batch_size(60_000)
(38, 10, 32, 128)
>>> choose_augmentation(channels=1), choose_augmentation(channels=3)
('mnist', 'photos')
"""

from __future__ import annotations

import math

from cnnlab.core.config import replace
from cnnlab.data.image_sizes import size_for_folder
from cnnlab.data.named import resolve_source
from cnnlab.tasks.classify.config import RunConfig

SAMPLES_TO_SEE = 20_000
EPOCH_RANGE = (10, 40)
MAX_BATCH = 128


def choose_augmentation(channels: int) -> str:
    """The augmentation preset for images with ``channels`` channels (see the module docstring)."""
    return "mnist" if channels == 1 else "photos"


def choose_epochs(train_images: int) -> int:
    """Passes over ``train_images`` that show the model about :data:`SAMPLES_TO_SEE` images, within
    :data:`EPOCH_RANGE`."""
    low, high = EPOCH_RANGE
    return max(low, min(high, math.ceil(SAMPLES_TO_SEE / max(train_images, 1))))


def choose_batch_size(train_images: int) -> int:
    """The largest power of two <= ``train_images / 16`` within 8 .. :data:`MAX_BATCH`."""
    return max(8, min(MAX_BATCH, 2 ** int(math.log2(max(train_images // 16, 1)))))


def image_size_from_files(config: RunConfig) -> tuple[RunConfig, list[str]]:
    """``config`` with ``data.img_size`` chosen when a folder's images differ in size and none was given."""
    if config.data.img_size is not None:
        return config, []
    path, _ = resolve_source(config.data.source, config.data.data_dir)
    if not path.is_dir():
        return config, []
    chosen = size_for_folder(path)
    if chosen is None:
        return config, []
    side, note = chosen
    return replace(config, data=replace(config.data, img_size=side)), [note]


def choose_defaults(
    config: RunConfig, train_images: int, channels: int, transfer: bool = False
) -> tuple[RunConfig, list[str]]:
    """``config`` with its open settings filled from the data, and one line per choice saying why.

    Transfer runs keep the measured transfer recipe's settings (no augmentation, 10 epochs, batch 128:
    docs/transfer.md), which pretrained features need far fewer steps than training from scratch.
    """
    notes = []
    data, train = config.data, config.train
    if transfer:
        data = replace(data, aug="none") if data.aug == "auto" else data
        epochs, batch_size = train.epochs or 10, train.batch_size or MAX_BATCH
        return replace(config, data=data, train=replace(train, epochs=epochs, batch_size=batch_size)), []
    if data.aug == "auto":
        data = replace(data, aug=choose_augmentation(channels))
        kind = "grey" if channels == 1 else "colour"
        notes.append(f"augmentation '{data.aug}' for {kind} images (--aug auto; --aug none switches it off)")
    if train.batch_size is None:
        train = replace(train, batch_size=choose_batch_size(train_images))
        notes.append(f"batch size {train.batch_size} for {train_images:,} training images (--batch-size sets it)")
    if train.epochs is None:
        train = replace(train, epochs=choose_epochs(train_images))
        notes.append(
            f"{train.epochs} epochs: about {SAMPLES_TO_SEE:,} images seen from {train_images:,} (--epochs sets it)"
        )
    return replace(config, data=data, train=train), notes
