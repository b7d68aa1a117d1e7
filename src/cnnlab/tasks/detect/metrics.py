"""Detection scores in three labelled conventions, per class and overall, from per-image predictions.

* ``voc07``: PASCAL VOC2007 11-point interpolated AP at IoU > 0.5;
* ``voc``: VOC2010+ all-point interpolated AP at IoU > 0.5 (the area under the precision envelope);
* ``coco``: AP averaged over IoU 0.50:0.05:0.95 with 101 recall points, AP50, AP75, AP for small /
  medium / large objects and AR@1/10/100, by pycocotools' ``COCOeval`` rules.

Matching. COCO numbers follow ``COCOeval`` step for step (tests compare with it to 1e-4): per image and
class, predictions in decreasing score (a stable sort, so ties keep their input order) each take the
unmatched box of highest IoU >= the threshold (equal IoUs: the later box), at most 100 predictions per
image *and class*, a box counts as small / medium / large by its box area (< 32², 32²..96², > 96²), a
class without ground truth gets no score (pycocotools prints -1; here NaN) and is left out of every mean.
VOC numbers follow the VOC devkit (``voc_eval.py``): all predictions of a class sorted by score, each
compared with the box of highest IoU in its image; IoU > 0.5 on a box not yet taken is a true positive,
a second hit on a taken box is a false positive. Unlike the devkit, widths are ``x2 - x1`` without the
devkit's ``+ 1`` (cnnlab's boxes are continuous coordinates), and score ties keep their input order.

A ground-truth box flagged ``ignore`` (or ``difficult``) acts as a VOC *difficult* object in the VOC
numbers and as a COCO *crowd* region in the COCO numbers: a prediction it absorbs is neither a true nor
a false positive, and it is not counted as an object to find.

>>> gt = [{"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]]), "labels": torch.tensor([0, 0])}]
>>> pred = [{"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0], [50, 50, 60, 60], [20, 20, 30, 31]]),
...          "scores": torch.tensor([0.9, 0.8, 0.7]), "labels": torch.tensor([0, 0, 0])}]
>>> scores = evaluate_detections(pred, gt, ["cell"])
>>> round(scores.voc_map50, 4)  # hit, miss, hit: precision 1 up to recall 1/2, then 2/3 up to recall 1
0.8333
>>> round(scores.coco_ap, 4)  # the second hit has IoU 100/110: lost at IoU 0.95 only; 81/101
0.802
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.tasks.detect.boxes import box_area, box_iou

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # pycocotools' Params.iouThrs, bit for bit
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)  # pycocotools' Params.recThrs
AREA_RANGES: dict[str, tuple[float, float]] = {
    "all": (0.0, 1e10),
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e10),
}
MAX_DETECTIONS = (1, 10, 100)
VOC07_RECALL_POINTS = np.arange(0.0, 1.1, 0.1)  # as the Python devkit ports (py-faster-rcnn, detectron2)
VOC_IOU_THRESHOLD = 0.5
_T50, _T75 = (int(np.flatnonzero(np.asarray(t) == IOU_THRESHOLDS)[0]) for t in (0.5, 0.75))  # as summarize()


@dataclass(frozen=True, eq=False)
class ClassScores:
    """One class's numbers. ``precision``, ``recall`` and ``thresholds`` trace the PR curve at IoU 0.5
    (VOC matching), one point per prediction in decreasing score; NaN where the class has no ground truth."""

    name: str
    num_gt: int  # ground-truth boxes to find (those flagged ignore/difficult are not counted)
    num_predictions: int
    voc07_ap50: float
    voc_ap50: float
    coco_ap: float
    coco_ap50: float
    coco_ap75: float
    precision: np.ndarray = field(repr=False)
    recall: np.ndarray = field(repr=False)
    thresholds: np.ndarray = field(repr=False)
    best_f1: float
    best_f1_threshold: float  # keep predictions with score >= this for the best F1 at IoU 0.5


@dataclass(frozen=True, eq=False)
class DetectionScores:
    """Every number :func:`evaluate_detections` computes; ``coco_*`` follow pycocotools (NaN where it prints -1)."""

    classes: tuple[ClassScores, ...]
    voc07_map50: float
    voc_map50: float
    coco_ap: float
    coco_ap50: float
    coco_ap75: float
    coco_ap_small: float
    coco_ap_medium: float
    coco_ap_large: float
    coco_ar1: float
    coco_ar10: float
    coco_ar100: float
    coco_ar_small: float
    coco_ar_medium: float
    coco_ar_large: float

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    def coco_stats(self) -> list[float]:
        """The twelve COCO numbers in the order of pycocotools' ``COCOeval.stats``."""
        return [getattr(self, name) for name in _COCO_STATS]

    def as_dict(self) -> dict[str, float]:
        """Flat, labelled numbers for ``metrics.json``: the means, then ``<metric>_<class>`` per class.

        >>> gt = [{"boxes": torch.tensor([[0.0, 0.0, 9.0, 9.0]]), "labels": torch.tensor([0])}]
        >>> pred = [{"boxes": gt[0]["boxes"], "scores": torch.tensor([0.5]), "labels": torch.tensor([0])}]
        >>> d = evaluate_detections(pred, gt, ["Red cell"]).as_dict()
        >>> d["voc_map50"], round(d["coco_ap_red_cell"], 6), d["num_gt_red_cell"]
        (1.0, 1.0, 1.0)
        """
        out: dict[str, float] = {"voc07_map50": self.voc07_map50, "voc_map50": self.voc_map50}
        out.update({name: getattr(self, name) for name in _COCO_STATS})
        for c in self.classes:
            key = _class_key(c.name)
            for metric in ("voc07_ap50", "voc_ap50", "coco_ap", "coco_ap50", "coco_ap75", "best_f1"):
                out[f"{metric}_{key}"] = getattr(c, metric)
            out[f"best_f1_threshold_{key}"] = c.best_f1_threshold
            out[f"num_gt_{key}"] = float(c.num_gt)
            out[f"num_predictions_{key}"] = float(c.num_predictions)
        return out


