"""The Trainer with detection steps: the YOLO loss on raw level maps, mAP over the whole validation set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from cnnlab.models.detect.yolo import YoloDetector
from cnnlab.tasks.detect.decode import detections
from cnnlab.tasks.detect.loss import yolo_loss
from cnnlab.tasks.detect.metrics import evaluate_detections
from cnnlab.train.config import TrainConfig
from cnnlab.train.trainer import Batch, Callback, Logs, Trainer


def truth_of(targets: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """Padded targets (B, M, 5) -> one ``{"boxes", "labels"}`` dict per image (padding rows dropped).

    >>> truth_of(torch.tensor([[[1.0, 0, 0, 4, 4], [-1, 0, 0, 0, 0]]]))[0]["labels"].tolist()
    [1]
    """
    out = []
    for rows in targets:
        rows = rows[rows[:, 0] >= 0]
        out.append({"boxes": rows[:, 1:].float(), "labels": rows[:, 0].long()})
    return out


class MeanAveragePrecision:
    """A Trainer metric: collects detections and truth per image, scores them all at the end
    (``map50`` = VOC all-point AP@0.5, ``map50_95`` = COCO AP@[.5:.95])."""

    def __init__(self, class_names: Sequence[str]) -> None:
        self.class_names = list(class_names)
        self.reset()

    def reset(self) -> None:
        self.predictions: list[dict[str, torch.Tensor]] = []
        self.truth: list[dict[str, torch.Tensor]] = []

    def update(self, outputs: Any, targets: torch.Tensor) -> None:
        self.predictions += outputs
        self.truth += truth_of(targets)

    def result(self) -> dict[str, float]:
        scores = evaluate_detections(self.predictions, self.truth, self.class_names)
        return {"map50": scores.voc_map50, "map50_95": scores.coco_ap}


class DetectionTrainer(Trainer):
    """The :class:`~cnnlab.train.trainer.Trainer` with YOLO steps for a :class:`YoloDetector`.

    Logs ``loss`` and its parts ``box``, ``obj``, ``cls`` per batch; evaluation adds ``map50`` and
    ``map50_95`` over the whole set (detections at ``score_threshold`` 0.001, as every mAP tool).

    >>> from cnnlab.data.loader import TensorLoader
    >>> from cnnlab.models import create_model
    >>> net = create_model("yolo_tiny", num_classes=2, width=4)
    >>> x, y = torch.rand(2, 3, 64, 64), torch.tensor([[[0, 8.0, 8, 40, 30]], [[1, 20.0, 20, 60, 50]]])
    >>> trainer = DetectionTrainer(net, TrainConfig(epochs=1, batch_size=2, monitor="val_map50"), class_names="ab")
    >>> sorted(trainer.fit(TensorLoader(x, y, batch_size=2))[0])
    ['box', 'cls', 'epoch', 'loss', 'lr', 'obj', 'time_s']
    >>> sorted(trainer.evaluate(TensorLoader(x, y, batch_size=2)))
    ['box', 'cls', 'loss', 'map50', 'map50_95', 'obj']
    """

    def __init__(
        self,
        model: YoloDetector,
        config: TrainConfig | None = None,
        *,
        callbacks: Sequence[Callback] = (),
        class_names: Sequence[str],
        score_threshold: float = 0.001,
        iou_threshold: float = 0.6,
        max_detections: int = 100,
    ) -> None:
        super().__init__(model, config, callbacks=callbacks, metrics=[MeanAveragePrecision(class_names)])
        self.select = {"score_threshold": score_threshold, "iou_threshold": iou_threshold}
        self.select["max_detections"] = max_detections

    def _loss(
        self, outputs: list[torch.Tensor], targets: torch.Tensor, side: int
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        loss, parts = yolo_loss(outputs, targets, self.model.anchors, self.model.strides, side)
        return loss, {k: v for k, v in parts.items() if k != "positives"}

    def train_step(self, batch: Batch) -> Logs:
        x, y = self.prepare(batch)
        with self.autocast():
            outputs = self.model(x)
        loss, parts = self._loss(outputs, y, max(x.shape[-2:]))
        self.optimise(loss)
        return {"loss": loss.detach(), **parts}

    def eval_step(self, batch: Batch) -> Logs:
        x, y = self.prepare(batch)
        with self.autocast():
            outputs = self.eval_model(x)
        loss, parts = self._loss(outputs, y, max(x.shape[-2:]))
        self.update_metrics(detections(self.eval_model.decode(outputs), **self.select), y)
        return {"loss": loss, **parts}

    def predict_step(self, batch: Batch) -> torch.Tensor:
        """Decoded candidates ``(B, N, 5 + K)`` for one batch (the input of :func:`detections`)."""
        x, _ = self.prepare(batch)
        with self.autocast():
            return self.eval_model.decode(self.eval_model(x))
