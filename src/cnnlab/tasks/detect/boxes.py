"""Boxes as tensors: one internal format (``xyxy``: absolute pixel corners, continuous coordinates),
conversions from and to the formats datasets and other tools use, areas and pairwise IoU.

Formats: ``xyxy`` (x1, y1, x2, y2; ours, torchvision's), ``xywh`` (x, y, width, height; COCO JSON),
``cxcywh`` (centre and size in pixels), ``yolo`` (centre and size as fractions of the image; YOLO txt),
``yxyx`` (KerasCV's default). A box covering pixel columns 0..9 has x1 = 0 and x2 = 10.

>>> b = torch.tensor([[2.0, 1.0, 4.0, 3.0], [1.0, 2.0, 3.0, 4.0]])
>>> box_iou(b[:1], b[1:]).item()  # the course's worked example: 1/7
0.1428571492433548
>>> convert(torch.tensor([[10.0, 20.0, 30.0, 60.0]]), "xyxy", "yolo", size=(100, 200)).tolist()
[[0.10000000149011612, 0.4000000059604645, 0.10000000149011612, 0.4000000059604645]]
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

from cnnlab.core.errors import ConfigError

BoxFormat = Literal["xyxy", "xywh", "cxcywh", "yolo", "yxyx"]
FORMATS: tuple[str, ...] = get_args(BoxFormat)


def _check_format(name: str) -> None:
    if name not in FORMATS:
        raise ConfigError(f"unknown box format {name!r}", where="box format", fix=f"use one of {', '.join(FORMATS)}")


def convert(boxes: torch.Tensor, src: BoxFormat, dst: BoxFormat, size: tuple[int, int] | None = None) -> torch.Tensor:
    """``boxes`` (..., 4) from format ``src`` to ``dst``; ``size`` = (height, width) of the image, needed
    when either side is ``yolo`` (normalised).

    >>> convert(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), "xywh", "xyxy").tolist()
    [[1.0, 2.0, 4.0, 6.0]]
    >>> convert(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), "xyxy", "yxyx").tolist()
    [[2.0, 1.0, 4.0, 3.0]]
    """
    _check_format(src)
    _check_format(dst)
    if "yolo" in (src, dst) and size is None:
        raise ConfigError("the yolo box format is normalised: pass size=(height, width)", where="convert")
    xyxy = _to_xyxy(boxes.float(), src, size)
    return _from_xyxy(xyxy, dst, size)


def _to_xyxy(b: torch.Tensor, src: str, size: tuple[int, int] | None) -> torch.Tensor:
    a0, a1, a2, a3 = b.unbind(-1)
    if src == "xyxy":
        return b
    if src == "yxyx":
        return torch.stack([a1, a0, a3, a2], -1)
    if src == "xywh":
        return torch.stack([a0, a1, a0 + a2, a1 + a3], -1)
    if src == "yolo":
        assert size is not None
        height, width = size
        a0, a1, a2, a3 = a0 * width, a1 * height, a2 * width, a3 * height
    return torch.stack([a0 - a2 / 2, a1 - a3 / 2, a0 + a2 / 2, a1 + a3 / 2], -1)  # cxcywh (or scaled yolo)


def _from_xyxy(b: torch.Tensor, dst: str, size: tuple[int, int] | None) -> torch.Tensor:
    x1, y1, x2, y2 = b.unbind(-1)
    if dst == "xyxy":
        return b
    if dst == "yxyx":
        return torch.stack([y1, x1, y2, x2], -1)
    if dst == "xywh":
        return torch.stack([x1, y1, x2 - x1, y2 - y1], -1)
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    if dst == "yolo":
        assert size is not None
        height, width = size
        cx, cy, w, h = cx / width, cy / height, w / width, h / height
    return torch.stack([cx, cy, w, h], -1)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Areas of ``xyxy`` boxes (..., 4); reversed corners count as zero.

    >>> box_area(torch.tensor([[0.0, 0.0, 2.0, 3.0], [5.0, 5.0, 4.0, 9.0]])).tolist()
    [6.0, 0.0]
    """
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def _intersection(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    return (bottom_right - top_left).clamp(min=0).prod(-1)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Intersection over union of every ``xyxy`` box in ``a`` (N, 4) with every box in ``b`` (M, 4): (N, M).
    Two zero-area boxes have IoU 0.

    >>> box_iou(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[1.0, 0.0, 3.0, 2.0], [5, 5, 6, 6]]))
    tensor([[0.3333, 0.0000]])
    """
    inter = _intersection(a, b)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def iou(box1: tuple[float, float, float, float], box2: tuple[float, float, float, float]) -> float:
    """The course's ``iou(box1, box2)`` on two corner tuples ``(x1, y1, x2, y2)``.

    >>> round(iou((2, 1, 4, 3), (1, 2, 3, 4)), 6)
    0.142857
    """
    return float(box_iou(torch.tensor([box1], dtype=torch.float64), torch.tensor([box2], dtype=torch.float64)))


def generalized_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Element-wise generalised IoU of paired ``xyxy`` boxes (N, 4) and (N, 4): IoU minus the share of the
    smallest enclosing box that neither covers (Rezatofighi et al. 2019); in (-1, 1], differentiable.

    >>> generalized_iou(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.tensor([[2.0, 0.0, 3.0, 1.0]]))
    tensor([-0.3333])
    """
    top_left = torch.maximum(a[:, :2], b[:, :2])
    bottom_right = torch.minimum(a[:, 2:], b[:, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)
    union = box_area(a) + box_area(b) - inter
    hull = (torch.maximum(a[:, 2:], b[:, 2:]) - torch.minimum(a[:, :2], b[:, :2])).clamp(min=0).prod(-1)
    eps = 1e-7
    return inter / (union + eps) - (hull - union) / (hull + eps)
