"""Detection metrics against independent references: pycocotools' COCOeval for every COCO number, a port of
the VOC devkit's ``voc_eval``/``voc_ap`` (written here, without the devkit's +1) for the VOC numbers,
fractions worked out by hand, and a brute-force greedy pairing for the confusion matrix."""

from __future__ import annotations

import contextlib
import io
import time
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from cnnlab.core.errors import DataError
from cnnlab.tasks.detect.metrics import (
    average_precision,
    detection_confusion,
    evaluate_detections,
    summary_table,
)

pytest.importorskip("pycocotools")
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

Image = dict[str, torch.Tensor]
CLASSES = ["RBC", "WBC", "Platelets"]


# --- references -----------------------------------------------------------------------------------------


def pycocotools_eval(predictions: list[Image], ground_truth: list[Image], num_classes: int) -> COCOeval:
    """COCOeval on the same boxes, written as COCO JSON (xywh, ``area`` = box area, ``iscrowd`` = ignore)."""
    images = [{"id": i + 1, "width": 1000, "height": 1000} for i in range(len(ground_truth))]
    annotations = []
    for i, gt in enumerate(ground_truth):
        ignore = gt.get("ignore", torch.zeros(len(gt["labels"]), dtype=torch.bool))
        for box, label, crowd in zip(gt["boxes"].tolist(), gt["labels"].tolist(), ignore.tolist(), strict=True):
            x1, y1, x2, y2 = box
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": label + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": int(crowd),
                }
            )
    results = [
        {"image_id": i + 1, "category_id": label + 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score}
        for i, pred in enumerate(predictions)
        for (x1, y1, x2, y2), score, label in zip(
            pred["boxes"].tolist(), pred["scores"].tolist(), pred["labels"].tolist(), strict=True
        )
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": k + 1, "name": str(k)} for k in range(num_classes)],
        }
        coco.createIndex()
        evaluator = COCOeval(coco, coco.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def pycocotools_class_ap(evaluator: COCOeval, k: int, iou_index: slice | int = slice(None)) -> float:
    precision = evaluator.eval["precision"][iou_index, :, k, 0, 2]
    valid = precision[precision > -1]
    return float(valid.mean()) if valid.size else float("nan")


def devkit_voc_ap(rec: np.ndarray, prec: np.ndarray, use_07_metric: bool) -> float:
    """``voc_ap`` of the VOC devkit's Python port (py-faster-rcnn ``voc_eval.py``), as it is written there."""
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return float(ap)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def devkit_voc_eval(
    predictions: list[Image], ground_truth: list[Image], k: int, use_07_metric: bool, ovthresh: float = 0.5
) -> float:
    """``voc_eval`` for class ``k`` as in the devkit port, loop by loop; differences: no +1 in widths and a
    stable sort of the scores (the devkit's np.argsort is not stable, so its tie order is arbitrary)."""
    class_recs = {}
    npos = 0
    for i, gt in enumerate(ground_truth):
        mask = gt["labels"] == k
        difficult = gt.get("difficult", gt.get("ignore", torch.zeros(len(mask), dtype=torch.bool)))[mask].numpy()
        class_recs[i] = {
            "bbox": gt["boxes"][mask].double().numpy(),
            "difficult": difficult.astype(bool),
            "det": [False] * int(mask.sum()),
        }
        npos += int((~difficult.astype(bool)).sum())
    image_ids, confidence, boxes = [], [], []
    for i, pred in enumerate(predictions):
        mask = pred["labels"] == k
        image_ids += [i] * int(mask.sum())
        confidence += pred["scores"][mask].tolist()
        boxes += pred["boxes"][mask].double().tolist()
    if npos == 0:
        return float("nan")
    sorted_ind = np.argsort(-np.array(confidence), kind="stable")
    BB = np.array(boxes).reshape(-1, 4)[sorted_ind]
    image_ids = [image_ids[x] for x in sorted_ind]
    nd = len(image_ids)
    tp, fp = np.zeros(nd), np.zeros(nd)
    for d in range(nd):
        R = class_recs[image_ids[d]]
        bb = BB[d, :]
        ovmax = -np.inf
        BBGT = R["bbox"]
        if BBGT.size > 0:
            ixmin = np.maximum(BBGT[:, 0], bb[0])
            iymin = np.maximum(BBGT[:, 1], bb[1])
            ixmax = np.minimum(BBGT[:, 2], bb[2])
            iymax = np.minimum(BBGT[:, 3], bb[3])
            iw = np.maximum(ixmax - ixmin, 0.0)
            ih = np.maximum(iymax - iymin, 0.0)
            inters = iw * ih
            uni = (bb[2] - bb[0]) * (bb[3] - bb[1]) + (BBGT[:, 2] - BBGT[:, 0]) * (BBGT[:, 3] - BBGT[:, 1]) - inters
            overlaps = inters / uni
            ovmax = np.max(overlaps)
            jmax = np.argmax(overlaps)
        if ovmax > ovthresh:
            if not R["difficult"][jmax]:
                if not R["det"][jmax]:
                    tp[d] = 1.0
                    R["det"][jmax] = 1
                else:
                    fp[d] = 1.0
        else:
            fp[d] = 1.0
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return devkit_voc_ap(rec, prec, use_07_metric)


def brute_force_confusion(
    predictions: list[Image], ground_truth: list[Image], num_classes: int, iou_thr: float, score_thr: float
) -> np.ndarray:
    """Repeatedly pair the highest-IoU free (box, prediction) above the threshold, in plain loops."""
    cm = np.zeros((num_classes + 1, num_classes + 1), dtype=np.int64)
    for pred, gt in zip(predictions, ground_truth, strict=True):
        keep = pred["scores"] > score_thr
        dets, d_labels = pred["boxes"][keep].double().tolist(), pred["labels"][keep].tolist()
        gts, g_labels = gt["boxes"].double().tolist(), gt["labels"].tolist()
        free_d, free_g = set(range(len(dets))), set(range(len(gts)))
        while True:
            pairs = [(iou(gts[g], dets[d]), g, d) for g in sorted(free_g) for d in sorted(free_d)]
            pairs = [p for p in pairs if p[0] > iou_thr]
            if not pairs:
                break
            best = max(p[0] for p in pairs)
            _, g, d = next(p for p in pairs if p[0] == best)
            cm[g_labels[g], d_labels[d]] += 1
            free_g.discard(g)
            free_d.discard(d)
        for g in free_g:
            cm[g_labels[g], num_classes] += 1
        for d in free_d:
            cm[num_classes, d_labels[d]] += 1
    return cm


def iou(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


# --- data -----------------------------------------------------------------------------------------------


def random_scene(seed: int, num_images: int = 30, num_classes: int = 3, crowd: float = 0.0) -> tuple[list, list]:
    """Ground truth of every size (8..300 px sides), predictions = jittered boxes (some missed, duplicated
    or given the wrong class) + false positives; scores rounded to 2 decimals, so ties are common."""
    rng = np.random.default_rng(seed)
    predictions, ground_truth = [], []
    for i in range(num_images):
        n = 0 if i % 7 == 3 else int(rng.integers(1, 12))
        side = np.exp(rng.uniform(np.log(8), np.log(300), n))
        aspect = rng.uniform(0.5, 2.0, n)
        w, h = side, side * aspect
        x1, y1 = rng.uniform(0, 700, n), rng.uniform(0, 700, n)
        boxes = np.stack([x1, y1, x1 + w, y1 + h], 1)
        labels = rng.choice(num_classes, n, p=np.linspace(2, 1, num_classes) / np.linspace(2, 1, num_classes).sum())
        ground_truth.append(
            {
                "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                "labels": torch.tensor(labels, dtype=torch.int64),
                "ignore": torch.tensor(rng.random(n) < crowd),
            }
        )
        p_boxes, p_labels, p_scores = [], [], []
        for box, label, bw, bh in zip(boxes, labels, w, h, strict=True):
            copies = int(rng.random() < 0.85) + int(rng.random() < 0.15)
            for _ in range(copies):
                noise = rng.normal(0, 0.08, 4) * np.array([bw, bh, bw, bh])
                p_boxes.append(box + noise)
                p_labels.append(label if rng.random() > 0.1 else rng.integers(num_classes))
                p_scores.append(rng.uniform(0.2, 1.0))
        for _ in range(int(rng.integers(0, 6))):
            x, y, s = rng.uniform(0, 700), rng.uniform(0, 700), np.exp(rng.uniform(np.log(6), np.log(250)))
            p_boxes.append(np.array([x, y, x + s, y + s * rng.uniform(0.5, 2)]))
            p_labels.append(rng.integers(num_classes))
            p_scores.append(rng.uniform(0.0, 0.7))
        order = rng.permutation(len(p_boxes))
        predictions.append(
            {
                "boxes": torch.tensor(np.array(p_boxes).reshape(-1, 4)[order], dtype=torch.float32),
                "scores": torch.tensor(np.round(np.array(p_scores)[order], 2), dtype=torch.float32),
                "labels": torch.tensor(np.array(p_labels, dtype=np.int64)[order]),
            }
        )
    return predictions, ground_truth


def image(boxes: list[list[float]], labels: list[int], scores: list[float] | None = None) -> Image:
    out = {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
    }
    if scores is not None:
        out["scores"] = torch.tensor(scores, dtype=torch.float32)
    return out


def crafted_scene() -> tuple[list[Image], list[Image]]:
    """Edge cases: class 1 has boxes but no predictions, class 2 predictions but no boxes, duplicates, tied
    scores within and across images, an image without boxes, identical boxes, an IoU of exactly 0.5, boxes
    on the small/medium boundary (32x32) and the medium/large one (96x96), and each area range."""
    ground_truth = [
        image([[0, 0, 10, 10], [100, 100, 150, 150], [300, 300, 500, 450], [600, 0, 632, 32]], [0, 0, 0, 0]),
        image([], []),
        image([[10, 10, 106, 106], [200, 200, 240, 230], [400, 400, 420, 420]], [1, 1, 0]),
        image([[50, 50, 90, 90], [50, 50, 90, 90], [0, 0, 20, 20]], [0, 0, 0]),
        image([[0, 0, 10, 10]], [0]),
        image([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 130, 130], [100, 100, 134, 134]], [0, 0, 0, 0]),
    ]
    predictions = [
        image(
            [[0, 0, 10, 11], [100, 100, 150, 150], [102, 101, 150, 152], [300, 300, 500, 440], [600, 0, 632, 32]],
            [0, 0, 0, 0, 2],
            [0.9, 0.8, 0.8, 0.7, 0.6],
        ),
        image([[5, 5, 40, 40], [300, 300, 400, 400]], [0, 2], [0.8, 0.9]),
        image([[400, 400, 420, 430], [10, 10, 106, 106]], [0, 2], [0.5, 0.5]),
        image([[50, 50, 90, 90], [51, 50, 90, 90], [50, 50, 90, 90]], [0, 0, 0], [0.7, 0.7, 0.3]),
        image([[0, 0, 10, 20], [0, 0, 10, 10]], [0, 0], [0.4, 0.2]),
        # IoU 0.6 with both of the first two boxes (pycocotools takes the later), then a perfect hit on the first;
        # 32x32 overlaps a small (30x30) and a medium (34x34) box: for AP small the small one, though lower IoU
        image([[2.5, 0, 12.5, 10], [0, 0, 10, 10], [100, 100, 132, 132]], [0, 0, 0], [0.6, 0.55, 0.5]),
    ]
    return predictions, ground_truth


def assert_coco_equal(predictions: list[Image], ground_truth: list[Image], num_classes: int) -> float:
    """Our COCO numbers (overall and per class) equal pycocotools'; returns the largest difference."""
    ours = evaluate_detections(predictions, ground_truth, [str(k) for k in range(num_classes)])
    reference = pycocotools_eval(predictions, ground_truth, num_classes)
    mine = np.nan_to_num(np.array(ours.coco_stats()), nan=-1.0)
    np.testing.assert_allclose(mine, reference.stats, atol=1e-4, rtol=0)
    worst = float(np.abs(mine - reference.stats).max())
    for k, c in enumerate(ours.classes):
        for value, iou_index in ((c.coco_ap, slice(None)), (c.coco_ap50, 0), (c.coco_ap75, 5)):
            expected = pycocotools_class_ap(reference, k, iou_index)
            assert value == pytest.approx(expected, abs=1e-4, nan_ok=True), (k, iou_index)
            if not np.isnan(expected):
                worst = max(worst, abs(value - expected))
    return worst


def assert_voc_equal(predictions: list[Image], ground_truth: list[Image], num_classes: int) -> None:
    ours = evaluate_detections(predictions, ground_truth, [str(k) for k in range(num_classes)])
    for eleven, per_class, mean in ((True, "voc07_ap50", ours.voc07_map50), (False, "voc_ap50", ours.voc_map50)):
        expected = [devkit_voc_eval(predictions, ground_truth, k, eleven) for k in range(num_classes)]
        for k, c in enumerate(ours.classes):
            assert getattr(c, per_class) == pytest.approx(expected[k], abs=1e-12, nan_ok=True), (k, eleven)
        assert mean == pytest.approx(np.nanmean(expected), abs=1e-12)


# --- COCO: equal to pycocotools -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coco_numbers_equal_pycocotools_on_random_noisy_boxes(seed: int) -> None:
    predictions, ground_truth = random_scene(seed)
    assert assert_coco_equal(predictions, ground_truth, 3) < 1e-12


def test_coco_numbers_equal_pycocotools_on_crafted_edge_cases() -> None:
    predictions, ground_truth = crafted_scene()
    assert assert_coco_equal(predictions, ground_truth, 3) < 1e-12
    scores = evaluate_detections(predictions, ground_truth, CLASSES)
    assert scores.classes[1].coco_ap == 0.0 and scores.classes[1].num_predictions == 0  # boxes, no predictions
    assert np.isnan(scores.classes[2].coco_ap) and scores.classes[2].num_gt == 0  # predictions, no boxes


def test_coco_crowd_regions_follow_pycocotools() -> None:
    predictions, ground_truth = random_scene(5, crowd=0.15)
    assert any(bool(gt["ignore"].any()) for gt in ground_truth)
    assert_coco_equal(predictions, ground_truth, 3)


def test_more_than_100_predictions_per_image_and_class_are_cut_as_pycocotools() -> None:
    rng = np.random.default_rng(7)
    corners = rng.uniform(0, 500, (30, 2))
    boxes = np.concatenate([corners, corners + 40], 1)
    false = np.concatenate([corners, corners + 40], 1)[rng.integers(0, 30, 110)] + [700, 0, 700, 0]
    hits = boxes + rng.normal(0, 2, (30, 4))  # ranked among the false ones: some fall beyond the 100th
    scores = np.round(np.concatenate([rng.uniform(0, 0.6, 30), rng.uniform(0.3, 1, 110)]), 2)
    pred = image(np.concatenate([hits, false]).tolist(), [0] * 140, scores.tolist())
    scores_all = evaluate_detections([pred], [image(boxes.tolist(), [0] * 30)], ["a"])
    assert scores_all.coco_ar100 < scores_all.classes[0].recall[-1]  # VOC keeps all 140, COCO the top 100
    assert_coco_equal([pred], [image(boxes.tolist(), [0] * 30)], 1)


# --- VOC: equal to the devkit's voc_eval ----------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_voc_numbers_equal_the_devkit_on_random_noisy_boxes(seed: int) -> None:
    assert_voc_equal(*random_scene(seed), 3)


def test_voc_numbers_equal_the_devkit_on_crafted_edge_cases_and_difficult_boxes() -> None:
    assert_voc_equal(*crafted_scene(), 3)
    predictions, ground_truth = random_scene(9, crowd=0.15)
    for gt in ground_truth:
        gt["difficult"] = gt.pop("ignore")
    assert_voc_equal(predictions, ground_truth, 3)


# --- worked by hand -------------------------------------------------------------------------------------


def test_two_boxes_three_predictions_worked_by_hand() -> None:
    gt = [image([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0])]
    pred = [image([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 31]], [0, 0, 0], [0.9, 0.8, 0.7])]
    c = evaluate_detections(pred, gt, ["cell"]).classes[0]
    # hit (P 1, R 1/2), miss (1/2, 1/2), hit (2/3, 1): the envelope is 1 up to recall 1/2, then 2/3
    np.testing.assert_allclose(c.precision, [1, 1 / 2, 2 / 3])
    np.testing.assert_allclose(c.recall, [1 / 2, 1 / 2, 1])
    assert c.voc_ap50 == pytest.approx(float(Fraction(1, 2) + Fraction(1, 2) * Fraction(2, 3)))  # 5/6
    assert c.voc07_ap50 == pytest.approx(float((6 + 5 * Fraction(2, 3)) / 11))  # recall 0..0.5: 1; 0.6..1: 2/3
    # COCO: the second hit has IoU 100/110 = 0.909, a hit at IoU 0.50..0.90 and a miss at 0.95; of the 101
    # recall points, 51 (0..0.50) read precision 1 and 50 read 2/3 (0 when recall 1 is never reached)
    at_hit, at_095 = Fraction(51) + 50 * Fraction(2, 3), Fraction(51)
    assert c.coco_ap == pytest.approx(float((9 * at_hit + at_095) / 1010))  # 81/101
    assert c.coco_ap50 == pytest.approx(float(at_hit / 101)) == c.coco_ap75
    assert (c.best_f1, c.best_f1_threshold) == (pytest.approx(0.8), pytest.approx(0.7))  # F1(2/3, 1) = 0.8


