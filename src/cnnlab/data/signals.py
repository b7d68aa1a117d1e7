"""Labelled non-image samples (time series, audio, clips, volumes) in one container: :class:`SignalSet`.

Every reader of series, WAV folders, clips and volumes returns a :class:`SignalSet`: float32 inputs channels
first (``(N, C, T)`` for series and audio, ``(N, C, D, H, W)`` for clips and volumes), int64 labels, the class
names, one name per sample (file or row), and optionally who each sample comes from (``groups``: the speaker
or subject, for splits that keep a person out of training) and its recording index (``indices``: FSDD's
files 0-4 are its test split).

>>> import torch
>>> data = SignalSet(torch.zeros(6, 1, 10), torch.tensor([0, 0, 0, 1, 1, 1]), ["a", "b"],
...                  [f"s{i}" for i in range(6)], groups=["x", "y", "z", "x", "y", "z"])
>>> data.kind, data.sample_shape, len(data)
('series', (1, 10), 6)
>>> rest, held = data.split_groups(["z"])
>>> len(rest), held.names
(4, ['s2', 's5'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import torch

from cnnlab.core.errors import DataError

SignalKind = Literal["series", "audio", "clip", "volume"]
"""What the samples are: ``series`` and ``audio`` are ``(C, T)``, ``clip`` (frames over time) and ``volume``
(a 3-D scan) are ``(C, D, H, W)``."""

RANK_OF: dict[str, int] = {"series": 1, "audio": 1, "clip": 3, "volume": 3}
"""Spatial rank of each kind: 1 for Conv1D data, 3 for Conv3D data."""


@dataclass
class SignalSet:
    """Decoded samples: ``x`` float32 channels first, ``y`` (N,) int64 class indices (or (N, D, H, W) int64
    label volumes for volume segmentation), ``classes``, ``names`` (one per sample), optional ``groups`` (who
    each sample is from), ``indices`` (recording number per sample), ``rate`` (samples per second for audio),
    and ``meta`` (how the samples were made, e.g. the audio front-end, so prediction can repeat it)."""

    x: torch.Tensor
    y: torch.Tensor
    classes: list[str]
    names: list[str]
    kind: SignalKind = "series"
    groups: list[str] | None = None
    indices: list[int] | None = None
    rate: float | None = None
    meta: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rank = RANK_OF.get(self.kind)
        if rank is None:
            raise DataError(f"unknown signal kind {self.kind!r}", where="SignalSet", fix="use " + ", ".join(RANK_OF))
        if self.x.ndim != rank + 2:
            want = "(N, C, T)" if rank == 1 else "(N, C, D, H, W)"
            raise DataError(f"{self.kind} samples must be {want}, got {tuple(self.x.shape)}", where="SignalSet")
        for label, values in (("y", self.y), ("names", self.names), ("groups", self.groups), ("indices", self.indices)):
            if values is not None and len(values) != len(self.x):
                raise DataError(f"{label} has {len(values)} entries for {len(self.x)} samples", where="SignalSet")

    def __len__(self) -> int:
        return len(self.x)

    @classmethod
    def from_labels(
        cls, x: torch.Tensor, labels: Sequence[int], classes: Sequence[str], names: list[str], **fields: object
    ) -> SignalSet:
        """A set whose class list keeps only the classes some sample has (class folders left empty after skipping
        unreadable files drop out), labels renumbered to match.

        >>> SignalSet.from_labels(torch.zeros(2, 1, 3), [2, 0], ["a", "b", "c"], ["x", "y"]).classes
        ['a', 'c']
        """
        used = sorted(set(labels))
        remap = {old: new for new, old in enumerate(used)}
        y = torch.tensor([remap[label] for label in labels], dtype=torch.long)
        return cls(x, y, [classes[i] for i in used], names, **fields)  # type: ignore[arg-type]

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """One sample's shape, channels first: ``(C, T)`` or ``(C, D, H, W)``."""
        return tuple(self.x.shape[1:])

    @property
    def rank(self) -> int:
        """1 for series and audio (Conv1D), 3 for clips and volumes (Conv3D)."""
        return RANK_OF[self.kind]

    def subset(self, index: torch.Tensor | Sequence[int]) -> SignalSet:
        """The samples at ``index``, in that order."""
        index = torch.as_tensor(index, dtype=torch.long)
        rows = index.tolist()
        return replace(
            self,
            x=self.x[index],
            y=self.y[index],
            names=[self.names[i] for i in rows],
            groups=None if self.groups is None else [self.groups[i] for i in rows],
            indices=None if self.indices is None else [self.indices[i] for i in rows],
        )

    def class_counts(self) -> dict[str, int]:
        """Samples per class."""
        counts = torch.bincount(self.y.reshape(-1), minlength=len(self.classes)).tolist()
        return dict(zip(self.classes, counts, strict=False))

    def split(self, fraction: float, seed: int = 0) -> tuple[SignalSet, SignalSet]:
        """``(rest, held_out)`` with ``fraction`` of every class held out (stratified, seeded)."""
        from cnnlab.data.datasets import stratified_split

        rest, held = stratified_split(self.y if self.y.ndim == 1 else torch.zeros(len(self)), fraction, seed)
        return self.subset(rest), self.subset(held)

    def split_groups(self, held_groups: Sequence[str]) -> tuple[SignalSet, SignalSet]:
        """``(rest, held_out)``: every sample of the ``held_groups`` (speakers, subjects) held out."""
        if self.groups is None:
            raise DataError(
                "these samples say nothing about who they come from",
                where="split by group",
                fix="name files <label>_<speaker>_<n>.wav, or split by class instead",
            )
        unknown = sorted(set(held_groups) - set(self.groups))
        if unknown:
            raise DataError(f"no samples from {', '.join(unknown)}", where="split by group", fix="pick groups present")
        held = set(held_groups)
        mask = torch.tensor([g in held for g in self.groups])
        if mask.all():
            raise DataError("holding out every group leaves nothing to train on", where="split by group")
        return self.subset(torch.nonzero(~mask).flatten()), self.subset(torch.nonzero(mask).flatten())

    def split_indices(self, held_indices: Sequence[int]) -> tuple[SignalSet, SignalSet]:
        """``(rest, held_out)``: samples whose recording index is in ``held_indices`` held out (FSDD: 0-4)."""
        if self.indices is None:
            raise DataError(
                "these samples carry no recording index",
                where="split by index",
                fix="name files <label>_<speaker>_<index>.wav",
            )
        held = set(held_indices)
        mask = torch.tensor([i in held for i in self.indices])
        if not mask.any() or mask.all():
            side = "nothing" if not mask.any() else "everything"
            raise DataError(f"indices {sorted(held)} hold out {side}", where="split by index")
        return self.subset(torch.nonzero(~mask).flatten()), self.subset(torch.nonzero(mask).flatten())