_COCO_STATS = (
    "coco_ap",
    "coco_ap50",
    "coco_ap75",
    "coco_ap_small",
    "coco_ap_medium",
    "coco_ap_large",
    "coco_ar1",
    "coco_ar10",
    "coco_ar100",
    "coco_ar_small",
    "coco_ar_medium",
    "coco_ar_large",
)


def average_precision(recall: np.ndarray, precision: np.ndarray, eleven_point: bool = False) -> float:
    """VOC AP from a PR curve (points in decreasing score): the all-point area under the precision envelope,
    or with ``eleven_point`` the VOC2007 mean of the best precision at recall >= 0, 0.1, ..., 1.

    >>> r, p = np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])
    >>> round(average_precision(r, p), 4), round(average_precision(r, p, eleven_point=True), 4)  # 5/6, 28/33
    (0.8333, 0.8485)
    """
    recall, precision = np.asarray(recall, dtype=np.float64), np.asarray(precision, dtype=np.float64)
    if eleven_point:
        best = [precision[recall >= t].max() if (recall >= t).any() else 0.0 for t in VOC07_RECALL_POINTS]
        return float(np.sum(best) / 11.0)
    recall = np.concatenate(([0.0], recall, [1.0]))
    envelope = np.maximum.accumulate(np.concatenate(([0.0], precision, [0.0]))[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * envelope[steps + 1]))