def test_difficult_box_makes_its_prediction_neither_hit_nor_miss_by_hand() -> None:
    gt = [image([[0, 0, 10, 10], [40, 40, 50, 50]], [0, 0])]
    pred = [image([[40, 40, 50, 50], [80, 80, 90, 90], [0, 0, 10, 10]], [0, 0, 0], [0.9, 0.85, 0.8])]
    plain = evaluate_detections(pred, gt, ["a"])
    gt[0]["difficult"] = torch.tensor([False, True])
    difficult = evaluate_detections(pred, gt, ["a"])
    assert plain.voc_map50 == pytest.approx(5 / 6)  # hit, miss, hit
    assert difficult.voc_map50 == pytest.approx(1 / 2)  # (ignored), miss, hit: precision 1/2 at recall 1
    assert difficult.classes[0].num_gt == 1 and len(difficult.classes[0].precision) == 2


def test_ties_keep_input_order_so_the_score_threshold_never_splits_a_tie() -> None:
    gt = [image([[0, 0, 10, 10]], [0])]
    pred = [image([[0, 0, 10, 10], [50, 50, 60, 60], [70, 70, 80, 80]], [0, 0, 0], [0.5, 0.5, 0.1])]
    c = evaluate_detections(pred, gt, ["a"]).classes[0]
    np.testing.assert_allclose(c.precision, [1, 1 / 2, 1 / 3])  # the hit came first in the input
    # F1 is 1 after the first point, but a threshold of 0.5 keeps both tied predictions: 2/3
    assert (c.best_f1, c.best_f1_threshold) == (pytest.approx(2 / 3), 0.5)


