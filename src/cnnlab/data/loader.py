"""Batches from in-memory tensors: no worker processes, no per-sample Python.

Images stay uint8 until a batch is drawn; ``transform`` turns a uint8 batch into the float
tensor the model sees (and may augment it). Shuffling is seeded per epoch, so a resumed run
sees the same batches as an uninterrupted one.

>>> import torch
>>> loader = TensorLoader(torch.arange(10), torch.arange(10), batch_size=4, shuffle=True, seed=1)
>>> len(loader), [len(x) for x, _ in loader.batches(epoch=0)]
(3, [4, 4, 2])
>>> [x.tolist() for x, _ in loader.batches(epoch=0, start=2)] == [x.tolist() for x, _ in loader.batches(epoch=0)][2:]
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

BatchTransform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
# Sees images and targets together (MixUp, CutMix): returns mixed images and soft targets.
PairTransform = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


class TensorLoader:
    """Iterate ``(inputs, targets)`` batches over two aligned tensors."""

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
    ) -> None:
        if len(inputs) != len(targets):
            raise ValueError(f"inputs and targets differ in length: {len(inputs)} vs {len(targets)}")
        self.inputs, self.targets = inputs, targets
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.transform, self.drop_last, self.mix = transform, drop_last, mix

    def __len__(self) -> int:
        n = len(self.inputs)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of ``epoch`` from batch number ``start`` on (same order every time)."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        n = len(self.inputs)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        for i in range(start, len(self)):
            index = order[i * self.batch_size : (i + 1) * self.batch_size]
            x, y = self.inputs[index], self.targets[index]
            # One generator per batch, derived from (seed, epoch, batch): augmentation is
            # reproducible and unaffected by where a resumed run starts.
            generator = torch.Generator().manual_seed(hash((self.seed, epoch, i)) & 0x7FFFFFFF)
            if self.transform is not None:
                x = self.transform(x, generator)
            if self.mix is not None:
                x, y = self.mix(x, y, generator)
            yield x, y