def evaluate_detections(
    predictions: Sequence[Mapping[str, Any]],
    ground_truth: Sequence[Mapping[str, Any]],
    class_names: Sequence[str],
) -> DetectionScores:
    """Score ``predictions`` against ``ground_truth`` (one dict per image, same order) in the VOC07, VOC and
    COCO conventions. Predictions: ``boxes`` (N, 4) ``xyxy``, ``scores`` (N,), ``labels`` (N,) in
    0..K-1; ground truth: ``boxes`` (M, 4), ``labels`` (M,), optional ``ignore`` or ``difficult`` (M,) bools.

    >>> gt = [{"boxes": torch.tensor([[0.0, 0.0, 40.0, 40.0]]), "labels": torch.tensor([1])}, {"boxes":
    ...     torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]
    >>> pred = [{"boxes": torch.tensor([[0.0, 0.0, 40.0, 44.0]]), "scores": torch.tensor([0.9]),
    ...     "labels": torch.tensor([1])}, {"boxes": torch.tensor([[5.0, 5.0, 9.0, 9.0]]),
    ...     "scores": torch.tensor([0.95]), "labels": torch.tensor([1])}]
    >>> s = evaluate_detections(pred, gt, ["a", "b"])
    >>> s.voc_map50, s.classes[1].num_gt, s.classes[0].voc_ap50  # a false positive ranked first; no "a" boxes
    (0.5, 1, nan)
    """
    names = list(class_names)
    if not names:
        raise ConfigError("no class names given", where="evaluate_detections", fix="pass the K class names")
    if len(predictions) != len(ground_truth):
        raise DataError(
            f"{len(predictions)} prediction dicts for {len(ground_truth)} ground-truth images",
            where="evaluate_detections",
            fix="pass one prediction dict per image, in the order of the ground truth (empty tensors for none)",
        )
    dets = _read_table(predictions, "predictions", len(names))
    gts = _read_table(ground_truth, "ground_truth", len(names))
    precision = -np.ones((len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), len(names), len(AREA_RANGES), 3))
    recall = -np.ones((len(IOU_THRESHOLDS), len(names), len(AREA_RANGES), 3))
    voc_rows = []
    for k in range(len(names)):
        boxes = _ClassBoxes.build(dets.select(dets.labels == k), gts.select(gts.labels == k))
        precision[:, :, k], recall[:, k] = _coco_class(boxes)
        voc_rows.append(_voc_class(boxes))
    classes = tuple(
        _class_scores(name, row, precision[:, :, k, 0, 2], int((dets.labels == k).sum()))
        for k, (name, row) in enumerate(zip(names, voc_rows, strict=True))
    )
    return DetectionScores(
        classes=classes,
        voc07_map50=_nanmean([c.voc07_ap50 for c in classes]),
        voc_map50=_nanmean([c.voc_ap50 for c in classes]),
        **_coco_summary(precision, recall),
    )


def detection_confusion(
    predictions: Sequence[Mapping[str, Any]],
    ground_truth: Sequence[Mapping[str, Any]],
    num_classes: int,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.25,
) -> torch.Tensor:
    """Counts ``cm[true, pred]`` (int64, (K+1, K+1)) with index K = background, as cnnlab's classification
    matrix (Ultralytics stores the transpose). Per image, predictions with score > ``score_threshold`` and
    boxes of any class pair up one to one, highest IoU first, while IoU > ``iou_threshold``; a pair counts
    at [box class, predicted class], an unpaired box at [class, K] (missed), an unpaired prediction at
    [K, class] (nothing there). Boxes flagged ``ignore``/``difficult`` and their pairs are not counted.

    >>> gt = [{"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]]),
    ...        "labels": torch.tensor([0, 1, 1])}]
    >>> pred = [{"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 29], [80, 80, 90, 90]]),
    ...          "scores": torch.tensor([0.9, 0.8, 0.7]), "labels": torch.tensor([0, 0, 1])}]
    >>> detection_confusion(pred, gt, 2).tolist()  # 0->0, a 1 called 0, a 1 missed, a 1 out of nothing
    [[1, 0, 0], [1, 0, 1], [0, 1, 0]]
    """
    if len(predictions) != len(ground_truth):
        raise DataError(
            f"{len(predictions)} prediction dicts for {len(ground_truth)} ground-truth images",
            where="detection_confusion",
            fix="pass one prediction dict per image, in the order of the ground truth",
        )
    dets = _read_table(predictions, "predictions", num_classes)
    gts = _read_table(ground_truth, "ground_truth", num_classes)
    dets = dets.select(dets.extra > score_threshold)
    background = num_classes
    counts = torch.zeros(num_classes + 1, num_classes + 1, dtype=torch.int64)
    for image in range(len(ground_truth)):
        d, g = dets.select(dets.image == image), gts.select(gts.image == image)
        d_free, g_free = np.ones(len(d.labels), bool), np.ones(len(g.labels), bool)
        if len(d.labels) and len(g.labels):
            ious = box_iou(g.boxes, d.boxes).numpy()
            rows, cols = np.nonzero(ious > iou_threshold)
            for i in np.argsort(-ious[rows, cols], kind="stable"):
                gi, di = rows[i], cols[i]
                if g_free[gi] and d_free[di]:
                    g_free[gi] = d_free[di] = False
                    if not g.extra[gi]:
                        counts[g.labels[gi], d.labels[di]] += 1
        for gi in np.flatnonzero(g_free & ~g.extra.astype(bool)):
            counts[g.labels[gi], background] += 1
        for di in np.flatnonzero(d_free):
            counts[background, d.labels[di]] += 1
    return counts


