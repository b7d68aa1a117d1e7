"""The metric-learning losses and miners against hand computations and brute force."""

from __future__ import annotations

import itertools

import pytest
import torch

from cnnlab.core.errors import DataError
from cnnlab.tasks.embed.losses import (
    batch_contrastive_loss,
    batch_hard_soft_margin_loss,
    batch_hard_triplet_loss,
    batch_hard_triplets,
    contrastive_loss,
    pairwise_distances,
    semi_hard_triplet_loss,
    triplet_loss,
)


def test_triplet_loss_equals_the_course_formula_by_hand() -> None:
    anchor = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.5, 0.5]])
    positive = torch.tensor([[0.8, 0.1], [0.0, 0.3], [0.5, 0.4]])
    negative = torch.tensor([[0.9, 0.2], [1.0, 1.0], [0.3, 0.5]])
    # ||A-P||^2 - ||A-N||^2 + 0.2 per row: 0.05 - 0.05 + 0.2 = 0.2; 0.09 - 2 + 0.2 < 0 -> 0; 0.01 - 0.04 + 0.2 = 0.17
    assert float(triplet_loss(anchor, positive, negative)) == pytest.approx(0.2 + 0.0 + 0.17)
    assert float(triplet_loss(anchor, positive, negative, alpha=0.0)) == pytest.approx(0.0)


def test_pairwise_distances_match_cdist_and_have_finite_gradients_at_zero() -> None:
    x = torch.randn(6, 5, requires_grad=True)
    same = torch.cat([x, x[:1]])  # a duplicate row: distance exactly 0
    d = pairwise_distances(same)
    assert torch.allclose(d, torch.cdist(same, same), atol=1e-5)
    d.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_batch_hard_picks_the_known_hardest_positive_and_negative() -> None:
    points = torch.tensor([[0.0], [0.4], [2.0], [1.0], [3.5], [9.0]])
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    positive, negative = batch_hard_triplets(pairwise_distances(points), labels)
    # brute force: for each anchor the farthest same-label row and the nearest other-label row
    for a in range(len(points)):
        same = [p for p in range(len(points)) if p != a and labels[p] == labels[a]]
        other = [n for n in range(len(points)) if labels[n] != labels[a]]
        expected_p = max(same, key=lambda p: abs(points[p] - points[a]).item()) if same else -1
        expected_n = min(other, key=lambda n: abs(points[n] - points[a]).item())
        assert positive[a].item() == expected_p and negative[a].item() == expected_n
    assert positive.tolist()[:3] == [2, 2, 0] and negative.tolist()[:2] == [3, 3]


def test_batch_hard_loss_equals_a_brute_force_mean() -> None:
    torch.manual_seed(0)
    x, labels = torch.randn(12, 4), torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    d = torch.cdist(x, x)
    losses = []
    for a in range(12):
        hardest_p = max(d[a, p] for p in range(12) if p != a and labels[p] == labels[a])
        hardest_n = min(d[a, n] for n in range(12) if labels[n] != labels[a])
        losses.append(torch.relu(hardest_p - hardest_n + 0.3))
    assert float(batch_hard_triplet_loss(x, labels, 0.3)) == pytest.approx(float(torch.stack(losses).mean()), abs=1e-5)


def test_soft_margin_loss_equals_a_brute_force_mean() -> None:
    torch.manual_seed(2)
    x, labels = torch.randn(9, 4), torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 5])  # person 5: no positive, skipped
    d = torch.cdist(x, x)
    losses = []
    for a in range(8):
        hardest_p = max(d[a, p] for p in range(9) if p != a and labels[p] == labels[a])
        hardest_n = min(d[a, n] for n in range(9) if labels[n] != labels[a])
        losses.append(torch.log1p(torch.exp(hardest_p - hardest_n)))
    assert float(batch_hard_soft_margin_loss(x, labels)) == pytest.approx(float(torch.stack(losses).mean()), abs=1e-5)


def test_semi_hard_loss_equals_a_brute_force_over_pairs() -> None:
    torch.manual_seed(1)
    x, labels = torch.randn(10, 3), torch.tensor([0, 0, 1, 1, 1, 2, 2, 3, 3, 3])
    d = torch.cdist(x, x)
    losses = []
    for a, p in itertools.permutations(range(10), 2):
        if labels[a] != labels[p]:
            continue
        negatives = [d[a, n] for n in range(10) if labels[n] != labels[a]]
        farther = [v for v in negatives if v > d[a, p]]
        chosen = min(farther) if farther else max(negatives)
        losses.append(torch.relu(d[a, p] - chosen + 0.2))
    assert float(semi_hard_triplet_loss(x, labels, 0.2)) == pytest.approx(float(torch.stack(losses).mean()), abs=1e-5)


def test_contrastive_loss_by_hand() -> None:
    a, b = torch.tensor([[0.0, 0.0], [0.0, 0.0]]), torch.tensor([[0.3, 0.4], [0.6, 0.8]])  # distances 0.5 and 1.0
    # same pair: 0.5^2 = 0.25; different pair with margin 1.5: (1.5 - 1.0)^2 = 0.25; halved mean = 0.125
    assert float(contrastive_loss(a, b, torch.tensor([True, False]), margin=1.5)) == pytest.approx(0.125)
    x, labels = torch.tensor([[0.0], [0.5], [3.0]]), torch.tensor([0, 0, 1])
    # positives (0,1),(1,0): 0.25 each; negatives all farther than margin 1: 0
    assert float(batch_contrastive_loss(x, labels)) == pytest.approx(0.5 * 0.25)


@pytest.mark.parametrize(
    "loss", [batch_hard_soft_margin_loss, batch_hard_triplet_loss, semi_hard_triplet_loss, batch_contrastive_loss]
)
def test_a_batch_without_pairs_says_what_to_do(loss) -> None:
    with pytest.raises(DataError, match="at least 2 people"):
        loss(torch.randn(3, 2), torch.tensor([0, 1, 2]))  # nobody has a positive
    with pytest.raises(DataError, match="at least 2 people"):
        loss(torch.randn(3, 2), torch.tensor([0, 0, 0]))  # nobody has a negative


@pytest.mark.parametrize("name", ["cnn_small", "lenet5", "resnet20"])
def test_small_zoo_classifiers_are_embedding_backbones(name: str) -> None:
    """`--task embed --model cnn_small` (the demo net) must work like the other zoo classifiers: unit-length
    embeddings, and gradients that reach the backbone's first conv."""
    from cnnlab.models import create_model
    from cnnlab.models.embed.head import EmbeddingNet

    backbone = create_model(name, num_classes=4, in_chans=1)
    net = EmbeddingNet(backbone, dim=8)
    out = net(torch.rand(2, 1, 32, 32))
    assert out.shape == (2, 8) and torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)
    out.sum().backward()
    assert backbone.get_submodule(backbone.first_conv).weight.grad is not None
