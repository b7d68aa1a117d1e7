"""The course's YOLO functions (Coursera CNN course, week 3, "Autonomous driving - Car detection", YOLOv2), on
torch tensors, with the course's names, arguments and defaults; plus :func:`yolo_encode`, the way back.

The pipeline of the assignment: a YOLOv2 net outputs (B, S, S, A * (5 + C)) raw numbers; :func:`yolo_head`
decodes them into box confidences, centres, sizes and class probabilities; :func:`yolo_eval` turns those into
at most ``max_boxes`` scored boxes in pixels (:func:`yolo_boxes_to_corners`, :func:`yolo_filter_boxes`,
:func:`scale_boxes`, :func:`yolo_non_max_suppression`). The course's model is 608 x 608 in, a 19 x 19 grid,
5 anchors (:data:`YOLOV2_COCO_ANCHORS`) and 80 classes: 19 x 19 x 5 = 1,805 boxes per image.

Box order: as in the course, the boxes these functions return are **(y1, x1, y2, x2)**, not cnnlab's ``xyxy``:
``convert(boxes, "yxyx", "xyxy")`` from :mod:`cnnlab.tasks.detect.boxes` turns them into the rest of cnnlab's
order. Raw channel order per anchor, as in the course's network (YAD2K's ``yolo_head``):
``[t_x, t_y, t_w, t_h, t_o, class logits...]`` (the lecture writes y = [p_c, b_x, b_y, b_h, b_w, c...]; the
network stores the confidence fifth). Anchors are (width, height) in grid cells.

>>> feats = torch.zeros(1, 19, 19, 5 * 85)  # a net that knows nothing: every box at its cell centre
>>> confidence, xy, wh, probs = yolo_head(feats, YOLOV2_COCO_ANCHORS, num_classes=80)
>>> tuple(xy.shape), round(confidence.max().item(), 2), round(probs.max().item(), 4)
((1, 19, 19, 5, 2), 0.5, 0.0125)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.tasks.detect.anchors import shape_iou
from cnnlab.tasks.detect.nms import nms

YOLOV2_COCO_ANCHORS: tuple[tuple[float, float], ...] = (
    (0.57273, 0.677385),
    (1.87446, 2.06253),
    (3.33843, 5.47434),
    (7.88282, 3.52778),
    (9.77052, 9.16828),
)
"""The course's ``model_data/yolo_anchors.txt`` (YOLOv2 on COCO, from ``yolov2.cfg``): (width, height) in cells of
the 19 x 19 grid."""

_SURE = 10.0  # the logit :func:`yolo_encode` writes for "yes" (sigmoid(10) = 0.99995) and, negated, for "no"
_OFFSET_EPS = 1e-6  # a centre on a cell border would need an infinite logit; it moves by at most 1e-6 cell


def yolo_filter_boxes(
    box_confidence: torch.Tensor, boxes: torch.Tensor, box_class_probs: torch.Tensor, threshold: float = 0.6
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The course's ``yolo_filter_boxes``: score = box confidence (p_c) x class probability; each box keeps its
    best class and is dropped when that score is below ``threshold``. Inputs (..., 1), (..., 4), (..., C) for one
    image (all leading dimensions are flattened); returns ``(scores (n,), boxes (n, 4), classes (n,) int64)``.

    >>> confidence = torch.tensor([[0.9], [0.5]])
    >>> probs = torch.tensor([[0.2, 0.8], [0.1, 0.9]])
    >>> scores, boxes, classes = yolo_filter_boxes(confidence, torch.rand(2, 4), probs)
    >>> [round(s, 4) for s in scores.tolist()], classes.tolist()  # 0.9 x 0.8 = 0.72 passes, 0.5 x 0.9 = 0.45 not
    ([0.72], [1])
    """
    box_scores = box_confidence * box_class_probs
    box_class_scores, box_classes = box_scores.max(dim=-1)
    keep = box_class_scores >= threshold
    return box_class_scores[keep], boxes[keep], box_classes[keep]