def summary_table(scores: DetectionScores) -> str:
    """A markdown table: per class AP in each convention (every header names its convention) and the mean,
    then COCO's size and recall numbers.

    >>> gt = [{"boxes": torch.tensor([[0.0, 0.0, 9.0, 9.0]]), "labels": torch.tensor([0])}]
    >>> pred = [{"boxes": gt[0]["boxes"], "scores": torch.tensor([0.5]), "labels": torch.tensor([0])}]
    >>> print(summary_table(evaluate_detections(pred, gt, ["RBC"])).splitlines()[2])
    | RBC | 1 | 1 | 1.000 | 1.000 | 1.000 | 1.000 | 1.000 | 1.000 @ 0.500 |
    """
    header = (
        "| class | GT boxes | predictions | VOC07 11-point AP@0.5 | VOC all-point AP@0.5 | COCO AP@[.50:.95] "
        "| COCO AP@0.50 | COCO AP@0.75 | best F1 @ score (IoU 0.5) |"
    )
    lines = [header, "|" + " --- |" * 9]
    for c in scores.classes:
        aps = (c.voc07_ap50, c.voc_ap50, c.coco_ap, c.coco_ap50, c.coco_ap75)
        f1 = "n/a" if math.isnan(c.best_f1) else f"{c.best_f1:.3f} @ {c.best_f1_threshold:.3f}"
        lines.append(f"| {c.name} | {c.num_gt} | {c.num_predictions} | " + " | ".join(map(_fmt, aps)) + f" | {f1} |")
    means = (scores.voc07_map50, scores.voc_map50, scores.coco_ap, scores.coco_ap50, scores.coco_ap75)
    gt_total = sum(c.num_gt for c in scores.classes)
    pred_total = sum(c.num_predictions for c in scores.classes)
    lines.append(f"| mean (classes with GT) | {gt_total} | {pred_total} | " + " | ".join(map(_fmt, means)) + " | |")
    lines += [
        "",
        "| COCO (pycocotools rules) | AP small | AP medium | AP large | AR@1 | AR@10 | AR@100 "
        "| AR small | AR medium | AR large |",
        "|" + " --- |" * 10,
        "| all classes | " + " | ".join(_fmt(v) for v in scores.coco_stats()[3:]) + " |",
    ]
    return "\n".join(lines)


# --- inputs ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    """Every box of every image in one flat table; ``extra`` holds scores (predictions) or ignore flags."""

    image: np.ndarray  # (n,) int64 index into the list of images
    boxes: torch.Tensor  # (n, 4) float64 xyxy
    labels: np.ndarray  # (n,) int64
    extra: np.ndarray  # (n,) float64

    def select(self, mask: np.ndarray) -> _Table:
        index = np.flatnonzero(mask)
        return _Table(self.image[index], self.boxes[torch.from_numpy(index)], self.labels[index], self.extra[index])