def test_average_precision_matches_the_devkit_on_random_curves() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        hits = rng.random(30) < 0.6
        npos = int(hits.sum()) + int(rng.integers(0, 5)) or 1
        rec = np.cumsum(hits) / npos
        prec = np.cumsum(hits) / np.arange(1, 31)
        for eleven in (True, False):
            assert average_precision(rec, prec, eleven) == pytest.approx(devkit_voc_ap(rec, prec, eleven), abs=1e-15)


def test_summary_table_names_every_convention_and_lists_every_class() -> None:
    table = summary_table(evaluate_detections(*crafted_scene(), CLASSES))
    header = table.splitlines()[0]
    for label in ("VOC07 11-point AP@0.5", "VOC all-point AP@0.5", "COCO AP@[.50:.95]", "COCO AP@0.50"):
        assert label in header
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert set(CLASSES) <= set(rows) and "n/a" in rows["Platelets"]  # no ground truth: no AP


# --- confusion matrix -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 4])
def test_confusion_matches_brute_force_greedy_pairing(seed: int) -> None:
    predictions, ground_truth = random_scene(seed)
    cm = detection_confusion(predictions, ground_truth, 3, iou_threshold=0.5, score_threshold=0.25)
    np.testing.assert_array_equal(cm.numpy(), brute_force_confusion(predictions, ground_truth, 3, 0.5, 0.25))
    for k in range(3):  # every box is counted once in its row, every kept prediction once in its column
        assert int(cm[k].sum()) == sum(int((gt["labels"] == k).sum()) for gt in ground_truth)
        kept = sum(int(((p["labels"] == k) & (p["scores"] > 0.25)).sum()) for p in predictions)
        assert int(cm[:, k].sum()) == kept
    assert cm[3, 3] == 0