def yolo_non_max_suppression(
    scores: torch.Tensor, boxes: torch.Tensor, classes: torch.Tensor, max_boxes: int = 10, iou_threshold: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The course's ``yolo_non_max_suppression``: greedy NMS keeping at most ``max_boxes``, highest score first.
    Like the course (``tf.image.non_max_suppression``) it ignores classes: a box suppresses overlapping boxes of
    any class (:func:`~cnnlab.tasks.detect.nms.batched_nms` is the class-aware one). ``boxes`` may be (y1, x1,
    y2, x2) as in the course or ``xyxy``: the IoU is the same.

    >>> boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 9.0], [20.0, 20.0, 30.0, 30.0]])
    >>> scores, kept, classes = yolo_non_max_suppression(torch.tensor([0.7, 0.9, 0.8]), boxes, torch.tensor([0, 1, 2]))
    >>> scores.tolist(), classes.tolist()
    ([0.8999999761581421, 0.800000011920929], [1, 2])
    """
    keep = nms(boxes, scores, iou_threshold)[:max_boxes]
    return scores[keep], boxes[keep], classes[keep]


def yolo_boxes_to_corners(box_xy: torch.Tensor, box_wh: torch.Tensor) -> torch.Tensor:
    """The course's ``yolo_boxes_to_corners``: centres (..., 2) as (x, y) and sizes (..., 2) as (w, h) to corners
    (..., 4) in the course's order **(y1, x1, y2, x2)**.

    >>> yolo_boxes_to_corners(torch.tensor([[0.5, 0.25]]), torch.tensor([[0.2, 0.5]])).tolist()
    [[0.0, 0.4000000059604645, 0.5, 0.6000000238418579]]
    """
    top_left = box_xy - box_wh / 2
    bottom_right = box_xy + box_wh / 2
    return torch.stack([top_left[..., 1], top_left[..., 0], bottom_right[..., 1], bottom_right[..., 0]], dim=-1)


def scale_boxes(boxes: torch.Tensor, image_shape: Sequence[float]) -> torch.Tensor:
    """The course's ``scale_boxes``: (y1, x1, y2, x2) boxes as fractions of the image to pixels of an image of
    ``image_shape`` = (height, width).

    >>> scale_boxes(torch.tensor([[0.5, 0.25, 1.0, 0.5]]), (720.0, 1280.0)).tolist()
    [[360.0, 320.0, 720.0, 640.0]]
    """
    height, width = float(image_shape[0]), float(image_shape[1])
    return boxes * boxes.new_tensor([height, width, height, width])


def _as_anchors(anchors: torch.Tensor | Sequence[Sequence[float]], like: torch.Tensor, where: str) -> torch.Tensor:
    tensor = torch.as_tensor(anchors, dtype=like.dtype, device=like.device)
    if tensor.ndim != 2 or tensor.shape[-1] != 2 or len(tensor) == 0 or not bool((tensor > 0).all()):
        raise ConfigError(
            f"anchors must be A > 0 positive (width, height) pairs, got shape {tuple(tensor.shape)}",
            where=where,
            fix="pass e.g. YOLOV2_COCO_ANCHORS: (width, height) in grid cells",
        )
    return tensor


def _split_anchors(feats: torch.Tensor, num_anchors: int, per_anchor: int) -> torch.Tensor:
    """(B, S_h, S_w, A, 5 + C) from channels-last (B, S_h, S_w, A * (5 + C)), channels-first (B, A * (5 + C),
    S_h, S_w) or already split raw outputs."""
    channels = num_anchors * per_anchor
    if feats.ndim == 5 and feats.shape[-2:] == (num_anchors, per_anchor):
        return feats
    if feats.ndim == 4:
        last, first = feats.shape[-1] == channels, feats.shape[1] == channels
        if last and first:
            raise ConfigError(
                f"cannot tell channels from grid in a {tuple(feats.shape)} output ({channels} channels)",
                where="yolo_head feats",
                fix="permute it to (B, S, S, A * (5 + C)) and reshape to (B, S, S, A, 5 + C)",
            )
        if last:
            return feats.reshape(*feats.shape[:3], num_anchors, per_anchor)
        if first:
            batch, _, rows, cols = feats.shape
            return feats.reshape(batch, num_anchors, per_anchor, rows, cols).permute(0, 3, 4, 1, 2)
    raise ConfigError(
        f"a YOLO output with {num_anchors} anchors and {per_anchor - 5} classes needs {channels} channels;"
        f" got shape {tuple(feats.shape)}",
        where="yolo_head feats",
        fix="check num_classes and the anchors against the net's last layer",
    )


def yolo_head(
    feats: torch.Tensor, anchors: torch.Tensor | Sequence[Sequence[float]], num_classes: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The course's ``yolo_head`` (from YAD2K): decode a raw YOLOv2 output into ``(box_confidence, box_xy, box_wh,
    box_class_probs)``, shaped (B, S_h, S_w, A, 1 / 2 / 2 / C). ``feats`` is channels-last (B, S_h, S_w,
    A * (5 + C)) as in the course, channels-first (B, A * (5 + C), S_h, S_w) as a torch conv gives, or already
    (B, S_h, S_w, A, 5 + C). Per anchor: confidence = sigmoid(t_o); centre = (sigmoid(t_x, t_y) + cell column,
    row) / grid size; size = exp(t_w, t_h) x anchor / grid size; class probabilities = softmax. Centres and sizes
    are fractions of the image, (x, y) and (w, h). ``anchors`` (A, 2): (width, height) in grid cells.
    ``num_classes=0`` (a one-class detector such as Tiny-YOLOv2 faces) gives class probabilities of 1, (..., 1).
    Unlike YAD2K, a non-square grid divides x by the columns and y by the rows.

    >>> feats = torch.zeros(1, 2, 2, 1 * 6)  # 2 x 2 grid, one anchor, one class, all logits 0
    >>> confidence, xy, wh, probs = yolo_head(feats, [[1.0, 2.0]], num_classes=1)
    >>> xy[0, :, :, 0].tolist(), wh[0, 0, 0, 0].tolist()  # cell centres; the anchor / grid size
    ([[[0.25, 0.25], [0.75, 0.25]], [[0.25, 0.75], [0.75, 0.75]]], [0.5, 1.0])
    """
    if num_classes < 0:
        raise ConfigError(f"num_classes must be >= 0, got {num_classes}", where="yolo_head num_classes")
    anchors = _as_anchors(anchors, feats, "yolo_head anchors")
    raw = _split_anchors(feats, len(anchors), 5 + num_classes)
    rows, cols = raw.shape[1], raw.shape[2]
    row_index = torch.arange(rows, dtype=raw.dtype, device=raw.device)[:, None].expand(rows, cols)
    col_index = torch.arange(cols, dtype=raw.dtype, device=raw.device)[None, :].expand(rows, cols)
    cell = torch.stack([col_index, row_index], dim=-1)[None, :, :, None, :]  # (1, S_h, S_w, 1, 2) as (x, y)
    grid = raw.new_tensor([cols, rows])
    box_xy = (torch.sigmoid(raw[..., 0:2]) + cell) / grid
    box_wh = torch.exp(raw[..., 2:4]) * anchors / grid
    box_confidence = torch.sigmoid(raw[..., 4:5])
    no_classes = num_classes == 0
    box_class_probs = torch.ones_like(box_confidence) if no_classes else torch.softmax(raw[..., 5:], dim=-1)
    return box_confidence, box_xy, box_wh, box_class_probs


