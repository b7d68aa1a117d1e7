"""The settings of a classification run (``config.yaml`` of ``runs/classify/<name>-<n>``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cnnlab.tasks.config import DataConfig, ModelConfig
from cnnlab.train.config import TrainConfig
from cnnlab.train.distributed import (
    DistributedConfig,
)
from cnnlab.transfer import (
    TransferConfig,
)


@dataclass(frozen=True)
class RunConfig:
    """Everything a classification run is made of (``--config run.yaml`` holds the same)."""

    task: Literal["classify"] = "classify"
    name: str | None = None  # run folder name (default: the model name)
    tta: str = "none"  # test-time augmentation of the final held-out score: none | flip | five_crop | ten_crop
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=None, batch_size=None))  # from the data
    transfer: TransferConfig = field(default_factory=TransferConfig)  # reuse pretrained weights (cnnlab.transfer)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)  # under torchrun (--nproc N)