def test_confusion_leaves_out_ignored_boxes_and_their_predictions() -> None:
    gt = [image([[0, 0, 10, 10], [40, 40, 50, 50]], [0, 1])]
    gt[0]["ignore"] = torch.tensor([False, True])
    pred = [image([[0, 0, 10, 10], [40, 40, 50, 50]], [0, 1], [0.9, 0.9])]
    assert detection_confusion(pred, gt, 2).tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 0]]


# --- bad input ------------------------------------------------------------------------------------------


def test_bad_input_names_the_image_and_field() -> None:
    gt = [image([[0, 0, 10, 10]], [0])]
    good = image([[0, 0, 10, 10]], [0], [0.9])
    with pytest.raises(DataError, match="1 prediction dicts for 2"):
        evaluate_detections([good], gt * 2, ["a"])
    with pytest.raises(DataError, match=r"outside 0\.\.0.*predictions\[0\]\['labels'\]"):
        evaluate_detections([image([[0, 0, 10, 10]], [3], [0.9])], gt, ["a"])
    with pytest.raises(DataError, match=r"shape \(1, 3\).*ground_truth\[0\]\['boxes'\]"):
        evaluate_detections([good], [{"boxes": torch.zeros(1, 3), "labels": torch.tensor([0])}], ["a"])
    with pytest.raises(DataError, match=r"no 'scores'.*predictions\[0\]"):
        evaluate_detections([{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0)}], gt, ["a"])
    with pytest.raises(DataError, match=r"2 scores for 1 boxes"):
        evaluate_detections([image([[0, 0, 10, 10]], [0], [0.9, 0.1])], gt, ["a"])