def yolo_eval(
    yolo_outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    image_shape: Sequence[float] = (720.0, 1280.0),
    max_boxes: int = 10,
    score_threshold: float = 0.6,
    iou_threshold: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The course's ``yolo_eval``: :func:`yolo_head`'s four outputs for **one image** (batch of 1, or without
    the batch dimension) to ``(scores, boxes, classes)``: corners, score filter, scale to ``image_shape`` =
    (height, width) pixels, class-agnostic NMS, at most ``max_boxes``. Boxes are (y1, x1, y2, x2) pixels, as in
    the course.

    >>> feats = torch.full((1, 3, 3, 1 * 6), -10.0)  # 3 x 3 grid, one anchor of 1 x 1 cell, one class
    >>> feats[0, 1, 2] = torch.tensor([0.0, 0.0, 0.0, 0.0, 10.0, 0.0])  # something in row 1, column 2
    >>> scores, boxes, classes = yolo_eval(yolo_head(feats, [[1.0, 1.0]], 1), image_shape=(300.0, 600.0))
    >>> boxes.round().tolist(), classes.tolist()  # one cell of a 3 x 3 grid on a 600 x 300 image
    ([[100.0, 400.0, 200.0, 600.0]], [0])
    """
    box_confidence, box_xy, box_wh, box_class_probs = yolo_outputs
    if box_xy.ndim == 5 and len(box_xy) != 1:
        raise ConfigError(
            f"yolo_eval scores one image, got a batch of {len(box_xy)}",
            where="yolo_eval yolo_outputs",
            fix="call it per image: yolo_eval(tuple(t[i] for t in outputs))",
        )
    boxes = yolo_boxes_to_corners(box_xy, box_wh)
    scores, boxes, classes = yolo_filter_boxes(box_confidence, boxes, box_class_probs, score_threshold)
    boxes = scale_boxes(boxes, image_shape)
    return yolo_non_max_suppression(scores, boxes, classes, max_boxes, iou_threshold)


def _check_targets(boxes: torch.Tensor, labels: torch.Tensor, image_size: tuple[int, int], classes: int) -> None:
    if boxes.ndim != 2 or boxes.shape[-1] != 4 or labels.shape != boxes.shape[:1]:
        raise DataError(
            f"boxes must be (N, 4) xyxy with labels (N,), got {tuple(boxes.shape)} and {tuple(labels.shape)}",
            where="yolo_encode",
            fix="pass one class index per box",
        )
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        raise DataError(
            f"class ids must be in 0..{classes - 1}, got {labels.min().item()}..{labels.max().item()}",
            where="yolo_encode labels",
            fix="check num_classes against the dataset's class list",
        )
    sizes = boxes[:, 2:] - boxes[:, :2]
    if not bool((sizes > 0).all()):
        raise DataError(
            "every box needs x2 > x1 and y2 > y1 (a YOLO size is a logarithm: zero has none)",
            where="yolo_encode boxes",
            fix="drop zero-area boxes, or check the boxes are xyxy and not xywh",
        )
    height, width = image_size
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    inside = (centres >= 0).all(-1) & (centres[:, 0] <= width) & (centres[:, 1] <= height)
    if not bool(inside.all()):
        raise DataError(
            f"a box centre lies outside the {width} x {height} image, so no grid cell owns it",
            where="yolo_encode boxes",
            fix="clip the boxes to the image first",
        )


def yolo_encode(
    boxes_xyxy: torch.Tensor,
    labels: torch.Tensor,
    image_size: tuple[int, int],
    grid: int | tuple[int, int],
    anchors: torch.Tensor | Sequence[Sequence[float]],
    num_classes: int,
) -> torch.Tensor:
    """The other way round from :func:`yolo_head`: the raw output (S_h, S_w, A, 5 + C) a perfect YOLOv2 net
    would give for these boxes, so that ``yolo_head(yolo_encode(...)[None], anchors, num_classes)`` recovers
    them. Not a course function; the course shows this target only as a picture.

    Each box (``xyxy`` pixels of an image of ``image_size`` = (height, width)) goes to the grid cell holding its
    centre and to the anchor of most similar shape (largest shape IoU, YOLOv2's rule); ``grid`` is S or
    (S_h, S_w); ``anchors`` (A, 2) are (width, height) in grid cells. Channels per anchor, as ``yolo_head`` reads
    them: ``t_x, t_y`` = logit of the centre's offset inside its cell, ``t_w, t_h`` = log(size / anchor),
    ``t_o`` = +10 (sigmoid 0.99995) where a box is and -10 elsewhere, class logits +10 for the box's class and -10
    for the others (0 where no box is). When two boxes claim the same cell and anchor the later one wins, as in
    YOLOv2's training code. ``num_classes=0`` encodes a one-class detector (labels must be 0).

    >>> target = yolo_encode(torch.tensor([[40.0, 20.0, 440.0, 80.0]]), torch.tensor([1]), (300, 600), 3,
    ...                      [[1.0, 1.0], [2.0, 1.0]], num_classes=2)
    >>> target.shape, (target[..., 4] > 0).nonzero().tolist()  # row 0, column 1, the wide anchor
    (torch.Size([3, 3, 2, 7]), [[0, 1, 1]])
    """
    rows, cols = (grid, grid) if isinstance(grid, int) else grid
    dtype = boxes_xyxy.dtype if boxes_xyxy.is_floating_point() else torch.float32
    boxes = boxes_xyxy.to(dtype)
    anchors = _as_anchors(anchors, boxes, "yolo_encode anchors")
    _check_targets(boxes, labels, image_size, max(num_classes, 1))
    height, width = image_size
    scale = boxes.new_tensor([cols / width, rows / height])
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2 * scale  # in grid cells, (x, y)
    sizes = (boxes[:, 2:] - boxes[:, :2]) * scale
    cells = centres.floor().clamp(min=0).minimum(boxes.new_tensor([cols - 1, rows - 1])).long()
    best = shape_iou(sizes, anchors).argmax(1)

    target = boxes.new_zeros(rows, cols, len(anchors), 5 + num_classes)
    target[..., 4] = -_SURE
    values = boxes.new_full((len(boxes), 5 + num_classes), -_SURE)
    values[:, 0:2] = torch.logit(centres - cells, eps=_OFFSET_EPS)
    values[:, 2:4] = torch.log(sizes / anchors[best])
    values[:, 4] = _SURE
    if num_classes:
        values[torch.arange(len(boxes)), 5 + labels.long()] = _SURE
    slot = (cells[:, 1] * cols + cells[:, 0]) * len(anchors) + best
    order = torch.arange(len(boxes))
    last = torch.full((rows * cols * len(anchors),), -1).scatter_reduce(0, slot, order, "amax")
    winners = last[slot] == order
    target[cells[winners, 1], cells[winners, 0], best[winners]] = values[winners]
    return target
