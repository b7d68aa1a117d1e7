"""Batches from in-memory tensors: no worker processes, no per-sample Python.

Images stay uint8 until a batch is drawn; ``transform`` turns a uint8 batch into the float
tensor the model sees (and may augment it). Shuffling is seeded per epoch, so a resumed run
sees the same batches as an uninterrupted one. One loader serves every task: ``target_kind``
says what the targets are, and targets that live in the image's geometry (``"mask"``, ``"boxes"``)
are moved by the same random crop, flip or warp as their image (``transform.pair`` /
``transform.joint``).

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
from cnnlab.data.augment import clip_box_targets

BatchTransform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
# Sees images and targets together (MixUp, CutMix): returns mixed images and soft targets.
PairTransform = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


TargetKind = Literal["label", "mask", "boxes"]
"""What a loader's targets are: one ``label`` per input (class index or soft vector), a ``mask``
``(H, W)`` of class indices per image, or ``boxes`` ``(M, 5)`` rows ``[class, x1, y1, x2, y2]`` per image
(pixels; class -1 pads); geometric transforms move masks and boxes with their image."""


class TensorLoader:
    """Iterate ``(inputs, targets)`` batches over two aligned tensors.

    ``repeats`` passes over the data make one epoch (several random patches per image on tiny
    segmentation sets); ``target_kind="mask"`` applies ``transform.pair`` to image and mask together
    and yields int64 masks; ``target_kind="boxes"`` moves the boxes with ``transform.joint``, then
    clips them to the transformed image (:func:`~cnnlab.data.augment.clip_box_targets`: rows left too
    small become class -1) and yields float32 targets ``(B, M, 5)``.

    >>> from cnnlab.data.augment import Compose, RandomCrop, Rescale
    >>> images, masks = torch.zeros(5, 1, 8, 8, dtype=torch.uint8), torch.ones(5, 8, 8, dtype=torch.uint8)
    >>> loader = TensorLoader(images, masks, batch_size=4, shuffle=True, repeats=2, target_kind="mask",
    ...                       transform=Compose([RandomCrop(4), Rescale()]))
    >>> len(loader), [tuple(x.shape) for x, _ in loader.batches()][-1], next(loader.batches())[1].dtype
    (3, (2, 1, 4, 4), torch.int64)
    >>> from cnnlab.data.augment import HorizontalFlip
    >>> boxes = torch.tensor([[[0.0, 0, 2, 3, 6], [-1.0, 0, 0, 0, 0]]]).repeat(5, 1, 1)  # (5, M=2, 5)
    >>> flip = Compose([HorizontalFlip(p=1.0)])
    >>> loader = TensorLoader(images, boxes, batch_size=5, target_kind="boxes", transform=flip)
    >>> next(loader.batches())[1][0].tolist()  # x1' = 8 - x2, x2' = 8 - x1; the padding row stays padding
    [[0.0, 5.0, 2.0, 8.0, 6.0], [-1.0, 0.0, 0.0, 0.0, 0.0]]
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
        if target_kind not in ("label", "mask", "boxes"):
            raise ConfigError(
                f"unknown target kind {target_kind!r}", where="TensorLoader", fix="use label, mask or boxes"
            )
        if target_kind == "boxes" and (targets.ndim != 3 or targets.shape[-1] != 5):
            raise DataError(
                f"box targets must be (N, M, 5) rows [class, x1, y1, x2, y2], got {tuple(targets.shape)}",
                where="TensorLoader",
                fix="pad each image's boxes to M rows with class -1 (BoxDataset.to_tensors does)",
            )
        if target_kind == "boxes" and mix is not None:
            raise ConfigError("MixUp / CutMix cannot mix box targets", where="TensorLoader", fix="leave mix out")
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
            if self.target_kind == "boxes":
                y = y.float()
                if self.transform is not None:
                    x, coords = self.transform.joint(x, y[..., 1:], "boxes", generator)  # type: ignore[attr-defined]
                    y = clip_box_targets(torch.cat([y[..., :1], coords], -1), x.shape[-2], x.shape[-1])
                yield x, y
                continue
            if self.transform is not None:
                x = self.transform(x, generator)
            if self.mix is not None:
                x, y = self.mix(x, y, generator)
            yield x, y
