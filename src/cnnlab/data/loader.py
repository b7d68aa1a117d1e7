"""Batches from in-memory tensors: no worker processes, no per-sample Python.

Images stay uint8 until a batch is drawn; ``transform`` turns a uint8 batch into the float
tensor the model sees (and may augment it). Shuffling is seeded per epoch, so a resumed run
sees the same batches as an uninterrupted one. One loader serves every task: ``target_kind``
says what the targets are, and targets that live in the image's geometry (``"mask"``) are moved
by the same random crop, flip or warp as their image (``transform.pair``).

>>> import torch
>>> loader = TensorLoader(torch.arange(10), torch.arange(10), batch_size=4, shuffle=True, seed=1)
>>> len(loader), [len(x) for x, _ in loader.batches(epoch=0)]
(3, [4, 4, 2])
>>> [x.tolist() for x, _ in loader.batches(epoch=0, start=2)] == [x.tolist() for x, _ in loader.batches(epoch=0)][2:]
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Literal

import torch

from cnnlab.core.errors import ConfigError, DataError

BatchTransform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
# Sees images and targets together (MixUp, CutMix): returns mixed images and soft targets.
PairTransform = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


TargetKind = Literal["label", "mask"]
"""What a loader's targets are: one ``label`` per input (class index or soft vector), or a ``mask``
``(H, W)`` of class indices per image that geometric transforms move with it."""


class TensorLoader:
    """Iterate ``(inputs, targets)`` batches over two aligned tensors.

    ``repeats`` passes over the data make one epoch (several random patches per image on tiny
    segmentation sets); ``target_kind="mask"`` applies ``transform.pair`` to image and mask together
    and yields int64 masks.

    >>> from cnnlab.data.augment import Compose, RandomCrop, Rescale
    >>> images, masks = torch.zeros(5, 1, 8, 8, dtype=torch.uint8), torch.ones(5, 8, 8, dtype=torch.uint8)
    >>> loader = TensorLoader(images, masks, batch_size=4, shuffle=True, repeats=2, target_kind="mask",
    ...                       transform=Compose([RandomCrop(4), Rescale()]))
    >>> len(loader), [tuple(x.shape) for x, _ in loader.batches()][-1], next(loader.batches())[1].dtype
    (3, (2, 1, 4, 4), torch.int64)
    """

    def __init__(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int = 128,
        shuffle: bool = False,
        seed: int = 0,
        transform: BatchTransform | None = None,
        drop_last: bool = False,
        mix: PairTransform | None = None,
        repeats: int = 1,
        target_kind: TargetKind = "label",
    ) -> None:
        if len(inputs) != len(targets):
            raise DataError(f"inputs and targets differ in length: {len(inputs)} vs {len(targets)}", where="loader")
        if repeats < 1:
            raise ConfigError(f"repeats must be >= 1. Received: repeats={repeats}", where="TensorLoader")
        if target_kind not in ("label", "mask"):
            raise ConfigError(f"unknown target kind {target_kind!r}", where="TensorLoader", fix="use label or mask")
        self.inputs, self.targets = inputs, targets
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.transform, self.drop_last, self.mix = transform, drop_last, mix
        self.repeats, self.target_kind = repeats, target_kind

    def __len__(self) -> int:
        n = len(self.inputs) * self.repeats
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of ``epoch`` from batch number ``start`` on (same order every time)."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        n = len(self.inputs)
        order = torch.cat(
            [torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n) for _ in range(self.repeats)]
        )
        for i in range(start, len(self)):
            index = order[i * self.batch_size : (i + 1) * self.batch_size]
            x, y = self.inputs[index], self.targets[index]
            # One generator per batch, derived from (seed, epoch, batch): augmentation is
            # reproducible and unaffected by where a resumed run starts.
            generator = torch.Generator().manual_seed(hash((self.seed, epoch, i)) & 0x7FFFFFFF)
            if self.target_kind == "mask":
                if self.transform is not None:
                    x, y = self.transform.pair(x, y, generator)  # type: ignore[attr-defined]
                yield x, y.long()
                continue
            if self.transform is not None:
                x = self.transform(x, generator)
            if self.mix is not None:
                x, y = self.mix(x, y, generator)
            yield x, y
