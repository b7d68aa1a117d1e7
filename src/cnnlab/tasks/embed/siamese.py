"""The course's "face verification as binary classification": a logistic regression on ``|f(a) - f(b)|`` of a
frozen embedder (Taigman et al. 2014, DeepFace), fitted on pairs of the training people and scored on pairs of
people it never saw, next to the plain distance threshold.

>>> _ = torch.manual_seed(0)
>>> vectors = torch.nn.functional.normalize(torch.randn(4, 8).repeat_interleave(5, 0) + 0.1 * torch.randn(20, 8))
>>> labels = torch.arange(4).repeat_interleave(5)
>>> head = fit_siamese_head(vectors, labels)
>>> pair_accuracy(head, vectors, labels) > 0.9
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnlab.models.embed.head import SiameseHead


def _pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    i, j = torch.triu_indices(len(labels), len(labels), 1)
    return i, j, (labels[i] == labels[j]).float()


def fit_siamese_head(vectors: torch.Tensor, labels: torch.Tensor, steps: int = 300, lr: float = 0.1) -> SiameseHead:
    """A :class:`~cnnlab.models.embed.head.SiameseHead` fitted on every pair of ``vectors`` (full-batch Adam,
    same and different pairs weighted to count equally)."""
    i, j, same = _pairs(labels)
    features = (vectors[i] - vectors[j]).abs().detach()
    weight = torch.where(same > 0, 0.5 / same.sum().clamp_min(1), 0.5 / (1 - same).sum().clamp_min(1))
    head = SiameseHead(vectors.shape[1])
    optimiser = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(steps):
        optimiser.zero_grad()
        logits = head.linear(features).squeeze(-1)
        loss = (F.binary_cross_entropy_with_logits(logits, same, reduction="none") * weight).sum()
        loss.backward()
        optimiser.step()
    return head.eval()


def pair_accuracy(head: SiameseHead, vectors: torch.Tensor, labels: torch.Tensor) -> float:
    """The head's balanced accuracy over every pair of ``vectors`` (mean of same-pair and different-pair
    accuracy: different pairs far outnumber same ones)."""
    i, j, same = _pairs(labels)
    with torch.no_grad():
        said = head(vectors[i], vectors[j]) > 0
    right = said == (same > 0)
    return 0.5 * (float(right[same > 0].float().mean()) + float(right[same == 0].float().mean()))
