"""The course's YOLO functions: hand-computed filter, corners and scaling, the decode formulas cell by cell, the
encode -> decode round trip, and NMS with max_boxes against an independent greedy loop."""

from __future__ import annotations

import math

import pytest
import torch

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.tasks.detect.boxes import box_iou, convert
from cnnlab.tasks.detect.course import (
    YOLOV2_COCO_ANCHORS,
    scale_boxes,
    yolo_boxes_to_corners,
    yolo_encode,
    yolo_eval,
    yolo_filter_boxes,
    yolo_head,
    yolo_non_max_suppression,
)


def test_filter_boxes_by_hand():
    # 2 x 1 grid, 2 anchors, 3 classes: score = p_c x class prob, best class, keep >= 0.6
    confidence = torch.tensor([[[[0.9], [0.3]]], [[[1.0], [0.7]]]])  # (2, 1, 2, 1)
    probs = torch.tensor([[[[0.1, 0.7, 0.2], [0.0, 0.0, 1.0]]], [[[0.6, 0.3, 0.1], [0.5, 0.1, 0.4]]]])
    boxes = torch.arange(16.0).reshape(2, 1, 2, 4)
    scores, kept, classes = yolo_filter_boxes(confidence, boxes, probs)
    # 0.9 x 0.7 = 0.63 (class 1) in; 0.3 x 1.0 = 0.3 out; 1.0 x 0.6 = 0.6 (class 0) in, at the threshold;
    # 0.7 x 0.5 = 0.35 out
    torch.testing.assert_close(scores, torch.tensor([0.63, 0.6]))
    assert classes.tolist() == [1, 0] and classes.dtype == torch.int64
    assert kept.tolist() == [boxes[0, 0, 0].tolist(), boxes[1, 0, 0].tolist()]
    scores, _, _ = yolo_filter_boxes(confidence, boxes, probs, threshold=0.3)
    assert len(scores) == 4


def test_corners_are_in_the_course_order_and_scale_to_pixels():
    corners = yolo_boxes_to_corners(torch.tensor([[0.5, 0.5]]), torch.tensor([[0.2, 0.4]]))
    torch.testing.assert_close(corners, torch.tensor([[0.3, 0.4, 0.7, 0.6]]))  # y1, x1, y2, x2
    pixels = scale_boxes(corners, (720.0, 1280.0))
    torch.testing.assert_close(pixels, torch.tensor([[0.3 * 720, 0.4 * 1280, 0.7 * 720, 0.6 * 1280]]))


def test_yolo_head_applies_the_yolov2_formulas_cell_by_cell():
    rows, cols, anchors, classes = 3, 4, [[1.0, 2.0], [3.0, 0.5]], 3
    feats = torch.randn(2, rows, cols, len(anchors) * (5 + classes), generator=torch.Generator().manual_seed(0))
    confidence, xy, wh, probs = yolo_head(feats, anchors, classes)
    assert confidence.shape == (2, rows, cols, 2, 1) and xy.shape == wh.shape == (2, rows, cols, 2, 2)
    assert probs.shape == (2, rows, cols, 2, classes)
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    for b, r, c, a in [(0, 0, 0, 0), (1, 2, 3, 1), (0, 1, 2, 1), (1, 2, 0, 0)]:
        t = feats[b, r, c, a * 8 : (a + 1) * 8].tolist()
        assert xy[b, r, c, a].tolist() == pytest.approx([(sig(t[0]) + c) / cols, (sig(t[1]) + r) / rows], rel=1e-5)
        expected_wh = [math.exp(t[2]) * anchors[a][0] / cols, math.exp(t[3]) * anchors[a][1] / rows]
        assert wh[b, r, c, a].tolist() == pytest.approx(expected_wh, rel=1e-5)
        assert confidence[b, r, c, a, 0].item() == pytest.approx(sig(t[4]), rel=1e-5)
        total = sum(math.exp(v) for v in t[5:])
        assert probs[b, r, c, a].tolist() == pytest.approx([math.exp(v) / total for v in t[5:]], rel=1e-5)


def test_yolo_head_reads_channels_first_like_channels_last():
    feats = torch.randn(1, 19, 19, 425, generator=torch.Generator().manual_seed(1))  # the course's shape
    last = yolo_head(feats, YOLOV2_COCO_ANCHORS, 80)
    first = yolo_head(feats.permute(0, 3, 1, 2), YOLOV2_COCO_ANCHORS, 80)
    split = yolo_head(feats.reshape(1, 19, 19, 5, 85), YOLOV2_COCO_ANCHORS, 80)
    for a, b, c in zip(last, first, split, strict=True):
        assert torch.equal(a, b) and torch.equal(a, c)
    assert last[1].shape == (1, 19, 19, 5, 2)  # 1,805 boxes, as in the course


