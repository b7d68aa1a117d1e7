"""Scoring a detector on a labelled set and writing what a user looks at: ``evaluation.json`` (every number,
labelled by convention), the per-class table, PR curves, a confusion matrix with a background row, and
pictures of the images with the most errors (predictions in colour, missed boxes in white)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from cnnlab.core.rundir import atomic_write_text
from cnnlab.data.boxes import BoxDataset
from cnnlab.report.artefacts import EVALUATION_FILE, Plot
from cnnlab.tasks.detect.metric_figures import plot_confusion, plot_pr_curves
from cnnlab.tasks.detect.metrics import detection_confusion, evaluate_detections, summary_table
from cnnlab.tasks.detect.pictures import write_worst_images
from cnnlab.tasks.detect.predictor import PICTURE_SCORE, Detector


def truth_of_records(data: BoxDataset) -> list[dict[str, torch.Tensor]]:
    """Ground truth per image in its own pixels; difficult / crowd boxes are ``ignore`` regions."""
    return [
        {"boxes": r.boxes, "labels": r.labels, "ignore": r.difficult if r.difficult is not None else None}
        for r in data.records
    ]


def write_detection_evaluation(
    folder: Path, detector: Detector, data: BoxDataset, title: str, console: Console | None = None
) -> dict[str, Any]:
    """Score ``detector`` on ``data``; writes ``evaluation.json`` and ``plots/`` into ``folder`` and returns
    the headline numbers."""
    console = console or Console()
    predictions = detector.detect_dataset(data)
    truth = [{k: v for k, v in t.items() if v is not None} for t in truth_of_records(data)]
    scores = evaluate_detections(predictions, truth, detector.classes)
    matrix = detection_confusion(predictions, truth, len(detector.classes), score_threshold=PICTURE_SCORE)
    plots = folder / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    plot_pr_curves(scores, plots / Plot.PR_CURVES)
    plot_confusion(matrix, detector.classes, plots / Plot.DETECTION_CONFUSION)
    worst = write_worst_images(data, predictions, detector.classes, plots / Plot.WORST_IMAGES)
    summary = {
        "map50": scores.voc_map50,
        "voc07_map50": scores.voc07_map50,
        "coco_ap": scores.coco_ap,
        "coco_ap50": scores.coco_ap50,
        "coco_ap75": scores.coco_ap75,
    }
    payload = {
        "task": "detect",
        "title": title,
        "images": len(data),
        "conventions": {
            "voc_map50": "VOC2010+ all-point interpolated AP at IoU 0.5 (continuous coordinates, no +1)",
            "voc07_map50": "VOC2007 11-point interpolated AP at IoU 0.5",
            "coco_ap": "COCO AP@[.50:.05:.95], 101 recall points, maxDets 100 (equal to pycocotools)",
        },
        "scores": _finite(scores.as_dict()),
        "confusion": {"classes": [*detector.classes, "background"], "rows_true_cols_predicted": matrix.tolist()},
        "worst_images": worst,
    }
    atomic_write_text(folder / EVALUATION_FILE, json.dumps(payload, indent=2) + "\n")
    console.print(f"{title}: {len(data)} images")
    console.print(summary_table(scores))
    console.print(
        f"mAP@0.5 (VOC all-point) [bold green]{scores.voc_map50:.3f}[/bold green], VOC07 11-point "
        f"{scores.voc07_map50:.3f}, COCO AP@[.5:.95] {scores.coco_ap:.3f}; plots in {plots}"
    )
    return summary


def _finite(values: dict[str, float]) -> dict[str, float | None]:
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in values.items()}
