"""A time estimate printed once training has measured itself: seconds per step (after warm-up steps)
x steps per epoch x epochs, plus validation."""

from __future__ import annotations

import time

from rich.console import Console

from cnnlab.core.rundir import RunDir
from cnnlab.train.trainer import Callback, Logs, Trainer


class TimeEstimate(Callback):
    """After ``warmup + measure`` training steps, print and log the estimated training time.

    >>> estimate = TimeEstimate(Console(file=None), None, warmup=0, measure=2)
    >>> estimate.describe(0.6, 10, 3, 1)
    'about 0.3 min: 0.60 s/step x 10 steps x 3 epochs (epoch 1 on; validation not included)'
    """

    def __init__(self, console: Console, run: RunDir | None, warmup: int = 2, measure: int = 5) -> None:
        self.console, self.run = console, run
        self.warmup, self.measure = warmup, measure
        self._steps = self._epochs = self._seen = 0
        self._start: float | None = None
        self._done = False

    def on_fit_start(self, trainer: Trainer, logs: Logs) -> None:
        self._steps, self._epochs = logs["steps_per_epoch"], logs["epochs"]
        self._seen, self._start, self._done = 0, None, False

    def on_batch_end(self, trainer: Trainer, logs: Logs) -> None:
        if self._done:
            return
        self._seen += 1
        if self._seen == self.warmup:
            self._start = time.perf_counter()
        if self._start is not None and self._seen == self.warmup + self.measure:
            per_step = (time.perf_counter() - self._start) / self.measure
            line = self.describe(per_step, self._steps, self._epochs, trainer.epoch + 1)
            self.console.print(f"Time estimate: {line}")
            if self.run is not None:
                self.run.log(f"time estimate: {line}")
            self._done = True

    @staticmethod
    def describe(per_step: float, steps: int, epochs: int, first_epoch: int) -> str:
        left = epochs - first_epoch + 1
        minutes = per_step * steps * left / 60
        return (
            f"about {minutes:.1f} min: {per_step:.2f} s/step x {steps} steps x {left} epochs "
            f"(epoch {first_epoch} on; validation not included)"
        )
