"""The settings of a detection run (``task: detect`` in ``config.yaml``).

>>> DetectRunConfig().model.name, DetectRunConfig().train.monitor
('yolo_lite0', 'val_map50')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cnnlab.tasks.config import DataConfig, ModelConfig
from cnnlab.train.config import TrainConfig


@dataclass(frozen=True)
class DetectConfig:
    """What makes a detection run different from a classification run."""

    split: str | None = None  # the training split of a dataset that names splits (VOC ImageSets, data.yaml)
    val_split: str | None = None  # its validation split (None: "val" when the dataset has one, else held out)
    anchors: tuple[tuple[float, float], ...] | None = None  # (w, h) pixels at the input size; None: k-means
    anchors_per_level: int = 3
    backbone_weights: str | None = "auto"  # auto: ImageNet weights for the backbone when the file is found
    width: int | None = None  # pyramid channels (None: the model's default)
    backbone: str | None = None  # the zoo backbone of model `yolo` (None: efficientnet_lite0)
    freeze_stride: int | None = None  # backbone layers up to this stride stay as loaded (None: 4 when pretrained)
    score_threshold: float = 0.001  # detections kept for mAP (low, as every mAP tool; predict uses 0.25)
    iou_threshold: float = 0.6  # class-aware NMS
    max_detections: int = 100
    fit: Literal["stretch", "pad"] = "stretch"


def _default_data() -> DataConfig:
    return DataConfig(source="", aug="auto", val_fraction=0.2)


def _default_train() -> TrainConfig:
    """fp32: EfficientNet-Lite0's depthwise convs trained slower in bf16 on the dev machine (1.69 vs 1.42 s/step)."""
    return TrainConfig(
        epochs=None, batch_size=8, eval_batch_size=8, lr=2e-3, schedule="cosine", warmup_fraction=0.05,
        monitor="val_map50", precision="fp32",
    )  # fmt: skip


@dataclass(frozen=True)
class DetectRunConfig:
    """Everything a detection run is made of (``--config run.yaml`` holds the same, with ``task: detect``)."""

    task: Literal["detect"] = "detect"
    name: str | None = None
    data: DataConfig = field(default_factory=_default_data)
    model: ModelConfig = field(default_factory=lambda: ModelConfig(name="yolo_lite0"))
    detect: DetectConfig = field(default_factory=DetectConfig)
    train: TrainConfig = field(default_factory=_default_train)
