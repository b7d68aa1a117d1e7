"""Semantic segmentation: image + mask folders -> U-Net (or an encoder-decoder of the zoo) -> pixel accuracy,
IoU and Dice per class; overlap-tile prediction of images of any size.

Files: ``config`` (SegmentRunConfig and the U-Net recipe), ``losses``, ``metrics`` (confusion -> IoU/Dice,
as a metric object for the trainer), ``tiling`` (overlap-tile inference), ``trainer``, ``model``,
``figures`` (image | truth | prediction | errors), ``pipeline`` (the run), ``predictor`` (a checkpoint as
a :class:`~cnnlab.tasks.segment.predictor.SegmentationModel`; ``cnnlab predict`` writes masks).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnlab.tasks.base import PredictOptions, Task
from cnnlab.tasks.segment.config import SegmentRunConfig
from cnnlab.tasks.segment.pipeline import run_segmentation
from cnnlab.tasks.segment.predictor import SegmentationModel, predict_masks


def _predict(checkpoint: Path, images: Sequence[Path], options: PredictOptions) -> list[dict[str, Any]]:
    return predict_masks(checkpoint, images, options.out)


TASK = Task(
    name="segment",
    summary="a class per pixel (an image folder and a mask folder paired by file name)",
    config_type=SegmentRunConfig,
    run=run_segmentation,
    load=SegmentationModel.load,
    predict=_predict,
    routes=("segment",),
    options={
        "masks": "segment.masks",
        "loss": "segment.loss",
        "num_classes": "segment.num_classes",
        "patch_size": "segment.crop",
    },
)

__all__ = ["TASK", "SegmentRunConfig", "SegmentationModel", "predict_masks", "run_segmentation"]
