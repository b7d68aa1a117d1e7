"""Metric-learning losses: the course's triplet loss, batch-hard and semi-hard triplet mining, and the
contrastive (siamese) loss.

The course's formula (FaceNet, Schroff et al. 2015): for an anchor ``A``, a positive ``P`` (same person) and
a negative ``N`` (another person), ``L = max(||f(A) - f(P)||^2 - ||f(A) - f(N)||^2 + alpha, 0)`` summed over the
batch, with margin ``alpha = 0.2``. Training picks the triplets inside each batch of P people x K images
("online mining"):

- **batch-hard** (Hermans et al. 2017, "In Defense of the Triplet Loss"): for every anchor, its farthest
  positive and its nearest negative in the batch;
- **batch-hard, soft margin** (Hermans et al.'s preferred variant): ``softplus(d(A,P) - d(A,N))`` in place of
  the hinge, so every triplet keeps a gradient (on ORL no better than the hinge within the runs' spread:
  docs/faces.md);
- **semi-hard** (FaceNet): for every anchor-positive pair, a negative farther than the positive but inside
  the margin (``d(A,P) < d(A,N) < d(A,P) + alpha``): the nearest negative farther than the positive; when
  every negative is nearer than the positive, the farthest of them (the rule of TF-Addons'
  ``TripletSemiHardLoss``).

Distances here are squared Euclidean for :func:`triplet_loss` (the course's), and plain Euclidean for the
mined losses (Hermans et al. found the plain distance trains more stably; margin in distance units).

>>> a = torch.tensor([[0.0, 0.0]]); p = torch.tensor([[0.3, 0.0]]); n = torch.tensor([[0.5, 0.0]])
>>> round(float(triplet_loss(a, p, n)), 4)  # 0.09 - 0.25 + 0.2
0.04
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnlab.core.errors import DataError

COURSE_ALPHA = 0.2
"""The course's triplet margin ``alpha``."""


def triplet_loss(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, alpha: float = COURSE_ALPHA
) -> torch.Tensor:
    """The course's triplet loss: ``sum(max(||A-P||^2 - ||A-N||^2 + alpha, 0))`` over the batch rows.

    >>> e = torch.eye(3)
    >>> float(triplet_loss(e[:1], e[:1], e[1:2]))  # positive = anchor, negative at squared distance 2
    0.0
    """
    positive_distance = (anchor - positive).pow(2).sum(-1)
    negative_distance = (anchor - negative).pow(2).sum(-1)
    return F.relu(positive_distance - negative_distance + alpha).sum()


def pairwise_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``(N, N)`` between rows, with a gradient that stays finite at zero distance.

    >>> pairwise_distances(torch.tensor([[0.0, 0.0], [3.0, 4.0]])).tolist()
    [[0.0, 5.0], [5.0, 0.0]]
    """
    squared = (embeddings[:, None, :] - embeddings[None, :, :]).pow(2).sum(-1)
    return squared.clamp_min(1e-12).sqrt() * (squared > 1e-12)


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def _check_batch(positives: torch.Tensor, negatives: torch.Tensor) -> None:
    if not positives.any() or not negatives.any():
        raise DataError(
            "a triplet batch needs at least 2 people and a person with 2 images",
            where="training batch",
            fix="sample batches of P people x K images (K >= 2), see tasks.embed.sampler",
        )


def batch_hard_triplets(distances: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each anchor row: the index of its farthest positive and of its nearest negative (``-1`` when the
    anchor has no positive in the batch).

    >>> d = pairwise_distances(torch.tensor([[0.0], [1.0], [3.0], [1.5]]))
    >>> [t.tolist() for t in batch_hard_triplets(d, torch.tensor([0, 0, 0, 1]))]
    [[2, 2, 0, -1], [3, 3, 3, 1]]
    """
    positives, negatives = _masks(labels)
    hardest_positive = distances.masked_fill(~positives, -1.0).argmax(1)
    hardest_positive[~positives.any(1)] = -1
    hardest_negative = distances.masked_fill(~negatives, float("inf")).argmin(1)
    return hardest_positive, hardest_negative


