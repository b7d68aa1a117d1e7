"""The learning-rate range test (Smith 2017, fastai's ``lr_find``): train briefly while the LR grows
exponentially, watch the loss, suggest an LR well inside the longest fall of the loss.

The model and optimiser are restored afterwards, so the test leaves no trace.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass

from cnnlab.core.errors import DataError
from cnnlab.train.trainer import Batch, BatchSource, Trainer


@dataclass(frozen=True)
class LRFinderResult:
    """LRs tried, the smoothed loss at each, and the suggested LR (fastai's "valley" rule)."""

    lrs: list[float]
    losses: list[float]
    suggestion: float


def find_lr(
    trainer: Trainer,
    data: BatchSource,
    start_lr: float = 1e-6,
    end_lr: float = 1.0,
    steps: int = 100,
    smoothing: float = 0.9,
    diverge_factor: float = 4.0,
) -> LRFinderResult:
    """Run the range test with ``trainer.train_step``; stops early once the loss diverges.

    >>> import torch
    >>> from torch import nn
    >>> from cnnlab.data.loader import TensorLoader
    >>> from cnnlab.train.config import TrainConfig
    >>> x, y = torch.randn(256, 8), torch.randint(0, 2, (256,))
    >>> trainer = Trainer(nn.Linear(8, 2), TrainConfig(precision="fp32", schedule="constant"))
    >>> result = find_lr(trainer, TensorLoader(x, y, 16, shuffle=True), steps=30)
    >>> 1e-6 <= result.suggestion <= 1.0 and len(result.lrs) == len(result.losses)
    True
    """
    if len(data) == 0:  # the range test cycles over the data: without batches it would never end
        raise DataError("no training batches: the training set is empty", fix="check the data folder or split")
    saved_model = copy.deepcopy(trainer.model.state_dict())
    saved_optimizer = copy.deepcopy(trainer.optimizer.state_dict())
    saved_scheduler, trainer.scheduler = trainer.scheduler, None
    factor = (end_lr / start_lr) ** (1 / max(steps - 1, 1))
    lrs: list[float] = []
    losses: list[float] = []
    smoothed, best = 0.0, math.inf
    trainer.model.train()
    try:
        for step, batch in enumerate(_cycle(data)):
            if step >= steps:
                break
            lr = start_lr * factor**step
            for group in trainer.optimizer.param_groups:
                group["lr"] = lr
            loss = trainer.train_step(batch)["loss"].item()  # one sync per step: this is a diagnostic
            smoothed = smoothing * smoothed + (1 - smoothing) * loss
            value = smoothed / (1 - smoothing ** (step + 1))  # bias-corrected running mean
            lrs.append(lr)
            losses.append(value)
            best = min(best, value)
            if not math.isfinite(value) or value > diverge_factor * best:
                break
    finally:
        trainer.model.load_state_dict(saved_model)
        trainer.optimizer.load_state_dict(saved_optimizer)
        trainer.scheduler = saved_scheduler
    return LRFinderResult(lrs, losses, _valley(lrs, losses))


def _cycle(data: BatchSource) -> Iterator[Batch]:
    epoch = 0
    while True:
        yield from data.batches(epoch)
        epoch += 1


def _valley(lrs: list[float], losses: list[float]) -> float:
    """fastai's "valley" rule: the longest stretch of falling loss, and an LR about halfway down it.

    Robust to the noisy first steps where a plain steepest-slope rule picks the smallest LR.

    >>> _valley([1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0], [2.0, 1.9, 1.5, 1.0, 0.8, 3.0])
    0.0001
    """
    if not lrs:
        return float("nan")
    n = len(losses)
    run = [1] * n  # run[i]: length of the longest decreasing subsequence ending at i
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and run[i] < run[j] + 1:
                run[i] = run[j] + 1
        if run[end] < run[i]:
            end = i
            start = end - run[end] + 1
    third = (end - start) / 3
    return lrs[start + int(third) + int(third / 2)]
