"""Object detection: boxes, IoU and non-max suppression, the course's ladder from localisation to YOLO,
a grid + anchors detector on any zoo backbone, and mAP in three labelled conventions.

Files: ``boxes`` (formats, IoU), ``nms``, ``course`` (the course's YOLO functions), ``anchors`` (k-means),
``loss`` (assignment + YOLO loss), ``decode``, ``trainer``, ``metrics`` (VOC07 / VOC / COCO AP),
``metric_figures``, ``pictures``, ``report``, ``config``, ``splits``, ``pipeline`` (the run),
``predictor`` (a checkpoint as a :class:`~cnnlab.tasks.detect.predictor.Detector`), ``faces`` (the pretrained
Tiny-YOLOv2 face detector), ``ladder`` (localisation, landmarks, sliding windows).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnlab.tasks.base import PredictOptions, Task
from cnnlab.tasks.detect.config import DetectRunConfig
from cnnlab.tasks.detect.pipeline import run_detection
from cnnlab.tasks.detect.predictor import Detector, predict_boxes


def _predict(checkpoint: Path, images: Sequence[Path], options: PredictOptions) -> list[dict[str, Any]]:
    return predict_boxes(checkpoint, images, options.out)


def _evaluate(target: Path, data: str | None, split: str | None, out: Path | None) -> dict[str, Any]:
    from cnnlab.tasks.detect.evaluate import evaluate_run

    return evaluate_run(target, data, split, out)


TASK = Task(
    name="detect",
    summary="boxes with classes (Pascal-VOC XML, YOLO txt + data.yaml, or COCO JSON)",
    config_type=DetectRunConfig,
    run=run_detection,
    load=Detector.load,
    predict=_predict,
    evaluate=_evaluate,
    exportable=True,
    routes=("detect",),
)

__all__ = ["TASK", "DetectRunConfig", "Detector", "predict_boxes", "run_detection"]
