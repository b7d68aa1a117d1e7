"""What ``fit(verbose=...)`` prints, as Keras prints it: ``Epoch 3/10`` before each epoch, then (``verbose=1``,
``'auto'``) a bar that fills as the steps run, with the time left, the time per step and the running loss and
metrics under Keras' names, ending as the epoch's line with the validation results; ``verbose=2`` prints only
that last line per epoch; ``verbose=0`` nothing. In a terminal or a notebook the bar redraws in place; in a log
file only the finished lines are written.

>>> import io
>>> out = io.StringIO()
>>> bar = KerasProgbar(verbose=2, keys=("loss", "acc"), accuracy="accuracy", epochs=5, initial_epoch=0, stream=out)
>>> bar.epoch_line(2, 2, {"loss": 0.51234, "acc": 0.75, "val_loss": 0.6, "val_acc": 0.5}, elapsed=0.25)
'2/2 - 0s - 125ms/step - accuracy: 0.7500 - loss: 0.5123 - val_accuracy: 0.5000 - val_loss: 0.6000'
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

from cnnlab.keras.callbacks import keras_logs
from cnnlab.train import Callback, Trainer
from cnnlab.train.trainer import Logs

__all__ = ["KerasProgbar"]

_BAR_WIDTH = 20  # Keras' Progbar width


class KerasProgbar(Callback):
    """Keras' per-epoch progress output for ``fit``; ``keys`` are the Trainer's running keys (``loss`` and the
    compiled metrics), ``accuracy`` how the model spells accuracy (``acc`` or ``accuracy``)."""

    def __init__(
        self,
        verbose: int,
        keys: Sequence[str],
        accuracy: str,
        epochs: int,
        initial_epoch: int,
        stream: TextIO | None = None,
        refresh_s: float = 0.2,
    ) -> None:
        self.verbose, self.keys, self.accuracy = verbose, tuple(keys), accuracy
        self.epochs, self.initial_epoch = epochs, initial_epoch
        self.stream = stream or sys.stdout
        self.refresh_s = refresh_s
        self.live = verbose == 1 and (_is_terminal(self.stream) or "ipykernel" in sys.modules)
        self._steps = self._step = 0
        self._started = self._shown = 0.0

    def on_fit_start(self, trainer: Trainer, logs: Logs) -> None:
        self._steps = logs["steps_per_epoch"]

    def on_epoch_start(self, trainer: Trainer, logs: Logs) -> None:
        self._write(f"Epoch {self.initial_epoch + trainer.epoch + 1}/{self.epochs}\n")
        self._step = logs["start_step"]
        self._started = self._shown = time.perf_counter()

    def on_batch_end(self, trainer: Trainer, logs: Logs) -> None:
        self._step += 1
        now = time.perf_counter()
        if self.live and now - self._shown >= self.refresh_s:
            self._shown = now
            running = {key: trainer.running_mean(key) for key in self.keys}
            self._write("\r" + self.running_line(self._step, self._steps, running, now - self._started))

    def on_epoch_end(self, trainer: Trainer, logs: Logs) -> None:
        line = self.epoch_line(self._step, self._steps, logs, time.perf_counter() - self._started)
        self._write(("\r" if self.live else "") + line + "\n")

    # ----- the lines ------------------------------------------------------------------------------
    def running_line(self, step: int, steps: int, running: Logs, elapsed: float) -> str:
        """The bar during an epoch: steps done, the bar, the time left and per step, the running values."""
        per_step = elapsed / max(step, 1)
        left = _duration(per_step * (steps - step))
        return f"{step}/{steps} {_bar(step, steps)} {left} {_per_step(per_step)}{self._values(running)}"

    def epoch_line(self, step: int, steps: int, logs: Logs, elapsed: float) -> str:
        """The finished epoch: the full bar (``verbose=1``) or none (``verbose=2``), its time, the results."""
        per_step = elapsed / max(step, 1)
        timing = f"{_duration(elapsed)} {_per_step(per_step)}"
        if self.verbose == 1:
            return f"{step}/{steps} {_bar(steps, steps)} {timing}{self._values(logs)}"
        return f"{step}/{steps} - {timing.replace(' ', ' - ')}{self._values(logs)}"

    def _values(self, logs: Logs) -> str:
        named = keras_logs(logs, self.accuracy)
        ordered = sorted(k for k in named if not k.startswith("val_")) + sorted(
            k for k in named if k.startswith("val_")
        )
        return "".join(f" - {key}: {named[key]:.4f}" for key in ordered)

    def _write(self, text: str) -> None:
        if self.verbose:
            self.stream.write(text)
            self.stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _bar(done: int, total: int) -> str:
    filled = _BAR_WIDTH if total <= 0 else min(_BAR_WIDTH, _BAR_WIDTH * done // total)
    return "━" * filled + "─" * (_BAR_WIDTH - filled)


def _duration(seconds: float) -> str:
    """Keras' short times: ``3s``, ``2:05`` (minutes), ``1:02:05`` (hours)."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}:{secs:02d}"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _per_step(seconds: float) -> str:
    """``45ms/step``, ``2s/step`` or ``120us/step``, as Keras."""
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"
