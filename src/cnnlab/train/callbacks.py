"""Callbacks for the Trainer: progress bar, run-folder logging, checkpoints, early stopping."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from cnnlab.core.errors import ConfigError
from cnnlab.core.rundir import RunDir, save_checkpoint
from cnnlab.train.trainer import Callback, Logs, Trainer


class ProgressBar(Callback):
    """A rich progress bar per epoch: loss, accuracy, samples (images, series, clips) per second and ETA.

    The running loss is read from the trainer at most every ``refresh_s`` seconds, so the bar
    adds no per-batch host sync.
    """

    def __init__(self, console: Console | None = None, refresh_s: float = 0.5) -> None:
        self.console = console or Console(stderr=True)
        self.refresh_s = refresh_s
        self._progress: Progress | None = None
        self._task: Any = None
        self._samples = 0
        self._started = 0.0
        self._shown = 0.0
        self._last_batch = 0.0
        self._epochs = 0
        self._steps = 0

    def on_fit_start(self, trainer: Trainer, logs: Logs) -> None:
        self._epochs = logs["epochs"]
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        self._steps = logs["steps_per_epoch"]

    def on_epoch_start(self, trainer: Trainer, logs: Logs) -> None:
        assert self._progress is not None
        self._task = self._progress.add_task(
            f"{trainer.epoch + 1}/{self._epochs}", total=self._steps, completed=logs["start_step"], stats=""
        )
        self._samples, self._started, self._shown = 0, time.perf_counter(), 0.0
        self._last_batch = self._started

    def on_batch_end(self, trainer: Trainer, logs: Logs) -> None:
        assert self._progress is not None
        self._samples += logs["batch_size"]
        now = self._last_batch = time.perf_counter()
        fields = {}
        if now - self._shown >= self.refresh_s:
            self._shown = now
            rate = self._samples / max(now - self._started, 1e-9)
            acc = trainer.running_mean("acc")  # NaN for tasks that log no accuracy (detection)
            shown = f"loss {trainer.running_mean('loss'):.4f}" + ("" if math.isnan(acc) else f"  acc {acc:.3f}")
            fields["stats"] = f"{shown}  {rate:,.0f} samples/s"
        self._progress.update(self._task, advance=1, **fields)

    def on_epoch_end(self, trainer: Trainer, logs: Logs) -> None:
        assert self._progress is not None
        rate = self._samples / max(self._last_batch - self._started, 1e-9)
        self._progress.update(self._task, stats=_format_logs(logs) + f"  {rate:,.0f} samples/s")

    def on_fit_end(self, trainer: Trainer, logs: Logs) -> None:
        if self._progress is not None:
            self._progress.stop()


class RunLogger(Callback):
    """Writes ``metrics.csv`` (atomically, every epoch) and ``log.txt`` lines into a run folder."""

    def __init__(self, run: RunDir) -> None:
        self.run = run

    def on_fit_start(self, trainer: Trainer, logs: Logs) -> None:
        where = f"epoch {trainer.epoch + 1}, step {trainer.step_in_epoch}" if trainer.global_step else "the start"
        self.run.log(f"fit from {where}: {logs['epochs']} epochs x {logs['steps_per_epoch']} steps")
        self.run.log("speed plan: " + "; ".join(trainer.plan.reasons))
        if trainer.schedule_note:
            self.run.log(f"LR schedule: {trainer.schedule_note}")

    def on_epoch_end(self, trainer: Trainer, logs: Logs) -> None:
        self.run.write_metrics(trainer.history)
        self.run.log(f"epoch {logs['epoch']}: {_format_logs(logs)}")

    def on_fit_end(self, trainer: Trainer, logs: Logs) -> None:
        by = f" by {trainer.stop_signal}" if trainer.stop_signal else ""
        self.run.log(f"fit ended: {logs['stop_reason'] or 'all epochs done'}{by}")


class Checkpointer(Callback):
    """Saves ``last.pt`` every epoch (and on Ctrl-C or SIGTERM, mid-epoch) and ``best.pt`` when ``monitor``
    improves, or when ``best.pt`` is missing (a process killed between the two writes): a run that has
    finished an epoch always has both.

    ``extra`` returns additional entries stored in every checkpoint (for example the config and
    class names), so a checkpoint is usable on its own.
    """

    def __init__(
        self, run: RunDir, monitor: str = "val_acc", extra: Callable[[], dict[str, Any]] | None = None
    ) -> None:
        self.run = run
        self.monitor = monitor
        self.maximize = not monitor.endswith("loss")
        self.extra = extra or dict

    def on_epoch_end(self, trainer: Trainer, logs: Logs) -> None:
        score = logs.get(self.monitor)
        improved = score is not None and (
            trainer.best_score is None or (score > trainer.best_score if self.maximize else score < trainer.best_score)
        )
        if improved:
            trainer.best_score = score
        state = trainer.state_dict() | self.extra()
        save_checkpoint(self.run.last_checkpoint, state)
        if improved or score is None or not self.run.best_checkpoint.is_file():
            save_checkpoint(self.run.best_checkpoint, state)

    def on_fit_end(self, trainer: Trainer, logs: Logs) -> None:
        if logs["stop_reason"] == "interrupted":
            save_checkpoint(self.run.last_checkpoint, trainer.state_dict() | self.extra())
            where = f"epoch {trainer.epoch + 1}, step {trainer.step_in_epoch}"
            by = f" by {trainer.stop_signal}" if trainer.stop_signal else ""
            self.run.log(f"interrupted{by}: saved {self.run.last_checkpoint} at {where}")
        elif logs["stop_reason"] != "nan" and trainer.history and not self.run.best_checkpoint.is_file():
            # Resumed after a kill between last.pt and best.pt of the final epoch: no epoch runs to write it.
            save_checkpoint(self.run.best_checkpoint, trainer.state_dict() | self.extra())


class EarlyStopping(Callback):
    """Stops when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0) -> None:
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.sign = -1.0 if monitor.endswith("loss") else 1.0
        self._best = -math.inf
        self._wait = 0

    def on_epoch_end(self, trainer: Trainer, logs: Logs) -> None:
        score = self.sign * logs[self.monitor]
        if score > self._best + self.min_delta:
            self._best, self._wait = score, 0
        else:
            self._wait += 1
            if self._wait >= self.patience:
                trainer.stop_reason = "early_stopping"


