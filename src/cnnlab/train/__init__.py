"""Training: the Trainer, its callbacks, metrics and the CPU speed plan (imports core only)."""

from cnnlab.train.config import TrainConfig
from cnnlab.train.trainer import Callback, Trainer

__all__ = ["Callback", "TrainConfig", "Trainer"]
