"""The settings of a segmentation run (``task: segment`` in ``config.yaml``) and the measured U-Net recipe.

>>> SegmentRunConfig().segment.loss, SegmentRunConfig().train.monitor
('bce_dice', 'val_dice')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from cnnlab.core.errors import ConfigError
from cnnlab.tasks.config import DataConfig, ModelConfig
from cnnlab.train.config import TrainConfig


@dataclass(frozen=True)
class SegmentConfig:
    """What makes a segmentation run different from a classification run."""

    masks: str | None = None  # mask folder, paired with data.source by file stem
    num_classes: int = 2  # binary masks may hold {0, 1} or {0, 255}; more classes: indices 0..K-1
    classes: tuple[str, ...] | None = None  # class names (default background/foreground, or 0..K-1)
    loss: str = "bce_dice"  # ce | bce | dice | bce_dice | focal (BCE + Dice: thin structures such as membranes)
    crop: int | None = None  # training patch side (None: chosen from the image size, see pipeline.patch_size)
    repeats: int = 2  # random patches per image per epoch
    elastic: float = 0.0  # elastic deformation: displacement std in pixels (the paper: 10; 0: off)
    depth: int | None = None  # model options passed to the builder when set (unet: depth, base_width, padding)
    base_width: int | None = None  # None: the builder's default (unet in a segment run: UNET_RECIPE's 16)
    padding: Literal["same", "valid"] | None = "same"
    batch_norm: bool | None = None  # unet: BatchNorm after every 3x3 conv (None: UNET_RECIPE's, on)
    tile: int = 256  # overlap-tile inference window for predict (and validation of unpadded nets)
    margin: int = 32  # context each tile keeps on every side
    encoder_weights: str | None = None  # pretrained encoder (unet_lite0: efficientnet_lite0.imagenet or a path)


def _default_data() -> DataConfig:
    return DataConfig(source="", aug="segmentation", val_fraction=0.2)


def _default_train() -> TrainConfig:
    return TrainConfig(epochs=40, batch_size=4, eval_batch_size=2, lr=3e-3, monitor="val_dice")


@dataclass(frozen=True)
class SegmentRunConfig:
    """Everything a segmentation run is made of (``--config run.yaml`` holds the same, with ``task: segment``)."""

    task: Literal["segment"] = "segment"
    name: str | None = None
    data: DataConfig = field(default_factory=_default_data)
    model: ModelConfig = field(default_factory=lambda: ModelConfig(name="unet"))
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    train: TrainConfig = field(default_factory=_default_train)


def class_names(config: SegmentConfig) -> list[str]:
    """The configured class names, checked against ``num_classes``."""
    if config.classes is not None:
        if len(config.classes) != config.num_classes:
            raise ConfigError(
                f"{len(config.classes)} class names for {config.num_classes} classes",
                where="segment.classes",
                fix="give one name per class, in index order",
            )
        return list(config.classes)
    return ["background", "foreground"] if config.num_classes == 2 else [str(i) for i in range(config.num_classes)]


UNET_RECIPE: dict[str, Any] = {"base_width": 16, "batch_norm": True}
"""What a segmentation run's ``unet`` gets where the config is silent: the measured ISBI recipe
(docs/segmentation.md). ``create_model("unet")`` on its own stays the 2015 paper's network."""


def model_options(config: SegmentConfig, model_name: str) -> dict[str, Any]:
    """Builder keyword arguments: what the config sets (``depth``, ``base_width``, ``padding``,
    ``batch_norm``), over :data:`UNET_RECIPE` for ``unet``.

    >>> model_options(SegmentConfig(base_width=8), "unet")
    {'base_width': 8, 'batch_norm': True, 'padding': 'same'}
    """
    options = {
        "depth": config.depth,
        "base_width": config.base_width,
        "padding": config.padding,
        "batch_norm": config.batch_norm,
    }
    chosen = {k: v for k, v in options.items() if v is not None}
    return UNET_RECIPE | chosen if model_name == "unet" else chosen
