"""Batches of P people x K images each: what online triplet mining needs (every anchor has positives and
negatives in its batch).

An epoch is about one pass over the images (``round(N / (P K))`` batches, at least one); the people come
in shuffled order, P at a time, reshuffled each time the list runs out; each person gives K images,
drawn without replacement when they have K or more, else with replacement (a person with 2 images still
gives K rows). People with a single image cannot be anchors of a positive pair: they are left out of
training with a warning by the run (:func:`trainable_people`). Augmentation is drawn per batch from
``(seed, epoch, batch)``, as :class:`~cnnlab.data.loader.TensorLoader` does, so a resumed run sees the
same batches.

>>> labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3])
>>> loader = PeopleBatches(torch.zeros(11, 1, 4, 4, dtype=torch.uint8), labels, people=2, images=2)
>>> batches = [y.tolist() for _, y in loader.batches()]  # round(11 / 4) = 3 batches
>>> [len(b) for b in batches], [len(set(b)) for b in batches], sorted({p for b in batches[:2] for p in b})
([4, 4, 4], [2, 2, 2], [0, 1, 2, 3])
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.data.loader import BatchTransform


def trainable_people(labels: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """``(mask of rows usable for triplets, labels of people with one image)``.

    >>> mask, lone = trainable_people(torch.tensor([0, 0, 1, 2, 2]))
    >>> mask.tolist(), lone
    ([True, True, False, True, True], [1])
    """
    counts = torch.bincount(labels)
    lone = (counts == 1).nonzero().flatten().tolist()
    return counts[labels] >= 2, lone


class PeopleBatches:
    """A :class:`~cnnlab.train.trainer.BatchSource` of ``people`` x ``images`` rows per batch."""

    def __init__(
        self,
        inputs: torch.Tensor,
        labels: torch.Tensor,
        people: int = 16,
        images: int = 4,
        seed: int = 0,
        transform: BatchTransform | None = None,
    ) -> None:
        if people < 2 or images < 2:
            raise ConfigError(
                f"a triplet batch needs >= 2 people x >= 2 images. Received: {people} x {images}",
                where="--people-per-batch / --images-per-person",
                fix="try 16 people x 4 images",
            )
        self.inputs, self.labels = inputs, labels.long()
        self.ids = torch.unique(self.labels)
        if len(self.ids) < 2:
            raise DataError(
                f"triplet training needs at least 2 people with 2+ images; found {len(self.ids)}",
                where="training people",
                fix="add people (one folder per person) with at least 2 images each",
            )
        self.people = min(people, len(self.ids))
        self.images, self.seed, self.transform = images, seed, transform
        self.rows = [(self.labels == person).nonzero().flatten() for person in self.ids.tolist()]

    def __len__(self) -> int:
        return max(1, round(len(self.labels) / self.batch_size))

    @property
    def batch_size(self) -> int:
        return self.people * self.images

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of ``epoch`` from batch number ``start`` on (the same ones every time)."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        picks = [self._pick(person, generator) for person in self._people(generator)]
        for i in range(start, len(self)):
            index = torch.cat(picks[i * self.people : (i + 1) * self.people])
            x, y = self.inputs[index], self.labels[index]
            if self.transform is not None:
                x = self.transform(x, torch.Generator().manual_seed(hash((self.seed, epoch, i)) & 0x7FFFFFFF))
            yield x, y

    def _people(self, generator: torch.Generator) -> list[int]:
        """The people of every batch in turn, P distinct ones per batch, from shuffled rounds of everyone."""
        queue: list[int] = []
        out: list[int] = []
        for _ in range(len(self)):
            batch: list[int] = []
            deferred: list[int] = []
            while len(batch) < self.people:
                if not queue:
                    queue = torch.randperm(len(self.ids), generator=generator).tolist()
                person = queue.pop(0)
                (deferred if person in batch else batch).append(person)
            queue = deferred + queue
            out += batch
        return out

    def _pick(self, person: int, generator: torch.Generator) -> torch.Tensor:
        """K rows of one person: without replacement when they have K images, else with."""
        rows = self.rows[person]
        if len(rows) >= self.images:
            return rows[torch.randperm(len(rows), generator=generator)[: self.images]]
        return rows[torch.randint(len(rows), (self.images,), generator=generator)]