def _read_table(items: Sequence[Mapping[str, Any]], kind: str, num_classes: int) -> _Table:
    images, boxes, labels, extra = [], [], [], []
    for i, item in enumerate(items):
        where = f"{kind}[{i}]"
        if not isinstance(item, Mapping):
            raise DataError(
                f"{where} is a {type(item).__name__}, not a dict",
                where=where,
                fix="pass one dict per image with 'boxes' and 'labels' (and 'scores' for predictions)",
            )
        box = _tensor(item, "boxes", where, torch.float64)
        if box.numel() == 0:
            box = box.reshape(0, 4)
        if box.ndim != 2 or box.shape[1] != 4:
            raise DataError(
                f"boxes have shape {tuple(box.shape)}", where=f"{where}['boxes']", fix="pass an (N, 4) xyxy tensor"
            )
        label = _vector(item, "labels", where, len(box), torch.int64)
        if len(label) and (int(label.min()) < 0 or int(label.max()) >= num_classes):
            bad = int(label[(label < 0) | (label >= num_classes)][0])
            raise DataError(
                f"class index {bad} is outside 0..{num_classes - 1}",
                where=f"{where}['labels']",
                fix=f"labels are class indices for the {num_classes} class names given",
            )
        if kind == "predictions":
            value = _vector(item, "scores", where, len(box), torch.float64)
        else:
            value = torch.zeros(len(box), dtype=torch.float64)
            for name in ("ignore", "difficult"):
                if item.get(name) is not None:
                    value = torch.maximum(value, _vector(item, name, where, len(box), torch.float64))
        if not (torch.isfinite(box).all() and torch.isfinite(value).all()):
            raise DataError("boxes or scores hold NaN or infinity", where=where, fix="filter the model's output first")
        images.append(np.full(len(box), i, dtype=np.int64))
        boxes.append(box)
        labels.append(label.numpy())
        extra.append(value.numpy())
    if not images:
        return _Table(np.zeros(0, np.int64), torch.zeros(0, 4, dtype=torch.float64), np.zeros(0, np.int64), np.zeros(0))
    return _Table(np.concatenate(images), torch.cat(boxes), np.concatenate(labels), np.concatenate(extra))


def _tensor(item: Mapping[str, Any], key: str, where: str, dtype: torch.dtype) -> torch.Tensor:
    if item.get(key) is None:
        raise DataError(f"no {key!r}", where=where, fix=f"add {key!r} (an empty tensor when there are none)")
    return torch.as_tensor(item[key]).detach().cpu().to(dtype)


def _vector(item: Mapping[str, Any], key: str, where: str, length: int, dtype: torch.dtype) -> torch.Tensor:
    value = _tensor(item, key, where, dtype).reshape(-1)
    if len(value) != length:
        raise DataError(
            f"{len(value)} {key} for {length} boxes", where=f"{where}[{key!r}]", fix="give one value per box"
        )
    return value


# --- one class, padded by image -------------------------------------------------------------------------


@dataclass(frozen=True)
class _ClassBoxes:
    """One class's predictions and boxes laid out (P images with predictions, D slots, G slots); predictions
    in each image by decreasing score (stable). Pads: ``valid`` False, IoU -inf."""

    iou: np.ndarray  # (P, D, G)
    coco_iou: np.ndarray  # the same, but intersection over the prediction's area for ignored (crowd) boxes
    scores: np.ndarray  # (P, D)
    valid: np.ndarray  # (P, D) bool
    det_area: np.ndarray  # (P, D)
    ignore: np.ndarray  # (P, G) bool
    gt_area: np.ndarray  # (P, G)
    all_gt_area: np.ndarray  # every box of the class, also in images without predictions
    all_gt_ignore: np.ndarray

    @staticmethod
    def build(dets: _Table, gts: _Table) -> _ClassBoxes:
        order = np.lexsort((-dets.extra, dets.image))
        d_image, d_boxes, d_scores = dets.image[order], dets.boxes[torch.from_numpy(order)], dets.extra[order]
        images = np.unique(d_image)
        g_order = np.argsort(gts.image, kind="stable")
        g_order = g_order[np.isin(gts.image[g_order], images)]
        g_image, g_boxes, g_ignore = gts.image[g_order], gts.boxes[torch.from_numpy(g_order)], gts.extra[g_order] > 0
        d_group, d_slot, d_size = _slots(d_image, images)
        g_group, g_slot, g_size = _slots(g_image, images)
        iou = np.full((len(images), d_size, g_size), -np.inf)
        coco_iou = iou.copy()
        d_bounds = np.searchsorted(d_image, np.append(images, np.iinfo(np.int64).max))
        g_bounds = np.searchsorted(g_image, np.append(images, np.iinfo(np.int64).max))
        for p in range(len(images)):
            (d0, d1), (g0, g1) = d_bounds[p : p + 2], g_bounds[p : p + 2]
            if g1 > g0:
                block = _overlaps(d_boxes[d0:d1], g_boxes[g0:g1], g_ignore[g0:g1])
                iou[p, : d1 - d0, : g1 - g0], coco_iou[p, : d1 - d0, : g1 - g0] = block
        shape = (len(images), d_size)
        scores, valid, det_area = np.full(shape, np.nan), np.zeros(shape, bool), np.zeros(shape)
        scores[d_group, d_slot], valid[d_group, d_slot] = d_scores, True
        det_area[d_group, d_slot] = box_area(d_boxes).numpy()
        ignore, gt_area = np.zeros((len(images), g_size), bool), np.zeros((len(images), g_size))
        ignore[g_group, g_slot], gt_area[g_group, g_slot] = g_ignore, box_area(g_boxes).numpy()
        all_area, all_ignore = box_area(gts.boxes).numpy(), gts.extra > 0
        return _ClassBoxes(iou, coco_iou, scores, valid, det_area, ignore, gt_area, all_area, all_ignore)


