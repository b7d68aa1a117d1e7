"""Non-max suppression: keep the best box of every cluster of overlapping boxes.

Greedy, as the course teaches it: take the highest-scoring box, drop every remaining box whose IoU with it is
above the threshold, repeat. :func:`nms` ignores classes, :func:`batched_nms` lets only boxes of the same class
suppress each other, and :func:`select_detections` is a detector's post-processing for one image (score
threshold, class-aware NMS, top-k). Boxes are ``xyxy`` (see :mod:`cnnlab.tasks.detect.boxes`); the IoU is the
same for ``yxyx`` boxes, so the course's ``(y1, x1, y2, x2)`` boxes work unchanged.

Vectorised in blocks of 64 boxes in score order: each block's IoUs with the boxes not yet suppressed, then the
greedy pass over that block. Cost at most N² / 2 IoUs, far less when many boxes overlap (a detector's raw output).

>>> boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [20.0, 20.0, 30.0, 30.0]])
>>> nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5).tolist()
[0, 2]
"""

from __future__ import annotations

import numpy as np
import torch

from cnnlab.core.errors import ConfigError, DataError

_BLOCK = 64  # boxes whose IoUs are computed at once (64 x 3,000 floats fit in cache)


def _check(
    boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, where: str, classes: torch.Tensor | None = None
) -> None:
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise DataError(f"boxes must be (N, 4), got {tuple(boxes.shape)}", where=where, fix="pass one row per box")
    if scores.shape != boxes.shape[:1]:
        raise DataError(
            f"scores {tuple(scores.shape)} do not match boxes {tuple(boxes.shape)}",
            where=where,
            fix="pass one score per box, shape (N,)",
        )
    if not 0.0 <= iou_threshold <= 1.0:
        raise ConfigError(f"iou_threshold must be in [0, 1], got {iou_threshold}", where=where, fix="use e.g. 0.5")
    if classes is not None and classes.shape != scores.shape:
        raise DataError(
            f"classes {tuple(classes.shape)} do not match scores {tuple(scores.shape)}",
            where=where,
            fix="pass one class index per box, shape (N,)",
        )


def _iou_above(boxes: np.ndarray, rows: np.ndarray, cols: np.ndarray, iou_threshold: float) -> np.ndarray:
    """(len(rows), len(cols)) booleans: IoU of the two boxes above the threshold. The IoU is
    :func:`~cnnlab.tasks.detect.boxes.box_iou`'s (two zero-area boxes: 0 / 0 = nan, not above)."""
    x1, y1, x2, y2 = boxes.T
    width = np.minimum(x2[rows, None], x2[None, cols]) - np.maximum(x1[rows, None], x1[None, cols])
    height = np.minimum(y2[rows, None], y2[None, cols]) - np.maximum(y1[rows, None], y1[None, cols])
    inter = np.clip(width, 0, None, out=width) * np.clip(height, 0, None, out=height)
    area = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / (area[rows, None] + area[None, cols] - inter) > iou_threshold


def _greedy(boxes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Positions kept by greedy suppression of ``boxes`` already in descending score order. Works through the
    boxes in blocks of rows: IoUs only of boxes still standing, in temporaries small enough for the cache."""
    n = len(boxes)
    suppressed = np.zeros(n, dtype=bool)
    kept: list[int] = []
    for start in range(0, n, _BLOCK):
        rows = start + np.flatnonzero(~suppressed[start : start + _BLOCK])
        cols = start + np.flatnonzero(~suppressed[start:])
        if len(rows) == 0:
            continue
        overlaps = _iou_above(boxes, rows, cols, iou_threshold)
        within = overlaps[:, np.searchsorted(cols, rows)]  # the block's boxes among themselves
        alive = np.ones(len(rows), dtype=bool)
        for k in range(len(rows)):
            if alive[k]:
                alive[k + 1 :] &= ~within[k, k + 1 :]
        kept += rows[alive].tolist()
        suppressed[cols[overlaps[alive].any(0)]] = True
    return np.array(kept, dtype=np.int64)


def _suppress(
    boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor | None, iou_threshold: float
) -> torch.Tensor:
    order = torch.sort(scores.detach().cpu(), descending=True, stable=True).indices
    ranked = boxes.detach().cpu()[order]
    ranked = (ranked if ranked.dtype == torch.float64 else ranked.float()).numpy()
    if classes is None:
        kept = _greedy(ranked, iou_threshold)
    else:  # one class at a time: sum of n_c² IoUs instead of N²
        ranked_classes = classes.detach().cpu()[order].numpy()
        groups = [np.flatnonzero(ranked_classes == c) for c in np.unique(ranked_classes)]
        kept = np.sort(np.concatenate([g[_greedy(ranked[g], iou_threshold)] for g in groups] or [np.zeros(0, int)]))
    return order[torch.from_numpy(kept).long()].to(boxes.device)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Class-agnostic greedy NMS: indices of the kept boxes (int64), highest score first. A box is dropped when
    its IoU with a kept, higher-scoring box is greater than ``iou_threshold``; equal scores keep the lower
    index first. ``boxes`` (N, 4) ``xyxy``, ``scores`` (N,).

    >>> boxes = torch.tensor([[0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 4.0, 2.0], [0.0, 0.0, 4.0, 4.0]])
    >>> nms(boxes, torch.tensor([0.5, 0.9, 0.5]), iou_threshold=0.5).tolist()  # IoU(0, 1) = 0.5: not above
    [1, 0]
    """
    _check(boxes, scores, iou_threshold, "nms")
    return _suppress(boxes, scores, None, iou_threshold)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Class-aware greedy NMS: as :func:`nms`, but a box only suppresses boxes of its own class. Returns the
    kept indices (int64), highest score first, all classes merged.

    >>> boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    >>> batched_nms(boxes, torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0, 1, 0]), 0.5).tolist()
    [0, 1]
    """
    _check(boxes, scores, iou_threshold, "batched_nms", classes)
    return _suppress(boxes, scores, classes, iou_threshold)


def select_detections(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    classes: torch.Tensor,
    score_threshold: float = 0.05,
    iou_threshold: float = 0.5,
    max_detections: int = 100,
) -> dict[str, torch.Tensor]:
    """One image's detections from its candidate boxes: keep scores >= ``score_threshold``, class-aware NMS,
    then the ``max_detections`` best. Returns ``{"boxes": (D, 4) float32, "scores": (D,), "labels": (D,) int64}``,
    highest score first. The defaults are torchvision's Faster R-CNN ones (0.05, 0.5, 100): low enough for mAP;
    raise ``score_threshold`` (the course uses 0.6) for pictures.

    >>> boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [5.0, 5.0, 9.0, 9.0]])
    >>> out = select_detections(boxes, torch.tensor([0.9, 0.8, 0.01]), torch.tensor([2, 2, 0]))
    >>> out["boxes"].tolist(), out["scores"].tolist(), out["labels"].tolist()
    ([[0.0, 0.0, 10.0, 10.0]], [0.8999999761581421], [2])
    """
    if max_detections < 0:
        raise ConfigError(
            f"max_detections must be >= 0, got {max_detections}", where="select_detections", fix="use e.g. 100"
        )
    _check(boxes, scores, iou_threshold, "select_detections", classes)
    passed = scores >= score_threshold
    boxes, scores, classes = boxes[passed], scores[passed], classes[passed]
    kept = batched_nms(boxes, scores, classes, iou_threshold)[:max_detections]
    return {"boxes": boxes[kept].float(), "scores": scores[kept], "labels": classes[kept].long()}