def test_a_one_class_detector_has_class_probability_one():
    feats = torch.randn(1, 5 * 5, 13, 13)  # Tiny-YOLOv2 faces: 5 anchors x (tx, ty, tw, th, obj), channels first
    confidence, _, _, probs = yolo_head(feats, [[1.6, 2.1]] * 5, num_classes=0)
    assert probs.shape == confidence.shape == (1, 13, 13, 5, 1) and bool((probs == 1).all())


def _separated_boxes(seed: int, n: int, size: tuple[int, int]) -> torch.Tensor:
    """``n`` random xyxy boxes (float64) inside an image of (height, width), pairwise IoU < 0.3, centres in
    different cells of a 13 x 13 grid."""
    g = torch.Generator().manual_seed(seed)
    height, width = size
    boxes: list[torch.Tensor] = []
    while len(boxes) < n:
        w, h = (torch.rand(2, generator=g, dtype=torch.float64) * torch.tensor([0.4, 0.4]) + 0.03).tolist()
        cx, cy = (torch.rand(2, generator=g, dtype=torch.float64) * torch.tensor([1 - w, 1 - h])).tolist()
        box = torch.tensor([cx * width, cy * height, (cx + w) * width, (cy + h) * height], dtype=torch.float64)
        cell = lambda b: (int((b[0] + b[2]) / 2 / width * 13), int((b[1] + b[3]) / 2 / height * 13))  # noqa: E731
        if all(box_iou(box[None], b[None]).item() < 0.3 and cell(box) != cell(b) for b in boxes):
            boxes.append(box)
    return torch.stack(boxes)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_decoding_a_hand_built_yolo_output_recovers_the_boxes_that_encoded_it(seed):
    size, anchors, classes = (480, 640), YOLOV2_COCO_ANCHORS, 6
    boxes = _separated_boxes(seed, 8, size)
    labels = torch.randint(0, classes, (8,), generator=torch.Generator().manual_seed(seed))
    raw = yolo_encode(boxes, labels, size, 13, anchors, classes)
    assert raw.shape == (13, 13, 5, 5 + classes) and raw.dtype == torch.float64
    assert int((raw[..., 4] > 0).sum()) == 8  # one responsible anchor per box
    flat = raw.reshape(1, 13, 13, 5 * (5 + classes))  # the course's channels-last net output
    scores, found, found_labels = yolo_eval(yolo_head(flat, anchors, classes), image_shape=size, max_boxes=20)
    found = found[:, [1, 0, 3, 2]]  # the course's (y1, x1, y2, x2) to xyxy, keeping float64
    assert len(found) == 8 and bool((scores > 0.99).all())
    order = lambda b: sorted(range(len(b)), key=lambda i: b[i].tolist())  # noqa: E731
    torch.testing.assert_close(found[order(found)], boxes[order(boxes)], atol=1e-4, rtol=0)
    assert found_labels[order(found)].tolist() == labels[order(boxes)].tolist()


def test_round_trip_in_float32_on_a_non_square_grid():
    size, grid, anchors = (300, 500), (6, 10), [[1.0, 1.0], [3.0, 1.5]]
    boxes = torch.tensor([[10.0, 20.0, 60.0, 70.0], [200.0, 100.0, 380.0, 180.0], [420.0, 230.0, 499.0, 299.0]])
    labels = torch.tensor([2, 0, 1])
    raw = yolo_encode(boxes, labels, size, grid, anchors, 3)
    confidence, xy, wh, probs = yolo_head(raw[None], anchors, 3)
    _, found, found_labels = yolo_eval((confidence, xy, wh, probs), image_shape=size)
    order = found[:, 1].argsort()  # by x1: the three boxes are left to right
    torch.testing.assert_close(convert(found, "yxyx", "xyxy")[order], boxes, atol=2e-3, rtol=0)
    assert found_labels[order].tolist() == labels.tolist()


