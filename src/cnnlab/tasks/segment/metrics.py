"""Per-pixel scores from one confusion matrix: pixel accuracy, IoU and Dice per class and their means.

>>> import torch
>>> logits = torch.tensor([[[[2.0, -1.0]], [[0.0, 3.0]]]])  # (B=1, K=2, H=1, W=2): predicts [0, 1]
>>> scores = scores_from_confusion(confusion(logits.argmax(1), torch.tensor([[[0, 0]]]), 2), ["bg", "fg"])
>>> scores["acc"], scores["dice_bg"], scores["iou_bg"]
(0.5, 0.6666666666666666, 0.5)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from cnnlab.train.metrics import confusion_matrix


def confusion(preds: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Pixel counts ``cm[true, pred]`` over masks of any shape (int64 ``(K, K)``)."""
    return confusion_matrix(targets.reshape(-1), preds.reshape(-1), num_classes)


def class_key(name: str) -> str:
    """A class name as a metric-key suffix: ``"cell interior"`` -> ``"cell_interior"``."""
    return re.sub(r"\W+", "_", name.strip().lower()).strip("_") or "class"


def scores_from_confusion(counts: torch.Tensor | np.ndarray, class_names: Sequence[str]) -> dict[str, float]:
    """Pixel accuracy, IoU and Dice per class (``iou_<name>``, ``dice_<name>``) and their means.

    A class absent from both truth and prediction has no score (NaN) and is left out of the means.
    """
    cm = torch.as_tensor(counts, dtype=torch.float64)
    true, pred, hit = cm.sum(1), cm.sum(0), cm.diagonal()
    union = true + pred - hit
    iou = torch.where(union > 0, hit / union.clamp(min=1), torch.nan)
    dice = torch.where(true + pred > 0, 2 * hit / (true + pred).clamp(min=1), torch.nan)
    scores = {
        "acc": float(hit.sum() / cm.sum().clamp(min=1)),
        "iou": float(iou.nanmean()),
        "dice": float(dice.nanmean()),
    }
    for k, name in enumerate(class_names):
        scores[f"iou_{class_key(name)}"] = float(iou[k])
        scores[f"dice_{class_key(name)}"] = float(dice[k])
    return scores


def per_image_scores(
    truth: torch.Tensor, preds: torch.Tensor, class_names: Sequence[str], names: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """One :func:`scores_from_confusion` dict per mask pair (``(N, H, W)`` each), with the image name.

    >>> rows = per_image_scores(torch.zeros(2, 2, 2), torch.zeros(2, 2, 2), ["bg", "fg"], ["a.png", "b.png"])
    >>> rows[0]["image"], rows[0]["acc"], rows[0]["dice_bg"], rows[0]["dice_fg"]  # no foreground anywhere: no score
    ('a.png', 1.0, 1.0, nan)
    """
    names = list(names) if names is not None else [str(i) for i in range(len(truth))]
    rows = []
    for name, t, p in zip(names, truth, preds, strict=True):
        rows.append({"image": name} | scores_from_confusion(confusion(p, t, len(class_names)), class_names))
    return rows


def fit_target(targets: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Centre-crop ``(B, H, W)`` targets to the logits' size (unpadded nets return smaller maps)."""
    height, width = logits.shape[-2:]
    top, left = (targets.shape[-2] - height) // 2, (targets.shape[-1] - width) // 2
    return targets[..., top : top + height, left : left + width]


class ConfusionMetric:
    """Pixel accuracy, IoU and Dice over a whole evaluation set, from one confusion matrix
    (a :class:`~cnnlab.train.metrics.Metric`: the Trainer resets, updates and reads it).

    >>> metric = ConfusionMetric(["bg", "fg"])
    >>> metric.update(torch.tensor([[[[2.0, -1.0]], [[0.0, 3.0]]]]), torch.tensor([[[0, 1]]]))
    >>> metric.result()["acc"], metric.result()["dice_fg"]
    (1.0, 1.0)
    """

    def __init__(self, class_names: Sequence[str]) -> None:
        self.class_names = list(class_names)
        self.reset()

    def reset(self) -> None:
        k = len(self.class_names)
        self.counts = torch.zeros(k, k, dtype=torch.int64)

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        """``outputs`` logits ``(B, K, H, W)``, ``targets`` class indices ``(B, H, W)``."""
        self.counts += confusion(outputs.argmax(1), targets, len(self.class_names))

    def result(self) -> dict[str, float]:
        return scores_from_confusion(self.counts, self.class_names)
