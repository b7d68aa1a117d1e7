"""The YOLO training loss: which anchors of which cells are responsible for each true box, and the three
terms the course names (is there an object, where is it, which class).

Assignment as YOLOv5 (Jocher et al. 2020): a true box goes to every anchor of its scale whose width and
height are within ``anchor_ratio`` (4x) of the box's, in the box's own cell and the two neighbouring cells
nearest its centre (three times the positives of YOLOv2's one cell, one anchor; training converges in far
fewer epochs). Terms: box = mean ``1 - GIoU`` over the positives; objectness = BCE over every anchor of every
cell, the target at a positive being its (detached) IoU with the box; class = BCE against one-hot labels
over the positives. Weights are YOLOv5's, scaled for 3 levels and the class count.

>>> targets = torch.tensor([[[0, 8.0, 8.0, 40.0, 30.0]]])  # one image, one box of class 0
>>> outputs = [torch.zeros(1, 3, s, s, 7) for s in (8, 4, 2)]  # a 64x64 input, 3 anchors, 2 classes
>>> anchors = torch.tensor([[[8.0, 8.0], [16, 16], [24, 24]], [[30, 24], [40, 30], [50, 40]], [[60, 60]] * 3])
>>> loss, parts = yolo_loss(outputs, targets, anchors, [8, 16, 32], 64)
>>> sorted(parts), bool(loss > 0)
(['box', 'cls', 'obj', 'positives'], True)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from cnnlab.tasks.detect.boxes import convert, generalized_iou

LEVEL_BALANCE = (4.0, 1.0, 0.4)
"""Objectness weight per level, fine to coarse (YOLOv5): fine levels have many more cells, mostly empty."""

_NEIGHBOURS = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])


def assign(
    targets: torch.Tensor, anchors: torch.Tensor, stride: int, grid: tuple[int, int], anchor_ratio: float = 4.0
) -> tuple[torch.Tensor, ...]:
    """Positives of one level: ``(image, anchor, row, col, class, box)`` with ``box`` the true box as
    ``(cx - col, cy - row, w, h)`` in cells. ``targets`` (B, M, 5) rows ``[class, x1, y1, x2, y2]`` (class -1:
    padding), ``anchors`` (A, 2) in pixels, ``grid`` = (rows, cols).

    >>> t = torch.tensor([[[1, 10.0, 10.0, 30.0, 26.0]]])  # centre (20, 18) px = cell (2.5, 2.25) at stride 8
    >>> image, anchor, row, col, cls, box = assign(t, torch.tensor([[16.0, 16.0]]), 8, (8, 8))
    >>> list(zip(row.tolist(), col.tolist())), cls.tolist()  # its cell and the neighbours nearest the centre
    ([(2, 2), (1, 2)], [1, 1])
    """
    rows, cols = grid
    image, slot = (targets[..., 0] >= 0).nonzero(as_tuple=True)
    t = targets[image, slot]  # (n, 5)
    cxcywh = convert(t[:, 1:], "xyxy", "cxcywh") / stride  # (n, 4) in cells
    ratio = cxcywh[None, :, 2:] / (anchors[:, None, :] / stride)  # (A, n, 2)
    fits = torch.maximum(ratio, 1 / ratio).amax(-1) < anchor_ratio  # (A, n)
    anchor, index = fits.nonzero(as_tuple=True)
    xy = cxcywh[index, :2]
    back = torch.tensor([cols, rows], dtype=xy.dtype) - xy
    frac, frac_back = xy % 1, back % 1
    near = [
        torch.ones_like(frac[:, 0], dtype=torch.bool),
        (frac[:, 0] < 0.5) & (xy[:, 0] > 1),  # left neighbour
        (frac[:, 1] < 0.5) & (xy[:, 1] > 1),  # upper neighbour
        (frac_back[:, 0] < 0.5) & (back[:, 0] > 1),  # right neighbour
        (frac_back[:, 1] < 0.5) & (back[:, 1] > 1),  # lower neighbour
    ]
    which, pos = torch.stack(near).nonzero(as_tuple=True)  # (neighbour, positive) pairs
    cell = (xy[pos] - _NEIGHBOURS[which] * 0.5).floor()  # (x, y) of the responsible cell
    col = cell[:, 0].long().clamp(0, cols - 1)
    row = cell[:, 1].long().clamp(0, rows - 1)
    box = torch.cat([xy[pos] - torch.stack([col, row], 1).to(xy), cxcywh[index[pos], 2:]], 1)
    return image[index[pos]], anchor[pos], row, col, t[index[pos], 0].long(), box


def yolo_loss(
    outputs: Sequence[torch.Tensor],
    targets: torch.Tensor,
    anchors: torch.Tensor,
    strides: Sequence[int],
    image_side: int,
    anchor_ratio: float = 4.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The training loss of a :class:`~cnnlab.models.detect.yolo.YoloDetector`'s raw ``outputs`` (per level
    ``(B, A, H, W, 5 + K)``) for ``targets`` (B, M, 5); ``anchors`` (L, A, 2) pixels. Returns the total and
    its parts (``box``, ``obj``, ``cls`` and the number of ``positives``), detached, for the log."""
    levels = len(outputs)
    num_classes = outputs[0].shape[-1] - 5
    box_loss = obj_loss = cls_loss = outputs[0].new_zeros((), dtype=torch.float32)
    positives = 0
    for level, raw in enumerate(outputs):
        raw = raw.float()
        _, _, rows, cols, _ = raw.shape
        stride = strides[level]
        image, anchor, row, col, cls, box = assign(targets, anchors[level], stride, (rows, cols), anchor_ratio)
        objectness = torch.zeros(raw.shape[:4], dtype=raw.dtype, device=raw.device)
        if len(image):
            p = raw[image, anchor, row, col]  # (P, 5 + K)
            xy = p[:, :2].sigmoid() * 2 - 0.5
            wh = (p[:, 2:4].sigmoid() * 2) ** 2 * anchors[level][anchor] / stride
            giou = generalized_iou(convert(torch.cat([xy, wh], 1), "cxcywh", "xyxy"), convert(box, "cxcywh", "xyxy"))
            box_loss = box_loss + (1 - giou).mean()
            objectness[image, anchor, row, col] = giou.detach().clamp(min=0)
            if num_classes > 1:
                cls_loss = cls_loss + F.binary_cross_entropy_with_logits(
                    p[:, 5:], F.one_hot(cls, num_classes).to(p.dtype)
                )
            positives += len(image)
        balance = LEVEL_BALANCE[level] if levels == len(LEVEL_BALANCE) else 1.0
        obj_loss = obj_loss + balance * F.binary_cross_entropy_with_logits(raw[..., 4], objectness)
    scale = 3 / levels
    total = (
        0.05 * scale * box_loss
        + 1.0 * scale * (image_side / 640) ** 2 * obj_loss
        + 0.5 * scale * num_classes / 80 * cls_loss
    )
    parts = {"box": box_loss.detach(), "obj": obj_loss.detach(), "cls": cls_loss.detach()}
    return total, parts | {"positives": torch.tensor(float(positives))}
