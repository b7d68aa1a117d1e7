"""The evaluation files of a run folder, and where things ran: written by ``train`` and ``evaluate``,
read by the HTML report.

``evaluation.json`` holds :func:`cnnlab.train.metrics.classification_summary`'s numbers plus what
was evaluated (data, checkpoints, test-time augmentation), the accuracy of each variant (single
model, TTA, ensemble) with wall times, and the machine. Figures go to ``plots/``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.core.rundir import atomic_write_text
from cnnlab.report.plots import plot_confusion_matrix, plot_mistakes, plot_reliability

EVALUATION_FILE = "evaluation.json"
RESULTS_FILE = "results.json"
MODEL_SUMMARY_FILE = "model_summary.txt"


class Plot:
    """File names of the figures under ``plots/`` (one place, so writers and the report agree)."""

    CURVES = "curves.png"
    LR = "lr_schedule.png"
    SAMPLES = "samples.png"
    AUGMENTED = "augmented.png"
    CONFUSION = "confusion_matrix.png"
    CONFUSION_NORMALIZED = "confusion_matrix_normalized.png"
    RELIABILITY = "reliability.png"
    MISTAKES = "worst_mistakes.png"
    PR_CURVES = "pr_curves.png"  # detection: one precision-recall curve per class at IoU 0.5
    DETECTION_CONFUSION = "detection_confusion.png"  # detection: with a background row and column
    WORST_IMAGES = "worst_images.png"  # detection: the images with the most false and missed boxes
    ROC = "roc.png"  # embed: verification TAR against FAR
    DISTANCES = "distances.png"  # embed: same-person vs different-person distance histograms
    EMBEDDING_2D = "embedding_2d.png"  # embed: t-SNE / PCA of the embeddings coloured by person
    HARDEST_PAIRS = "hardest_pairs.png"  # embed: farthest same-person and nearest different-person pairs + Grad-CAM
    SIGNAL_CAMS = "signal_cams.png"  # sequence: signals, clips or volumes with their Grad-CAM over time / space


def machine_info() -> dict[str, Any]:
    """Where this process runs: CPU, core count, torch threads, versions and the load average now.

    >>> sorted(machine_info())[:3]
    ['cpu', 'cpu_count', 'load_average']
    """
    return {
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def write_evaluation(
    folder: str | Path,
    summary: Mapping[str, Any],
    title: str,
    mistakes: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``evaluation.json`` and its figures into ``folder``: confusion counts and shares, the
    reliability diagram and, given ``mistakes = (images, heatmaps)`` for ``summary["worst"]`` (uint8
    images and Grad-CAM maps in [0, 1]), the worst-mistakes grid.

    >>> import tempfile, torch
    >>> from cnnlab.train.metrics import classification_summary
    >>> s = classification_summary(torch.tensor([[0.9, 0.1], [0.3, 0.7]]), torch.tensor([0, 0]), ["a", "b"])
    >>> out = write_evaluation(tempfile.mkdtemp(), s, "Test set")
    >>> out.name, sorted(p.name for p in (out.parent / "plots").iterdir())
    ('evaluation.json', ['confusion_matrix.png', 'confusion_matrix_normalized.png', 'reliability.png'])
    """
    folder = Path(folder)
    plots = folder / "plots"
    counts = np.asarray(summary["confusion"])
    classes = summary["classes"]
    plot_confusion_matrix(counts, classes, plots / Plot.CONFUSION, title)
    plot_confusion_matrix(counts, classes, plots / Plot.CONFUSION_NORMALIZED, f"{title}, % of true class", True)
    plot_reliability(summary["reliability"], summary["ece"], plots / Plot.RELIABILITY)
    if mistakes is not None and summary["worst"]:
        captions = [f"{w['true']} as {w['predicted']} ({w['confidence']:.0%})" for w in summary["worst"]]
        images, heatmaps = mistakes
        plot_mistakes(images, heatmaps, captions, plots / Plot.MISTAKES, f"{title}: highest-loss mistakes")
    else:
        (plots / Plot.MISTAKES).unlink(missing_ok=True)  # an older grid would not match these numbers
    record = {"title": title, **summary, **(extra or {}), "machine": machine_info()}
    path = folder / EVALUATION_FILE
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    return path


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")  # Linux; elsewhere platform gives what it can
    lines = cpuinfo.read_text(encoding="utf-8").splitlines() if cpuinfo.is_file() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()
