"""Training settings as one frozen dataclass (written into every run folder as config.yaml)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from cnnlab.core.errors import ConfigError
from cnnlab.runtime.device import check_device_request


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides how a model is trained.

    >>> TrainConfig(epochs=3).epochs, TrainConfig(device="CUDA:1").device
    (3, 'cuda:1')
    >>> TrainConfig(epochs=-1)
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.ConfigError: epochs must be >= 1. Received: epochs=-1 [TrainConfig]. Fix: pass a positive number
    """

    epochs: int | None = 10  # None: a run pipeline chooses from the data (cnnlab.tasks.classify.defaults)
    batch_size: int | None = 128  # None: likewise
    eval_batch_size: int = 1024
    optimizer: Literal["sgd", "adam", "adamw"] = "adamw"
    lr: float = 3e-3
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: Literal["constant", "onecycle", "cosine", "step"] = "onecycle"
    warmup_fraction: float = 0.2  # onecycle: rising part; cosine/step: linear warm-up
    step_epochs: int = 10  # schedule "step": multiply the LR by step_gamma every step_epochs epochs
    step_gamma: float = 0.1
    label_smoothing: float = 0.0
    grad_clip: float | None = None
    ema_decay: float | None = None  # e.g. 0.999: evaluate an exponential moving average of the weights
    precise_bn: bool = False  # after the last epoch, BatchNorm statistics of the training inputs (train.precise_bn)
    deterministic: bool = False  # torch.use_deterministic_algorithms (reproducible, sometimes slower)
    seed: int = 0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # per device: cnnlab.runtime.precision.plan_speed
    channels_last: bool = True
    compile: bool = False  # torch.compile the model for training (off: no measured bf16 gain, 10-25 s to compile)
    fast_dropout: bool = True  # swap nn.Dropout for HashDropout while training (same layer, faster masks)
    monitor: str = "val_acc"
    device: str = "auto"  # auto (CUDA, then MPS, then CPU) | cpu | cuda | cuda:N | mps; checked when training starts

    def __post_init__(self) -> None:
        # The spelling only: a config written on a GPU machine still loads (to evaluate, predict) on any other.
        object.__setattr__(self, "device", check_device_request(self.device))
        for name in ("epochs", "batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(
                    f"{name} must be >= 1. Received: {name}={value}", where="TrainConfig", fix="pass a positive number"
                )
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be > 0. Received: lr={self.lr}", where="TrainConfig", fix="try 1e-3")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(
                f"label_smoothing must be in [0, 1). Received: {self.label_smoothing}", where="TrainConfig"
            )
        if not 0 <= self.warmup_fraction < 1:
            raise ConfigError(
                f"warmup_fraction must be in [0, 1). Received: {self.warmup_fraction}", where="TrainConfig"
            )
