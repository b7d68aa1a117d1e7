"""Metrics on tensors (no per-batch host syncs: results stay tensors) and the metric-object protocol."""

from __future__ import annotations

from typing import Any, Protocol

import torch


class Metric(Protocol):
    """A metric over a whole evaluation set: ``reset()``, ``update(outputs, targets)`` per batch, ``result()``.

    The Trainer's ``metrics=`` take these, so a task scores over all predictions (IoU from one confusion
    matrix, mAP over all boxes, ROC over all pairs) without re-writing the evaluation loop.
    """

    def reset(self) -> None: ...
    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None: ...
    def result(self) -> dict[str, float]: ...


def confusion_matrix(targets: torch.Tensor, preds: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts ``cm[true, pred]`` as an int64 ``(num_classes, num_classes)`` tensor.

    >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), 2).tolist()
    [[1, 0], [1, 1]]
    """
    index = targets.long() * num_classes + preds.long()
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Share of rows whose arg-max equals the target, as a 0-d float tensor.

    >>> accuracy(torch.tensor([[2.0, 1.0], [0.0, 3.0]]), torch.tensor([0, 0])).item()
    0.5
    """
    return (logits.argmax(dim=1) == targets).float().mean()


def hard_labels(targets: torch.Tensor) -> torch.Tensor:
    """Class indices from hard labels (N,) or soft ones (N, classes), as MixUp/CutMix make.

    >>> hard_labels(torch.tensor([[0.3, 0.7], [0.9, 0.1]])).tolist(), hard_labels(torch.tensor([1, 0])).tolist()
    ([1, 0], [1, 0])
    """
    return targets.argmax(dim=1) if targets.dim() == 2 and targets.is_floating_point() else targets


def top_k_accuracy(scores: torch.Tensor, targets: torch.Tensor, k: int = 5) -> float:
    """Share of rows whose target is among the ``k`` highest scores (``k`` is capped at the class count).

    >>> top_k_accuracy(torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.3, 0.6]]), torch.tensor([1, 0]), k=2)
    0.5
    """
    k = min(k, scores.shape[1])
    hits = (scores.topk(k, dim=1).indices == targets.long().view(-1, 1)).any(dim=1)
    return float(hits.float().mean())


def per_class_scores(counts: torch.Tensor) -> dict[str, list[float]]:
    """Precision, recall, F1 and support per class from ``counts[true, pred]`` (0 where undefined, as scikit-learn).

    >>> scores = per_class_scores(torch.tensor([[3, 1], [0, 4]]))
    >>> scores["precision"], scores["recall"], scores["support"]
    ([1.0, 0.8], [0.75, 1.0], [4, 4])
    """
    counts = counts.double()
    hits = counts.diagonal()
    predicted, support = counts.sum(dim=0), counts.sum(dim=1)
    precision = torch.where(predicted > 0, hits / predicted.clamp(min=1), 0.0)
    recall = torch.where(support > 0, hits / support.clamp(min=1), 0.0)
    total = precision + recall
    f1 = torch.where(total > 0, 2 * precision * recall / total.clamp(min=1e-12), 0.0)
    return {
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": [int(n) for n in support.tolist()],
    }


def reliability_bins(probs: torch.Tensor, targets: torch.Tensor, n_bins: int = 15) -> dict[str, list[float]]:
    """Bin predictions by confidence (max probability) into ``n_bins`` equal-width bins, right-closed
    like scikit-learn's ``calibration_curve``; per bin: count, mean confidence and accuracy (0 when empty).

    >>> bins = reliability_bins(torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]]), torch.tensor([0, 1, 1]), 2)
    >>> bins["count"], bins["accuracy"]
    ([0, 3], [0.0, 0.6666666666666666])
    """
    confidence, preds = probs.double().max(dim=1)
    correct = (preds == targets.long()).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    index = torch.bucketize(confidence, edges[1:-1])  # value == edge goes to the lower bin: (lo, hi]
    count = torch.bincount(index, minlength=n_bins).double()
    conf_sum = torch.bincount(index, weights=confidence, minlength=n_bins)
    hit_sum = torch.bincount(index, weights=correct, minlength=n_bins)
    filled = count.clamp(min=1)
    return {
        "edges": edges.tolist(),
        "count": [int(n) for n in count.tolist()],
        "confidence": torch.where(count > 0, conf_sum / filled, 0.0).tolist(),
        "accuracy": torch.where(count > 0, hit_sum / filled, 0.0).tolist(),
    }


