"""From a detector's decoded candidates to each image's detections: score = objectness x class probability
for every (anchor, class) pair (an anchor may report two classes, as YOLOv5's multi-label NMS), the best
``max_candidates`` above ``score_threshold``, then class-aware non-max suppression.

>>> decoded = torch.tensor([[[0.0, 0.0, 10.0, 10.0, 0.9, 0.9, 0.1], [1.0, 1.0, 10.0, 10.0, 0.8, 0.9, 0.1]]])
>>> out = detections(decoded, score_threshold=0.25, iou_threshold=0.5)
>>> out[0]["boxes"].tolist(), [round(s, 2) for s in out[0]["scores"].tolist()], out[0]["labels"].tolist()
([[0.0, 0.0, 10.0, 10.0]], [0.81], [0])
"""

from __future__ import annotations

import torch

from cnnlab.tasks.detect.nms import select_detections


def detections(
    decoded: torch.Tensor,
    score_threshold: float = 0.25,
    iou_threshold: float = 0.6,
    max_detections: int = 100,
    max_candidates: int = 3000,
) -> list[dict[str, torch.Tensor]]:
    """Per image of ``decoded`` (B, N, 4 + 1 + K: ``xyxy`` boxes, objectness, class probabilities): a dict of
    ``boxes`` (D, 4), ``scores`` (D,) and ``labels`` (D,), highest score first."""
    out = []
    for image in decoded.float():
        scores = image[:, 4:5] * image[:, 5:]  # (N, K)
        anchor, label = (scores >= score_threshold).nonzero(as_tuple=True)
        values = scores[anchor, label]
        if len(values) > max_candidates:
            values, best = values.topk(max_candidates)
            anchor, label = anchor[best], label[best]
        out.append(select_detections(image[anchor, :4], values, label, score_threshold, iou_threshold, max_detections))
    return out