def _slots(image: np.ndarray, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """For rows sorted by image: their image's position in ``images``, their slot in it, the most slots."""
    group = np.searchsorted(images, image)
    slot = np.arange(len(image)) - np.searchsorted(image, image)
    return group, slot, int(slot.max()) + 1 if len(slot) else 0


def _overlaps(dets: torch.Tensor, gts: torch.Tensor, crowd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IoU (D, G), and the same with pycocotools' crowd overlap (intersection over the prediction's area)
    against the ``crowd`` (ignored) boxes."""
    iou = box_iou(dets, gts).numpy()
    coco = iou.copy()
    if crowd.any():
        size = torch.minimum(dets[:, None, 2:], gts[None, :, 2:]) - torch.maximum(dets[:, None, :2], gts[None, :, :2])
        inter = size.clamp(min=0).prod(-1)
        area = box_area(dets)[:, None]
        covered = torch.where(area > 0, inter / area.clamp(min=1e-12), torch.zeros_like(inter)).numpy()
        coco[:, crowd] = covered[:, crowd]
    return iou, coco


# --- COCO -----------------------------------------------------------------------------------------------


def _coco_class(boxes: _ClassBoxes) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' ``precision`` (T, R, A, M) and ``recall`` (T, A, M) for one class; -1 without ground truth."""
    limit = MAX_DETECTIONS[-1]  # as computeIoU: later predictions cannot change earlier matches, so this saves work
    ious, valid, scores = boxes.coco_iou[:, :limit], boxes.valid[:, :limit], boxes.scores[:, :limit]
    lo, hi = (np.array(bounds)[:, None] for bounds in zip(*AREA_RANGES.values(), strict=True))
    gt_skip = boxes.ignore[:, None, :] | (boxes.gt_area[:, None, :] < lo) | (boxes.gt_area[:, None, :] > hi)
    hit, hit_skipped = _coco_matches(ious, boxes.ignore, gt_skip)
    det_outside = (boxes.det_area[:, None, :limit] < lo) | (boxes.det_area[:, None, :limit] > hi)  # (P, A, D)
    skipped = hit_skipped | (~hit & det_outside[:, :, None, :])
    tp, fp = hit & ~skipped, ~hit & ~skipped  # (P, A, T, D)
    all_area = boxes.all_gt_area[:, None]
    to_find = ((~boxes.all_gt_ignore[:, None]) & (all_area >= lo.T) & (all_area <= hi.T)).sum(0)  # (A,)
    precision = -np.ones((len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), len(AREA_RANGES), len(MAX_DETECTIONS)))
    recall = -np.ones((len(IOU_THRESHOLDS), len(AREA_RANGES), len(MAX_DETECTIONS)))
    for m, max_dets in enumerate(MAX_DETECTIONS):
        keep = valid & (np.arange(valid.shape[1]) < max_dets)
        order = np.argsort(-scores[keep], kind="stable")  # images in order, each by score: as pycocotools
        for a in range(len(AREA_RANGES)):
            if to_find[a] == 0:
                continue
            precision[:, :, a, m], recall[:, a, m] = _coco_curve(
                tp[:, a].transpose(1, 0, 2)[:, keep][:, order],
                fp[:, a].transpose(1, 0, 2)[:, keep][:, order],
                to_find[a],
            )
    return precision, recall


