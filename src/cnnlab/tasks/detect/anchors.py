"""Anchor boxes: the box shapes a YOLO grid cell predicts relative to, and k-means to pick them from a dataset.

An anchor is only a shape, (width, height). Two shapes are compared by their *shape IoU*: the IoU of the two
boxes placed on the same centre (the course's and YOLOv2's measure). :func:`kmeans_anchors` clusters a
dataset's box shapes with the distance ``1 - shape IoU`` (YOLOv2, Redmon & Farhadi 2017, section "Dimension
Clusters"), so big boxes do not dominate as they would with Euclidean distance; :func:`anchor_fit` says how
well a set of anchors covers the boxes, in numbers a log line can print (:func:`describe_anchor_fit`).

Anchors come out in the units of the shapes given: pixels in, pixels out. The course's ``yolo_head`` wants them
in grid cells: divide by the stride (image size / grid size).

>>> wh = torch.tensor([[10.0, 10.0], [11.0, 9.0], [40.0, 20.0], [42.0, 21.0]])
>>> kmeans_anchors(wh, k=2).round().tolist()
[[10.0, 10.0], [41.0, 20.0]]
"""

from __future__ import annotations

import torch

from cnnlab.core.errors import ConfigError, DataError


def shape_iou(wh_a: torch.Tensor, wh_b: torch.Tensor) -> torch.Tensor:
    """IoU of every shape in ``wh_a`` (N, 2) with every shape in ``wh_b`` (K, 2), the boxes sharing a centre
    (or a corner: the same number): (N, K). Shapes are (width, height).

    >>> shape_iou(torch.tensor([[2.0, 2.0]]), torch.tensor([[2.0, 2.0], [4.0, 1.0], [1.0, 1.0]])).tolist()
    [[1.0, 0.3333333432674408, 0.25]]
    """
    inter = torch.minimum(wh_a[:, None, 0], wh_b[None, :, 0]) * torch.minimum(wh_a[:, None, 1], wh_b[None, :, 1])
    union = wh_a.prod(-1)[:, None] + wh_b.prod(-1)[None, :] - inter
    return inter / union


def _check_shapes(wh: torch.Tensor, where: str) -> None:
    if wh.ndim != 2 or wh.shape[-1] != 2 or len(wh) == 0:
        raise DataError(
            f"box shapes must be a non-empty (N, 2) tensor of (width, height), got {tuple(wh.shape)}",
            where=where,
            fix="pass boxes[:, 2:] - boxes[:, :2] for xyxy boxes",
        )
    if not bool((wh > 0).all()) or not bool(wh.isfinite().all()):
        raise DataError(
            "box shapes must be finite and > 0 (a zero-width or zero-height box has no shape)",
            where=where,
            fix="drop or fix degenerate boxes before fitting anchors",
        )


def _plus_plus_init(wh: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: the first centre uniformly, each next one with probability proportional to its squared
    distance (1 - shape IoU) to the nearest centre chosen so far."""
    centres = [int(torch.randint(len(wh), (1,), generator=generator))]
    nearest = 1 - shape_iou(wh, wh[centres[0]][None])[:, 0]
    for _ in range(1, k):
        weights = nearest.square()
        pick = int(torch.multinomial(weights / weights.sum(), 1, generator=generator))
        centres.append(pick)
        nearest = torch.minimum(nearest, 1 - shape_iou(wh, wh[pick][None])[:, 0])
    return wh[centres].clone()


def kmeans_anchors(wh: torch.Tensor, k: int, seed: int = 0, iterations: int = 300) -> torch.Tensor:
    """``k`` anchor shapes (k, 2) for the box shapes ``wh`` (N, 2), sorted by area, smallest first: k-means with
    distance ``1 - shape IoU`` (YOLOv2's dimension clusters; the course's anchors come from it), k-means++
    seeding, mean update, at most ``iterations`` rounds (stops when no box changes cluster). The same ``seed``
    gives the same anchors.

    >>> wh = torch.tensor([[8.0, 16.0], [9.0, 17.0], [30.0, 10.0], [32.0, 11.0], [31.0, 9.0]])
    >>> kmeans_anchors(wh, k=2, seed=1).tolist()
    [[8.5, 16.5], [31.0, 10.0]]
    """
    _check_shapes(wh, "kmeans_anchors")
    wh = wh.detach().double()
    distinct = len(torch.unique(wh, dim=0))
    if not 1 <= k <= distinct:
        raise ConfigError(
            f"k = {k} anchors cannot be fitted to {distinct} distinct box shapes",
            where="kmeans_anchors k",
            fix=f"use 1 <= k <= {distinct} (YOLOv2 uses 5, YOLOv3 9)",
        )
    generator = torch.Generator().manual_seed(seed)
    centres = _plus_plus_init(wh, k, generator)
    assignment = torch.full((len(wh),), -1)
    for _ in range(iterations):
        ious = shape_iou(wh, centres)
        new_assignment = ious.argmax(1)
        if torch.equal(new_assignment, assignment):
            break
        assignment = new_assignment
        for cluster in range(k):
            members = assignment == cluster
            if members.any():
                centres[cluster] = wh[members].mean(0)
            else:  # an empty cluster restarts on the box the other centres serve worst
                centres[cluster] = wh[shape_iou(wh, centres).max(1).values.argmin()]
    order = centres.prod(-1).argsort()
    return centres[order].float()


def anchor_fit(wh: torch.Tensor, anchors: torch.Tensor) -> dict[str, float]:
    """How well ``anchors`` (K, 2) cover the box shapes ``wh`` (N, 2), by each box's best shape IoU:
    ``mean_best_iou``, ``recall_at_0.5`` (share of boxes whose best IoU is above 0.5: the boxes an anchor
    "covers"), ``recall_at_0.75``, ``worst_best_iou`` and ``anchors_used`` (share of anchors that are the
    best one for at least one box).

    >>> fit = anchor_fit(torch.tensor([[10.0, 10.0], [10.0, 40.0]]), torch.tensor([[10.0, 10.0], [10.0, 20.0]]))
    >>> fit["mean_best_iou"], fit["recall_at_0.5"], fit["anchors_used"]
    (0.75, 0.5, 1.0)
    """
    _check_shapes(wh, "anchor_fit boxes")
    _check_shapes(anchors, "anchor_fit anchors")
    ious = shape_iou(wh.double(), anchors.double())
    best, which = ious.max(1)
    return {
        "mean_best_iou": float(best.mean()),
        "recall_at_0.5": float((best > 0.5).double().mean()),
        "recall_at_0.75": float((best > 0.75).double().mean()),
        "worst_best_iou": float(best.min()),
        "anchors_used": len(which.unique()) / len(anchors),
    }


def describe_anchor_fit(fit: dict[str, float]) -> str:
    """One log line for an :func:`anchor_fit` result.

    >>> describe_anchor_fit({"mean_best_iou": 0.71, "recall_at_0.5": 0.972, "recall_at_0.75": 0.4,
    ...                      "worst_best_iou": 0.3, "anchors_used": 1.0})
    'anchors cover 97% of boxes at IoU > 0.5 (40% at IoU > 0.75; mean best IoU 0.71, worst 0.30; 100% of anchors used)'
    """
    return (
        f"anchors cover {fit['recall_at_0.5']:.0%} of boxes at IoU > 0.5 ({fit['recall_at_0.75']:.0%} at IoU > 0.75;"
        f" mean best IoU {fit['mean_best_iou']:.2f}, worst {fit['worst_best_iou']:.2f};"
        f" {fit['anchors_used']:.0%} of anchors used)"
    )