def expected_calibration_error(probs: torch.Tensor, targets: torch.Tensor, n_bins: int = 15) -> float:
    """ECE: the count-weighted mean gap ``|accuracy - confidence|`` over :func:`reliability_bins`.

    >>> round(expected_calibration_error(torch.tensor([[0.9, 0.1], [0.8, 0.2]]), torch.tensor([0, 1]), 10), 4)
    0.35
    """
    bins = reliability_bins(probs, targets, n_bins)
    total = max(sum(bins["count"]), 1)
    return (
        sum(n * abs(a - c) for n, a, c in zip(bins["count"], bins["accuracy"], bins["confidence"], strict=True)) / total
    )


def most_confused(counts: torch.Tensor, n: int = 10) -> list[tuple[int, int, int]]:
    """The ``n`` largest off-diagonal cells as ``(true, predicted, count)``, largest first (ties: row-major order).

    >>> most_confused(torch.tensor([[5, 2, 0], [4, 3, 1], [0, 0, 9]]), n=2)
    [(1, 0, 4), (0, 1, 2)]
    """
    off = counts.clone().long()
    off.fill_diagonal_(0)
    flat = off.flatten()
    k = min(n, int((flat > 0).sum()))
    order = torch.sort(flat, descending=True, stable=True).indices[:k].tolist()
    size = counts.shape[1]
    return [(i // size, i % size, int(flat[i])) for i in order]


def sample_losses(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each row, ``-log p[target]`` (probabilities clamped at 1e-12), as float64.

    >>> sample_losses(torch.tensor([[0.5, 0.5], [1.0, 0.0]]), torch.tensor([0, 0])).tolist()
    [0.6931471805599453, -0.0]
    """
    picked = probs.double().gather(1, targets.long().view(-1, 1)).squeeze(1)
    return -picked.clamp(min=1e-12).log()


def classification_summary(
    probs: torch.Tensor, targets: torch.Tensor, classes: list[str], k: int = 5, n_bins: int = 15, worst: int = 16
) -> dict[str, Any]:
    """Everything ``cnnlab evaluate`` reports, from class probabilities ``(N, K)`` and targets ``(N,)``:
    accuracy, top-k, loss, per-class precision/recall/F1, confusion counts, most-confused pairs,
    ECE with its reliability bins, and the ``worst`` highest-loss mistakes (index, classes, confidence,
    loss). Plain JSON-ready data.

    >>> probs = torch.tensor([[0.8, 0.2], [0.4, 0.6], [0.7, 0.3]])
    >>> s = classification_summary(probs, torch.tensor([0, 1, 1]), ["a", "b"])
    >>> s["accuracy"], s["confusion"], s["most_confused"]
    (0.6666666666666666, [[1, 0], [1, 1]], [{'true': 'b', 'predicted': 'a', 'count': 1}])
    >>> [(w["index"], w["true"], w["predicted"], round(w["confidence"], 2)) for w in s["worst"]]
    [(2, 'b', 'a', 0.7)]
    """
    preds = probs.argmax(dim=1)
    counts = confusion_matrix(targets, preds, len(classes))
    scores = per_class_scores(counts)
    losses = sample_losses(probs, targets)
    wrong = (preds != targets).nonzero().flatten()
    worst_index = wrong[losses[wrong].argsort(descending=True)[:worst]].tolist()
    return {
        "images": len(targets),
        "accuracy": float((preds == targets).double().mean()),
        "top_k": min(k, len(classes)),
        "top_k_accuracy": top_k_accuracy(probs, targets, k),
        "loss": float(losses.mean()),
        "ece": expected_calibration_error(probs, targets, n_bins),
        "reliability": reliability_bins(probs, targets, n_bins),
        "classes": list(classes),
        "per_class": scores,
        "macro": {key: sum(values) / len(values) for key, values in scores.items() if key != "support"},
        "confusion": counts.tolist(),
        "most_confused": [
            {"true": classes[t], "predicted": classes[p], "count": c} for t, p, c in most_confused(counts)
        ],
        "worst": [
            {
                "index": i,
                "true": classes[int(targets[i])],
                "predicted": classes[int(preds[i])],
                "confidence": float(probs[i, preds[i]]),
                "loss": float(losses[i]),
            }
            for i in worst_index
        ],
    }