def _coco_matches(ious: np.ndarray, crowd: np.ndarray, gt_skip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval.evaluateImg's greedy matching for every image, area range and IoU threshold at once.

    ``ious`` (P, D, G), ``crowd`` (P, G), ``gt_skip`` (P, A, G): crowd or outside the area range. Returns
    ``hit`` and ``hit_skipped`` (P, A, T, D): matched at all, and matched to a skipped box. Each prediction
    takes, among free boxes with IoU >= t, the best non-skipped box, else the best skipped one; a tie goes
    to the box that comes later in pycocotools' order (non-skipped first, then input order).
    """
    count, slots, size = ious.shape
    hit = np.zeros((count, len(AREA_RANGES), len(IOU_THRESHOLDS), slots), bool)
    hit_skipped = np.zeros_like(hit)
    if size == 0 or slots == 0:
        return hit, hit_skipped
    rank = np.argsort(np.argsort(gt_skip, axis=-1, kind="stable"), axis=-1)[:, :, None, :]  # (P, A, 1, G)
    skip = gt_skip[:, :, None, :]
    reusable = crowd[:, None, None, :]
    thresholds = IOU_THRESHOLDS[None, None, :, None]
    taken = np.zeros((count, len(AREA_RANGES), len(IOU_THRESHOLDS), size), bool)
    columns = np.arange(size)
    for d in range(slots):
        iou = ious[:, None, None, d, :]
        ok = (~taken | reusable) & (iou >= thresholds)
        regular = ok & ~skip
        ok = np.where(regular.any(-1, keepdims=True), regular, ok)
        best = np.where(ok, iou, -np.inf).max(-1, keepdims=True)
        pick = np.where(ok & (iou == best), rank, -1).argmax(-1)
        found = ok.any(-1)
        taken |= found[..., None] & (columns == pick[..., None])
        hit[..., d] = found
        hit_skipped[..., d] = found & np.take_along_axis(np.broadcast_to(skip, ok.shape), pick[..., None], -1)[..., 0]
    return hit, hit_skipped


def _coco_curve(tp: np.ndarray, fp: np.ndarray, to_find: int) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval.accumulate for one class, area and max-detections: precision (T, R) and recall (T,)."""
    tp_sum, fp_sum = np.cumsum(tp, axis=1, dtype=np.float64), np.cumsum(fp, axis=1, dtype=np.float64)
    count = tp.shape[1]
    rc = tp_sum / to_find
    pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))
    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
    precision = np.zeros((len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)))
    for t in range(len(IOU_THRESHOLDS)):
        at = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
        inside = at < count
        precision[t, inside] = pr[t, at[inside]]
    recall = rc[:, -1] if count else np.zeros(len(IOU_THRESHOLDS))
    return precision, recall


def _coco_summary(precision: np.ndarray, recall: np.ndarray) -> dict[str, float]:
    """COCOeval.summarize: means over the entries that are not -1 (NaN where none is)."""
    last = len(MAX_DETECTIONS) - 1
    values = {
        "coco_ap": precision[:, :, :, 0, last],
        "coco_ap50": precision[_T50, :, :, 0, last],
        "coco_ap75": precision[_T75, :, :, 0, last],
        "coco_ap_small": precision[:, :, :, 1, last],
        "coco_ap_medium": precision[:, :, :, 2, last],
        "coco_ap_large": precision[:, :, :, 3, last],
        "coco_ar1": recall[:, :, 0, 0],
        "coco_ar10": recall[:, :, 0, 1],
        "coco_ar100": recall[:, :, 0, last],
        "coco_ar_small": recall[:, :, 1, last],
        "coco_ar_medium": recall[:, :, 2, last],
        "coco_ar_large": recall[:, :, 3, last],
    }
    return {name: _mean_valid(v) for name, v in values.items()}


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else math.nan


