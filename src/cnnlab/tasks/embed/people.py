"""Splitting a folder of people: by person for verification (people the model never saw), and by image
for identification (new photos of people it trained on).

>>> labels = torch.tensor([0] * 4 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 1)
>>> split = split_people(labels, people_fraction=0.25, probe_fraction=0.5, seed=0)
>>> len(split.held_people), len(split.train) + len(split.probe) + len(split.held)  # at least 2 people held
(2, 17)
>>> sorted(torch.bincount(labels[split.probe]).tolist())[-1]  # 2 of each training person's 4 images
2
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cnnlab.core.errors import DataError


@dataclass(frozen=True)
class PeopleSplit:
    """Row indices: ``train`` (gallery of training people), ``probe`` (their held-out images), ``held``
    (every image of the held-out people); ``held_people`` are those people's labels."""

    train: torch.Tensor
    probe: torch.Tensor
    held: torch.Tensor
    held_people: list[int]

    def describe(self, names: list[str]) -> str:
        """One line for the log."""
        return (
            f"split by person: {len(self.held_people)} people held out for verification "
            f"({len(self.held)} images, never trained on); by image: {len(self.train)} training images and "
            f"{len(self.probe)} held-out images of the other {len(names) - len(self.held_people)} people "
            "(identification)"
        )


def split_people(
    labels: torch.Tensor, people_fraction: float = 0.25, probe_fraction: float = 0.5, seed: int = 0
) -> PeopleSplit:
    """Hold out ``people_fraction`` of the people (at least 2, so their pairs exist; none when there are fewer
    than 4 people), then ``probe_fraction`` of each remaining person's images (a person keeps at least 2 training
    images; one with fewer than 4 images gives no probe)."""
    people = torch.unique(labels)
    if len(people) < 2:
        raise DataError(
            f"found {len(people)} person folder(s); an embedder needs at least 2 people",
            fix="put each person's images in their own folder: data/<person>/<image>",
        )
    generator = torch.Generator().manual_seed(seed)
    order = people[torch.randperm(len(people), generator=generator)]
    n_held = 0  # verification needs 2 held-out people and training 2 others: fewer than 4, train on all
    if people_fraction > 0 and len(people) >= 4:
        n_held = min(max(2, round(len(people) * people_fraction)), len(people) - 2)
    held_people = sorted(order[:n_held].tolist())
    train, probe, held = [], [], []
    for person in people.tolist():
        rows = (labels == person).nonzero().flatten()
        rows = rows[torch.randperm(len(rows), generator=generator)]
        if person in held_people:
            held.append(rows)
            continue
        n_probe = int(len(rows) * probe_fraction) if len(rows) >= 4 else 0
        probe.append(rows[:n_probe])
        train.append(rows[n_probe:])
    return PeopleSplit(_rows(train), _rows(probe), _rows(held), held_people)


def _rows(parts: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat(parts).sort().values if parts else torch.zeros(0, dtype=torch.long)
