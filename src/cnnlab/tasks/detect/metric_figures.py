"""Pictures of detection scores: precision-recall curves per class (VOC all-point AP@0.5 in the legend), F1
over the score threshold, and the detection confusion matrix with its background row and column.

Every function takes numbers (never a model), draws on a pyplot-free Figure and writes the PNG atomically
through :func:`cnnlab.report.figures.save_figure`; it returns the path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from cnnlab.core.errors import ConfigError
from cnnlab.report.figures import save_figure, subplots
from cnnlab.report.plots import plot_confusion_matrix
from cnnlab.tasks.detect.metrics import DetectionScores


def plot_pr_curves(scores: DetectionScores, path: str | Path) -> Path:
    """One precision-recall curve per class at IoU 0.5 (VOC matching), its all-point AP in the legend.

    >>> import tempfile, pathlib, torch
    >>> from cnnlab.tasks.detect.metrics import evaluate_detections
    >>> gt = [{"boxes": torch.tensor([[0.0, 0.0, 9.0, 9.0]]), "labels": torch.tensor([0])}]
    >>> pred = [{"boxes": gt[0]["boxes"], "scores": torch.tensor([0.5]), "labels": torch.tensor([0])}]
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "pr.png"
    >>> plot_pr_curves(evaluate_detections(pred, gt, ["RBC"]), out).stat().st_size > 1000
    True
    """
    fig, ax = subplots(figsize=(6.4, 4.8))
    for c in scores.classes:
        if c.num_gt == 0:
            ax.plot([], [], label=f"{c.name}: no ground truth")
            continue
        recall = np.concatenate(([0.0], c.recall))
        precision = np.concatenate(([c.precision[0] if len(c.precision) else 0.0], c.precision))
        ax.plot(recall, precision, linewidth=1.5, label=f"{c.name}: {c.voc_ap50:.3f}")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.02),
        xlabel="recall",
        ylabel="precision",
        title=f"Precision-recall at IoU 0.5 (mean {_fmt(scores.voc_map50)})",
    )
    ax.grid(alpha=0.3)
    ax.legend(title="VOC all-point AP@0.5", loc="lower left")
    return save_figure(fig, path)


def plot_f1_curve(scores: DetectionScores, path: str | Path) -> Path:
    """F1 at IoU 0.5 against the score threshold, one curve per class, the best threshold marked.

    >>> import tempfile, pathlib, torch
    >>> from cnnlab.tasks.detect.metrics import evaluate_detections
    >>> gt = [{"boxes": torch.tensor([[0.0, 0.0, 9.0, 9.0]]), "labels": torch.tensor([0])}]
    >>> pred = [{"boxes": gt[0]["boxes"], "scores": torch.tensor([0.5]), "labels": torch.tensor([0])}]
    >>> plot_f1_curve(evaluate_detections(pred, gt, ["RBC"]), pathlib.Path(tempfile.mkdtemp()) / "f1.png").name
    'f1.png'
    """
    fig, ax = subplots(figsize=(6.4, 4.8))
    for c in scores.classes:
        if c.num_gt == 0 or not len(c.thresholds):
            ax.plot([], [], label=f"{c.name}: no curve")
            continue
        total = c.precision + c.recall
        f1 = np.where(total > 0, 2 * c.precision * c.recall / np.where(total > 0, total, 1.0), 0.0)
        (line,) = ax.plot(c.thresholds, f1, linewidth=1.5)
        line.set_label(f"{c.name}: {c.best_f1:.3f} at score {c.best_f1_threshold:.2f}")
        ax.plot([c.best_f1_threshold], [c.best_f1], "o", color=line.get_color())
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="score threshold", ylabel="F1", title="F1 at IoU 0.5")
    ax.grid(alpha=0.3)
    ax.legend(title="best F1", loc="lower left")
    return save_figure(fig, path)


def plot_confusion(
    matrix: torch.Tensor | np.ndarray,
    class_names: Sequence[str],
    path: str | Path,
    title: str = "Detection confusion",
) -> Path:
    """Heatmap of :func:`~cnnlab.tasks.detect.metrics.detection_confusion`'s ``cm[true, pred]`` with the
    background row (predictions where there is nothing) and column (boxes missed); text = counts, colour =
    share of the row.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "cm.png"
    >>> plot_confusion(np.array([[5, 1, 2], [0, 4, 1], [3, 0, 0]]), ["RBC", "WBC"], out).stat().st_size > 1000
    True
    """
    counts = np.asarray(matrix, dtype=np.int64)
    labels = [*class_names, "background"]
    if counts.shape != (len(labels), len(labels)):
        raise ConfigError(
            f"a confusion matrix of shape {counts.shape} for {len(class_names)} classes",
            where="plot_confusion",
            fix=f"pass the ({len(labels)}, {len(labels)}) matrix from detection_confusion (K classes + background)",
        )
    axes = ("true (background = nothing there)", "predicted (background = box missed)")
    return plot_confusion_matrix(counts, labels, path, title, axes=axes, background=True)


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"