# --- VOC ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _VocCurve:
    num_gt: int
    precision: np.ndarray
    recall: np.ndarray
    thresholds: np.ndarray


def _voc_class(boxes: _ClassBoxes) -> _VocCurve:
    """The devkit's matching at IoU > 0.5 and the PR curve, without the predictions that hit ignored boxes."""
    count, slots, size = boxes.iou.shape
    tp, fp = np.zeros((count, slots), bool), np.ones((count, slots), bool)
    if size:
        taken = np.zeros((count, size), bool)
        rows = np.arange(count)
        iou = boxes.iou
        for d in range(slots):
            best = iou[:, d].argmax(-1)  # the devkit's np.argmax: the first of equal overlaps
            over = iou[rows, d, best] > VOC_IOU_THRESHOLD
            difficult, seen = boxes.ignore[rows, best], taken[rows, best]
            tp[:, d] = over & ~difficult & ~seen
            fp[:, d] = ~over | (~difficult & seen)
            taken[rows, best] |= tp[:, d]
    order = np.argsort(-boxes.scores[boxes.valid], kind="stable")
    tp, fp, scores = tp[boxes.valid][order], fp[boxes.valid][order], boxes.scores[boxes.valid][order]
    counted = tp | fp
    tp, fp, scores = tp[counted], fp[counted], scores[counted]
    num_gt = int((~boxes.all_gt_ignore).sum())
    tp_sum, fp_sum = np.cumsum(tp, dtype=np.float64), np.cumsum(fp, dtype=np.float64)
    recall = tp_sum / num_gt if num_gt else np.full(len(tp), np.nan)
    precision = tp_sum / np.maximum(tp_sum + fp_sum, np.finfo(np.float64).eps)
    return _VocCurve(num_gt, precision, recall, scores)


def _class_scores(name: str, voc: _VocCurve, coco_precision: np.ndarray, num_predictions: int) -> ClassScores:
    """``coco_precision``: this class's (T, R) precision at area 'all' and 100 detections."""
    if voc.num_gt:
        voc07 = average_precision(voc.recall, voc.precision, eleven_point=True)
        voc_all = average_precision(voc.recall, voc.precision)
    else:
        voc07 = voc_all = math.nan
    best_f1, best_threshold = _best_f1(voc)
    return ClassScores(
        name=name,
        num_gt=voc.num_gt,
        num_predictions=num_predictions,
        voc07_ap50=voc07,
        voc_ap50=voc_all,
        coco_ap=_mean_valid(coco_precision),
        coco_ap50=_mean_valid(coco_precision[_T50]),
        coco_ap75=_mean_valid(coco_precision[_T75]),
        precision=voc.precision,
        recall=voc.recall,
        thresholds=voc.thresholds,
        best_f1=best_f1,
        best_f1_threshold=best_threshold,
    )


def _best_f1(voc: _VocCurve) -> tuple[float, float]:
    """Highest F1 over score thresholds (only at the last of tied scores: a threshold keeps all or none)."""
    if not voc.num_gt or not len(voc.thresholds):
        return math.nan, math.nan
    p, r = voc.precision, voc.recall
    f1 = np.where(p + r > 0, 2 * p * r / np.where(p + r > 0, p + r, 1.0), 0.0)
    last_of_ties = np.append(voc.thresholds[1:] != voc.thresholds[:-1], True)
    best = int(np.argmax(np.where(last_of_ties, f1, -1.0)))
    return float(f1[best]), float(voc.thresholds[best])


# --- small helpers --------------------------------------------------------------------------------------


def _nanmean(values: Sequence[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return float(np.mean(kept)) if kept else math.nan


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def _class_key(name: str) -> str:
    """A class name as a metric-key suffix: ``"Red cell"`` -> ``"red_cell"``."""
    return re.sub(r"\W+", "_", name.strip().lower()).strip("_") or "class"
