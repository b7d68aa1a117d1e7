"""Pictures of detections: each image with its predicted boxes (one colour per class, with scores) and the
true boxes it missed (white), and a grid of the images with the most errors."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from cnnlab.core.rundir import atomic_write_bytes
from cnnlab.data.boxes import BoxDataset
from cnnlab.data.images import read_image
from cnnlab.report.boxes_drawing import draw_boxes, label_colours
from cnnlab.report.figures import save_figure, subplots
from cnnlab.tasks.detect.boxes import box_iou

MISSED = (255, 255, 255)


def errors_of(found: dict[str, torch.Tensor], boxes: torch.Tensor, labels: torch.Tensor, score: float) -> dict:
    """Predictions above ``score`` that match no true box of their class at IoU >= 0.5 (false positives) and
    true boxes no such prediction matched (missed), greedily by score.

    >>> found = {"boxes": torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60]]), "scores": torch.tensor([0.9, 0.8]),
    ...          "labels": torch.tensor([0, 0])}
    >>> e = errors_of(found, torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]), torch.tensor([0, 0]), 0.25)
    >>> e["false_positives"].tolist(), e["missed"].tolist()
    ([1], [1])
    """
    keep = found["scores"] >= score
    pred_boxes, pred_labels = found["boxes"][keep], found["labels"][keep]
    taken = torch.zeros(len(boxes), dtype=torch.bool)
    wrong = []
    overlaps = box_iou(pred_boxes, boxes) if len(boxes) and len(pred_boxes) else torch.zeros(len(pred_boxes), 0)
    for i in range(len(pred_boxes)):
        candidates = overlaps[i].clone() if overlaps.shape[1] else overlaps[i]
        if candidates.numel():
            candidates[(labels != pred_labels[i]) | taken] = -1
        if candidates.numel() and candidates.max() >= 0.5:
            taken[int(candidates.argmax())] = True
        else:
            wrong.append(i)
    return {"false_positives": torch.tensor(wrong, dtype=torch.long), "missed": (~taken).nonzero().flatten()}


def draw_detections(
    pixels: np.ndarray,
    found: dict[str, torch.Tensor],
    classes: Sequence[str],
    missed: torch.Tensor | None = None,
    score: float = 0.25,
) -> np.ndarray:
    """``pixels`` (H, W, C uint8) with the detections above ``score`` and, in white, the ``missed`` true boxes."""
    keep = found["scores"] >= score
    boxes, labels = found["boxes"][keep], [classes[int(i)] for i in found["labels"][keep]]
    palette = label_colours(list(classes))
    colours = [palette[name] for name in labels]
    tags = [f"{name} {s:.2f}" for name, s in zip(labels, found["scores"][keep].tolist(), strict=True)]
    if missed is not None and len(missed):
        boxes = torch.cat([boxes, missed.float()])
        tags += ["missed"] * len(missed)
        colours += [MISSED] * len(missed)
    return draw_boxes(pixels, boxes, tags, None, colours)


def write_picture(picture: np.ndarray, path: Path) -> Path:
    """Save an RGB picture as PNG (JPEG for ``.jpg`` paths), atomically."""
    buffer = io.BytesIO()
    kind = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    Image.fromarray(picture).save(buffer, format=kind)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def write_worst_images(
    data: BoxDataset,
    predictions: Sequence[dict[str, torch.Tensor]],
    classes: Sequence[str],
    path: Path,
    count: int = 6,
    score: float = 0.25,
) -> list[dict[str, Any]]:
    """A grid of the ``count`` images with the most errors (false positives + missed boxes at ``score``);
    returns them, worst first."""
    rows = []
    for record, found in zip(data.records, predictions, strict=True):
        e = errors_of(found, record.boxes, record.labels, score)
        rows.append((len(e["false_positives"]) + len(e["missed"]), record, found, e))
    rows.sort(key=lambda row: -row[0])
    worst = rows[: min(count, len(rows))]
    if not worst:
        return []
    columns = min(3, len(worst))
    lines = -(-len(worst) // columns)
    fig, axes = subplots(lines, columns, figsize=(5 * columns, 4 * lines), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (_, record, found, e) in zip(axes.flat, worst, strict=False):
        pixels = read_image(record.path, channels=3)
        ax.imshow(draw_detections(pixels, found, classes, record.boxes[e["missed"]], score))
        ax.set_title(
            f"{Path(record.path).name}: {len(e['false_positives'])} false, {len(e['missed'])} missed", fontsize=9
        )
    save_figure(fig, path)
    return [
        {"image": r.path, "false_positives": len(e["false_positives"]), "missed": len(e["missed"])}
        for _, r, _, e in worst
    ]