class ReduceLROnPlateau(Callback):
    """Multiplies the LR by ``factor`` when ``monitor`` stalls for ``patience`` epochs.

    Use it with ``schedule="constant"``: a per-step schedule would overwrite the lowered LR.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 3, min_lr: float = 0.0) -> None:
        self.monitor = monitor
        self.options = {"factor": factor, "patience": patience, "min_lr": min_lr}
        self._plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None

    def on_fit_start(self, trainer: Trainer, logs: Logs) -> None:
        mode = "min" if self.monitor.endswith("loss") else "max"
        self._plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(trainer.optimizer, mode=mode, **self.options)

    def on_epoch_end(self, trainer: Trainer, logs: Logs) -> None:
        assert self._plateau is not None
        self._plateau.step(logs[self.monitor])


class TensorBoard(Callback):
    """Writes every epoch's logs (and the LR) as TensorBoard scalars; needs the ``tensorboard`` package."""

    def __init__(self, log_dir: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "the TensorBoard callback needs the 'tensorboard' package", fix="pip install tensorboard"
            ) from None
        self.writer = SummaryWriter(str(log_dir))

    def on_epoch_end(self, trainer: Trainer, logs: Logs) -> None:
        for key, value in logs.items():
            if isinstance(value, int | float) and key != "epoch":
                self.writer.add_scalar(key, value, logs["epoch"])
        self.writer.flush()

    def on_fit_end(self, trainer: Trainer, logs: Logs) -> None:
        self.writer.close()


class TimeEstimate(Callback):
    """After ``warmup + measure`` training steps, log the estimated training time (and print it when it is
    :data:`MIN_PRINTED_MINUTES` or more): seconds per step (after warm-up steps) x steps per epoch x epochs left.

    >>> estimate = TimeEstimate(Console(file=None), None, warmup=0, measure=2)
    >>> estimate.describe(0.6, 10, 3, 1)[1]
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
            minutes, line = self.describe(per_step, self._steps, self._epochs, trainer.epoch + 1)
            if minutes >= MIN_PRINTED_MINUTES:
                self.console.print(f"Time estimate: {line}")
            if self.run is not None:
                self.run.log(f"time estimate: {line}")
            self._done = True

    @staticmethod
    def describe(per_step: float, steps: int, epochs: int, first_epoch: int) -> tuple[float, str]:
        """``(minutes, the sentence)`` for the epochs from ``first_epoch`` on."""
        left = epochs - first_epoch + 1
        minutes = per_step * steps * left / 60
        return minutes, (
            f"about {minutes:.1f} min: {per_step:.2f} s/step x {steps} steps x {left} epochs "
            f"(epoch {first_epoch} on; validation not included)"
        )


MIN_PRINTED_MINUTES = 1.0
"""A time estimate shorter than this goes to the run log only (a short run needs no announcement)."""


def run_callbacks(run: RunDir, console: Console, monitor: str, extra: Callable[[], dict[str, Any]]) -> list[Callback]:
    """What a task's run trains with: the progress bar, the run log, checkpoints (best by ``monitor``, with the
    ``extra`` metadata) and a time estimate once the first steps are measured."""
    return [
        ProgressBar(console=console),
        RunLogger(run),
        Checkpointer(run, monitor, extra=extra),
        TimeEstimate(console, run),
    ]


def _format_logs(logs: Logs) -> str:
    keys = [k for k in ("loss", "acc", "val_loss", "val_acc", "val_dice", "val_map50") if k in logs]
    return "  ".join(f"{k} {logs[k]:.4f}" for k in keys)