def batch_hard_triplet_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, margin: float = COURSE_ALPHA
) -> torch.Tensor:
    """Hermans et al.'s batch-hard loss: mean over anchors of ``relu(d(a, hardest p) - d(a, hardest n) + margin)``
    (anchors without a positive in the batch are skipped).

    >>> x = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
    >>> float(batch_hard_triplet_loss(x, torch.tensor([0, 0, 1, 1])))  # every negative is far: no loss
    0.0
    """
    distances = pairwise_distances(embeddings)
    positives, negatives = _masks(labels)
    _check_batch(positives, negatives)
    hardest_positive = distances.masked_fill(~positives, 0.0).amax(1)
    hardest_negative = distances.masked_fill(~negatives, float("inf")).amin(1)
    has_positive = positives.any(1)
    return F.relu(hardest_positive - hardest_negative + margin)[has_positive].mean()


def batch_hard_soft_margin_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """Hermans et al.'s soft-margin batch-hard loss: mean over anchors of ``softplus(d(a, hardest p) - d(a,
    hardest n))``; ``margin`` is unused (the soft margin replaces it; the argument keeps the losses' signature).

    >>> x = torch.tensor([[0.0], [0.0], [5.0], [5.0]])
    >>> round(float(batch_hard_soft_margin_loss(x, torch.tensor([0, 0, 1, 1]))), 4)  # softplus(0 - 5)
    0.0067
    """
    distances = pairwise_distances(embeddings)
    positives, negatives = _masks(labels)
    _check_batch(positives, negatives)
    hardest_positive = distances.masked_fill(~positives, 0.0).amax(1)
    hardest_negative = distances.masked_fill(~negatives, float("inf")).amin(1)
    return F.softplus(hardest_positive - hardest_negative)[positives.any(1)].mean()


def semi_hard_triplet_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, margin: float = COURSE_ALPHA
) -> torch.Tensor:
    """FaceNet's semi-hard loss over every anchor-positive pair in the batch: the negative is the nearest one
    farther than the positive (semi-hard when within the margin); when every negative is nearer than the
    positive, the farthest negative is used (the easiest hard one). Mean over pairs.

    >>> x = torch.tensor([[0.0], [1.0], [1.1], [4.0]])
    >>> round(float(semi_hard_triplet_loss(x, torch.tensor([0, 0, 1, 1]), margin=0.2)), 4)  # (0.1+0+2.0+0.1)/4
    0.55
    """
    distances = pairwise_distances(embeddings)
    positives, negatives = _masks(labels)
    _check_batch(positives, negatives)
    anchor, positive = positives.nonzero(as_tuple=True)
    d_ap = distances[anchor, positive]  # (pairs,)
    d_an = distances[anchor]  # (pairs, N)
    negative = negatives[anchor]
    farther = negative & (d_an > d_ap[:, None])
    semi_hard = d_an.masked_fill(~farther, float("inf")).amin(1)
    fallback = d_an.masked_fill(~negative, float("-inf")).amax(1)
    chosen = torch.where(farther.any(1), semi_hard, fallback)
    return F.relu(d_ap - chosen + margin).mean()


def contrastive_loss(
    first: torch.Tensor, second: torch.Tensor, same: torch.Tensor, margin: float = 1.0
) -> torch.Tensor:
    """The siamese contrastive loss (Hadsell, Chopra & LeCun 2006): ``d^2`` for same pairs,
    ``max(margin - d, 0)^2`` for different pairs, halved and averaged.

    >>> a, b = torch.zeros(2, 2), torch.tensor([[0.0, 0.5], [0.0, 0.5]])
    >>> float(contrastive_loss(a, b, torch.tensor([True, False])))  # (0.25 + 0.25) / 2 / 2
    0.125
    """
    distance = (first - second).pow(2).sum(-1).clamp_min(1e-12).sqrt()
    same = same.to(distance.dtype)
    losses = same * distance.pow(2) + (1 - same) * F.relu(margin - distance).pow(2)
    return 0.5 * losses.mean()


def batch_contrastive_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """:func:`contrastive_loss` over every pair of a batch (positive and negative pairs weighted equally).

    >>> x = torch.tensor([[0.0], [0.0], [2.0]])
    >>> float(batch_contrastive_loss(x, torch.tensor([0, 0, 1])))  # same pair at 0, negatives beyond the margin
    0.0
    """
    distances = pairwise_distances(embeddings)
    positives, negatives = _masks(labels)
    _check_batch(positives, negatives)
    positive_loss = distances[positives].pow(2).mean()
    negative_loss = F.relu(margin - distances[negatives]).pow(2).mean()
    return 0.5 * (positive_loss + negative_loss)