# --- BCCD sizes -----------------------------------------------------------------------------------------


def bccd_like_predictions(ground_truth: list[Image], seed: int, per_image: int = 100) -> list[Image]:
    """Up to ``per_image`` predictions per image: every box jittered (a few relabelled), then false positives."""
    rng = np.random.default_rng(seed)
    out = []
    for gt in ground_truth:
        boxes = gt["boxes"].double().numpy()
        size = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, 1)
        jittered = boxes + rng.normal(0, 0.07, boxes.shape) * size
        labels = np.where(rng.random(len(boxes)) < 0.05, rng.integers(0, 3, len(boxes)), gt["labels"].numpy())
        extra = per_image - len(boxes)
        corner = rng.uniform(0, 560, (extra, 2))
        false = np.concatenate([corner, corner + rng.uniform(15, 120, (extra, 2))], 1)
        out.append(
            {
                "boxes": torch.tensor(np.concatenate([jittered, false]), dtype=torch.float32),
                "scores": torch.tensor(np.concatenate([rng.uniform(0.3, 1, len(boxes)), rng.uniform(0, 0.6, extra)])),
                "labels": torch.tensor(np.concatenate([labels, rng.integers(0, 3, extra)]), dtype=torch.int64),
            }
        )
    return out


def test_bccd_sized_evaluation_is_fast(one_thread: None) -> None:
    """72 images x 100 predictions x 3 classes (about 13 boxes an image, mostly RBC) in well under 2 s."""
    rng = np.random.default_rng(11)
    ground_truth = []
    for _ in range(72):
        n = int(rng.integers(8, 20))
        corner = rng.uniform(0, 520, (n, 2))
        boxes = np.concatenate([corner, corner + rng.uniform(20, 120, (n, 2))], 1)
        ground_truth.append(image(boxes.tolist(), rng.choice(3, n, p=[0.85, 0.08, 0.07]).tolist()))
    predictions = bccd_like_predictions(ground_truth, 12)
    evaluate_detections(predictions[:2], ground_truth[:2], CLASSES)  # warm-up (imports, allocator)
    start = time.perf_counter()
    evaluate_detections(predictions, ground_truth, CLASSES)
    assert time.perf_counter() - start < 2.0


