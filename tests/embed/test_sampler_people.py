"""P x K batches and the person / image split."""

from __future__ import annotations

import pytest
import torch

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.tasks.embed.people import split_people
from cnnlab.tasks.embed.sampler import PeopleBatches, trainable_people


def test_batches_are_p_people_by_k_images_and_nobody_is_missed() -> None:
    labels = torch.arange(13).repeat_interleave(torch.tensor([2, 3, 4, 5, 6, 7, 8, 2, 3, 4, 5, 6, 7]))
    loader = PeopleBatches(torch.zeros(len(labels), 1, 4, 4, dtype=torch.uint8), labels, people=4, images=3)
    seen = set()
    for epoch in range(3):
        batches = list(loader.batches(epoch))
        assert len(batches) == len(loader) == round(len(labels) / 12)
        for _, y in batches:
            counts = torch.bincount(y)
            assert len(y) == 12 and sorted(counts[counts > 0].tolist()) == [3, 3, 3, 3]  # P=4 x K=3
            seen |= set(y.tolist())
    assert seen == set(range(13))


def test_batches_repeat_exactly_and_resume_mid_epoch() -> None:
    labels = torch.arange(6).repeat_interleave(4)
    images = torch.arange(24, dtype=torch.uint8).reshape(24, 1, 1, 1)
    loader = PeopleBatches(images, labels, people=2, images=2, seed=3)
    full = [x.flatten().tolist() for x, _ in loader.batches(epoch=1)]
    assert full == [x.flatten().tolist() for x, _ in loader.batches(epoch=1)]
    assert full[2:] == [x.flatten().tolist() for x, _ in loader.batches(epoch=1, start=2)]


def test_sampler_refuses_what_cannot_make_triplets() -> None:
    with pytest.raises(ConfigError, match="2 people x >= 2 images"):
        PeopleBatches(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 0, 1, 1]), people=2, images=1)
    with pytest.raises(DataError, match="at least 2 people"):
        PeopleBatches(torch.zeros(3, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 0, 0]))


def test_a_person_with_one_image_is_left_out_of_mining() -> None:
    mask, lone = trainable_people(torch.tensor([0, 0, 1, 2, 2, 2]))
    assert mask.tolist() == [True, True, False, True, True, True] and lone == [1]


def test_split_is_by_person_for_verification_and_by_image_for_identification() -> None:
    labels = torch.arange(40).repeat_interleave(10)
    split = split_people(labels, people_fraction=0.25, probe_fraction=0.5, seed=0)
    held = set(split.held_people)
    assert len(held) == 10
    assert set(labels[split.held].tolist()) == held  # every image of a held-out person, and only theirs
    assert not held & set(labels[split.train].tolist()) and not held & set(labels[split.probe].tolist())
    assert torch.bincount(labels[split.train])[sorted(set(range(40)) - held)].tolist() == [5] * 30
    rows = torch.cat([split.train, split.probe, split.held]).sort().values
    assert rows.tolist() == list(range(400))  # nothing lost, nothing twice
    other = split_people(labels, 0.25, 0.5, seed=1)
    assert set(other.held_people) != held  # the seed decides


def test_split_of_tiny_folders() -> None:
    with pytest.raises(DataError, match="at least 2 people"):
        split_people(torch.tensor([0, 0, 0]))
    three = split_people(torch.tensor([0, 0, 1, 1, 2, 2]), 0.25, 0.5)
    assert three.held_people == [] and len(three.probe) == 0  # 3 people: none held; < 4 images: no probe
    four = split_people(torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]), 0.1, 0.5)
    assert len(four.held_people) == 2  # at least 2, so that verification has pairs of both kinds