def test_encode_picks_the_cell_of_the_centre_and_the_anchor_of_closest_shape():
    anchors = [[1.0, 1.0], [3.0, 1.0], [1.0, 3.0]]  # square, wide, tall (cells)
    boxes = torch.tensor([[0.0, 0.0, 30.0, 10.0], [50.0, 60.0, 60.0, 90.0]])  # 100 x 100 image, 10 x 10 grid
    raw = yolo_encode(boxes, torch.tensor([0, 1]), (100, 100), 10, anchors, 2)
    # wide box: centre (15, 5) -> row 0, column 1; tall box: centre (55, 75) -> row 7, column 5
    assert (raw[..., 4] > 0).nonzero().tolist() == [[0, 1, 1], [7, 5, 2]]
    assert raw[0, 1, 1, 2:4].tolist() == pytest.approx([0.0, 0.0], abs=1e-6)  # exactly the anchor's shape
    assert raw[0, 1, 1, 0:2].tolist() == pytest.approx([0.0, 0.0], abs=1e-6)  # centred in its cell


def test_two_boxes_in_the_same_cell_and_anchor_keep_the_later_one():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 9.0, 9.0]])
    raw = yolo_encode(boxes, torch.tensor([0, 1]), (100, 100), 10, [[1.0, 1.0]], 2)
    assert int((raw[..., 4] > 0).sum()) == 1
    assert raw[0, 0, 0, 5:].argmax().item() == 1
    assert raw[0, 0, 0, 2].item() == pytest.approx(math.log(0.8))


def test_non_max_suppression_keeps_max_boxes_best_and_ignores_classes_like_the_course():
    g = torch.Generator().manual_seed(3)
    corner = torch.rand(40, 2, generator=g) * 100
    boxes = torch.cat([corner, corner + torch.rand(40, 2, generator=g) * 30 + 5], 1)
    scores, classes = torch.rand(40, generator=g), torch.randint(0, 4, (40,), generator=g)
    kept_scores, kept_boxes, kept_classes = yolo_non_max_suppression(scores, boxes, classes)
    greedy: list[int] = []
    for i in scores.argsort(descending=True).tolist():
        if all(box_iou(boxes[i][None], boxes[k][None]).item() <= 0.5 for k in greedy):
            greedy.append(i)
    assert len(greedy) > 10  # so max_boxes=10 really cuts
    assert torch.equal(kept_boxes, boxes[greedy[:10]])
    assert torch.equal(kept_scores, scores[greedy[:10]]) and torch.equal(kept_classes, classes[greedy[:10]])
    assert len(yolo_non_max_suppression(scores, boxes, classes, max_boxes=3)[0]) == 3


def test_bad_input_is_refused_with_where_and_fix():
    with pytest.raises(DataError, match="class ids"):
        yolo_encode(torch.tensor([[0.0, 0.0, 5.0, 5.0]]), torch.tensor([3]), (10, 10), 2, [[1.0, 1.0]], 3)
    with pytest.raises(DataError, match="x2 > x1"):
        yolo_encode(torch.tensor([[2.0, 0.0, 2.0, 5.0]]), torch.tensor([0]), (10, 10), 2, [[1.0, 1.0]], 3)
    with pytest.raises(DataError, match="outside"):
        yolo_encode(torch.tensor([[20.0, 0.0, 30.0, 5.0]]), torch.tensor([0]), (10, 10), 2, [[1.0, 1.0]], 3)
    with pytest.raises(ConfigError, match="needs 425 channels"):
        yolo_head(torch.zeros(1, 19, 19, 400), YOLOV2_COCO_ANCHORS, 80)
    with pytest.raises(ConfigError, match="cannot tell"):
        yolo_head(torch.zeros(1, 6, 3, 6), [[1.0, 1.0]], 1)
    with pytest.raises(ConfigError, match="one image"):
        yolo_eval(yolo_head(torch.zeros(2, 3, 3, 6), [[1.0, 1.0]], 1))


def test_a_centre_on_a_cell_border_survives_the_round_trip():
    boxes = torch.tensor([[0.0, 0.0, 20.0, 20.0], [60.0, 40.0, 100.0, 100.0]], dtype=torch.float64)  # centres 10, 80
    raw = yolo_encode(boxes, torch.tensor([0, 0]), (100, 100), 10, [[2.0, 2.0]], 1)
    assert raw[..., 4].gt(0).nonzero().tolist() == [[1, 1, 0], [7, 8, 0]]  # the cell right/below the border
    _, found, _ = yolo_eval(yolo_head(raw[None], [[2.0, 2.0]], 1), image_shape=(100, 100))
    torch.testing.assert_close(found[:, [1, 0, 3, 2]].sort(0).values, boxes.sort(0).values, atol=1e-4, rtol=0)