def read_bccd_test_split(root: Path) -> list[Image]:
    ids = (root / "ImageSets" / "Main" / "test.txt").read_text().split()
    images = []
    for name in ids:
        boxes, labels = [], []
        for obj in ET.parse(root / "Annotations" / f"{name}.xml").getroot().iter("object"):
            box = obj.find("bndbox")
            assert box is not None
            x1, y1, x2, y2 = (float(box.findtext(tag, "0")) for tag in ("xmin", "ymin", "xmax", "ymax"))
            if x2 > x1 and y2 > y1:
                boxes.append([x1, y1, x2, y2])
                labels.append(CLASSES.index(obj.findtext("name", "").strip()))
        images.append(image(boxes, labels))
    return images


@pytest.mark.data
@pytest.mark.slow  # 2-7 s: pycocotools and the devkit loop over 7,200 predictions
def test_bccd_test_split_equals_pycocotools_and_the_devkit(shared_data: Path) -> None:
    root = shared_data / "bccd" / "BCCD"
    if not (root / "ImageSets" / "Main" / "test.txt").is_file():
        pytest.skip(f"BCCD is not at {root}")
    ground_truth = read_bccd_test_split(root)
    assert len(ground_truth) == 72
    predictions = bccd_like_predictions(ground_truth, 0)
    assert assert_coco_equal(predictions, ground_truth, 3) < 1e-12
    assert_voc_equal(predictions, ground_truth, 3)


def test_scores_dict_is_flat_and_labelled() -> None:
    scores: dict[str, Any] = evaluate_detections(*crafted_scene(), CLASSES).as_dict()
    assert {"voc07_map50", "voc_map50", "coco_ap", "coco_ap_small", "coco_ar100", "voc_ap50_rbc"} <= set(scores)
    assert all(isinstance(v, float) for v in scores.values())
