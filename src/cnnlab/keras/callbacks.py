"""Keras callbacks (``keras.callbacks``) on cnnlab's Trainer: EarlyStopping, ModelCheckpoint,
ReduceLROnPlateau, LearningRateScheduler, CSVLogger and LambdaCallback, with Keras' arguments and semantics.

``fit`` wraps the Keras callbacks into one :class:`cnnlab.train.Callback` with
:func:`to_trainer_callback`: it renames the Trainer's log keys to Keras' (``acc`` -> ``accuracy``,
``val_acc`` -> ``val_accuracy``; ``epoch``, ``lr`` and ``time_s`` are dropped), passes 0-based
epoch numbers as Keras does, and stops the Trainer (``trainer.stop_reason``) when a callback sets
``model.stop_training``. Monitors may be spelled ``val_acc`` or ``val_accuracy``; ``mode='auto'``
maximises names holding ``acc`` and minimises the rest; a monitor missing from the logs is a warning
naming the available keys, as in Keras.

>>> stop = EarlyStopping(monitor="val_acc", patience=2)
>>> stop.monitor, stop.mode
('val_accuracy', 'max')
>>> keras_logs({"epoch": 1, "loss": 0.5, "acc": 0.75, "val_loss": 0.6, "val_acc": 0.7, "lr": 1e-3, "time_s": 2.0})
{'loss': 0.5, 'accuracy': 0.75, 'val_loss': 0.6, 'val_accuracy': 0.7}
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.core.rundir import save_checkpoint
from cnnlab.train import Callback as TrainerCallback
from cnnlab.train import Trainer
from cnnlab.train.trainer import Logs

_RENAMED = {"acc": "accuracy", "val_acc": "val_accuracy"}
_DROPPED = frozenset({"epoch", "lr", "time_s"})  # the Trainer's bookkeeping, not metrics Keras logs


def keras_logs(logs: Logs, accuracy: str = "accuracy") -> dict[str, float]:
    """A Trainer epoch's logs under Keras' names: accuracy as compiled (``metrics=['acc']`` logs ``acc`` and
    ``val_acc``, as Keras 3 does; ``'accuracy'`` logs ``accuracy``); other metric results keep their names.

    >>> keras_logs({"loss": 0.5, "acc": 0.75, "val_acc": 0.7}, accuracy="acc")
    {'loss': 0.5, 'acc': 0.75, 'val_acc': 0.7}
    """
    renamed = {"acc": accuracy, "val_acc": f"val_{accuracy}"}
    return {renamed.get(k, k): float(v) for k, v in logs.items() if k not in _DROPPED}


def accuracy_name(model: Any) -> str:
    """How the compiled ``model`` spells accuracy in its logs: ``acc`` when compiled with ``metrics=['acc']``."""
    compiled = getattr(model, "_keras", None)
    names = [m.name for m in getattr(compiled, "metrics", ())]
    return "acc" if "acc" in names else "accuracy"


def monitor_name(monitor: str) -> str:
    """``acc``/``val_acc`` spelled as the logs have them (``accuracy``/``val_accuracy``)."""
    return _RENAMED.get(monitor, monitor)


def _mode(mode: str, monitor: str, where: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ConfigError(f"mode must be 'auto', 'min' or 'max'. Received: mode={mode!r}", where=where)
    if mode != "auto":
        return mode
    return "max" if "acc" in monitor or "auc" in monitor else "min"


def _monitored(logs: dict[str, float], monitor: str, who: str) -> float | None:
    """The monitored value, or None with Keras' warning naming the keys the logs do have."""
    value = logs.get(monitor)
    if value is None and monitor.endswith("accuracy"):  # compiled with metrics=['acc']: the logs say acc
        value = logs.get(monitor.removesuffix("accuracy") + "acc")
    if value is None:
        warnings.warn(
            f"{who} is conditioned on metric `{monitor}` which is not available. "
            f"Available metrics are: {','.join(logs)}",
            stacklevel=3,
        )
    return value


class Callback:
    """Base class of Keras callbacks: override the hooks you need; ``self.model`` is the Keras model.

    >>> class Printer(Callback):
    ...     def on_epoch_end(self, epoch, logs=None):
    ...         print(epoch, logs)
    >>> Printer().on_epoch_end(0, {"loss": 0.1})
    0 {'loss': 0.1}
    """

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None: ...
    def on_train_end(self, logs: dict[str, float] | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None: ...

    def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
        """After each training batch; ``logs`` hold the epoch's running ``loss`` and ``accuracy``."""
        self.on_batch_end(batch, logs)

    def on_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
        """Keras' older name of :meth:`on_train_batch_end`."""


def _wants_batches(callback: Callback) -> bool:
    """Whether a callback does anything per batch (reading the running means costs a host sync)."""
    hooks = ("on_train_batch_end", "on_batch_end")
    return any(getattr(type(callback), h) is not getattr(Callback, h) or h in vars(callback) for h in hooks)


class _KerasCallbacks(TrainerCallback):
    """Runs Keras callbacks from Trainer events (see :func:`to_trainer_callback`)."""

    def __init__(self, callbacks: Sequence[Callback], model: Any, initial_epoch: int = 0) -> None:
        self.callbacks = list(callbacks)
        self.model = model
        self.initial_epoch = initial_epoch  # Keras' epoch numbers go on from fit(initial_epoch=...)
        self.accuracy = accuracy_name(model)  # compiled before fit: how its logs spell accuracy
        self.history: list[dict[str, float]] = []
        self._per_batch = [c for c in self.callbacks if _wants_batches(c)]
        for callback in self.callbacks:
            callback.set_model(model)

    def on_fit_start(self, trainer: Trainer, logs: Logs) -> None:
        sets_lr = (ReduceLROnPlateau, LearningRateScheduler)
        changes_lr = [type(c).__name__ for c in self.callbacks if isinstance(c, sets_lr)]
        if changes_lr and trainer.scheduler is not None:
            raise ConfigError(
                f"{changes_lr[0]} sets the learning rate, but the per-step schedule "
                f"'{trainer.config.schedule}' would overwrite it every step",
                where="fit(callbacks=...)",
                fix="compile without a schedule (the default, 'constant')",
            )
        self.model.stop_training = False
        params = {"epochs": logs["epochs"] + self.initial_epoch, "steps": logs["steps_per_epoch"], "verbose": 0}
        for callback in self.callbacks:
            callback.set_params(params)
            callback.on_train_begin({})
        self._stop_if_asked(trainer)

    def on_epoch_start(self, trainer: Trainer, logs: Logs) -> None:
        for callback in self.callbacks:
            callback.on_epoch_begin(logs["epoch"] + self.initial_epoch, {})
        self._stop_if_asked(trainer)

    def on_batch_end(self, trainer: Trainer, logs: Logs) -> None:
        if not self._per_batch:
            return
        running = {"loss": trainer.running_mean("loss"), self.accuracy: trainer.running_mean("acc")}
        for callback in self._per_batch:
            callback.on_train_batch_end(trainer.step_in_epoch - 1, dict(running))
        self._stop_if_asked(trainer)

    def on_epoch_end(self, trainer: Trainer, logs: Logs) -> None:
        epoch_logs = keras_logs(logs, self.accuracy)
        for callback in self.callbacks:
            # one dict: callbacks may add to it, as in Keras
            callback.on_epoch_end(logs["epoch"] - 1 + self.initial_epoch, epoch_logs)
        self.history.append(epoch_logs)
        self._stop_if_asked(trainer)

    def on_fit_end(self, trainer: Trainer, logs: Logs) -> None:
        last = dict(self.history[-1]) if self.history else {}
        for callback in self.callbacks:
            callback.on_train_end(last)

    def _stop_if_asked(self, trainer: Trainer) -> None:
        if getattr(self.model, "stop_training", False) and trainer.stop_reason is None:
            trainer.stop_reason = "stop_training"


def to_trainer_callback(callbacks: Sequence[Callback], model: Any, initial_epoch: int = 0) -> TrainerCallback:
    """One Trainer callback that drives Keras ``callbacks`` for the Keras ``model`` (what ``fit`` uses); the
    callbacks see epochs numbered from ``initial_epoch``.

    The returned object's ``history`` lists every epoch's Keras logs after all callbacks ran (with
    ``learning_rate`` where ReduceLROnPlateau added it), what Keras' ``History`` records.

    >>> import torch
    >>> from cnnlab.data.loader import TensorLoader
    >>> from cnnlab.train import TrainConfig
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    >>> seen = []
    >>> adapter = to_trainer_callback([LambdaCallback(on_epoch_end=lambda e, logs: seen.append(e))], net)
    >>> loader = TensorLoader(torch.randn(8, 1, 2, 2), torch.randint(0, 2, (8,)), batch_size=4)
    >>> _ = Trainer(net, TrainConfig(epochs=2, schedule="constant"), callbacks=[adapter]).fit(loader)
    >>> seen, sorted(adapter.history[-1])
    ([0, 1], ['accuracy', 'loss'])
    """
    for callback in callbacks:
        if not isinstance(callback, Callback):
            raise ConfigError(
                f"callbacks must be cnnlab.keras.callbacks.Callback objects, got {type(callback).__name__}",
                where="fit(callbacks=...)",
                fix="subclass cnnlab.keras.callbacks.Callback (cnnlab.train callbacks go to cnnlab.train.Trainer)",
            )
    return _KerasCallbacks(callbacks, model, initial_epoch)


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs (Keras 3).

    ``baseline``: training stops after ``patience`` epochs unless the monitor beats it.
    ``restore_best_weights``: at the end of training the model gets back the weights of its best epoch.

    >>> EarlyStopping(monitor="val_loss", patience=3).mode
    'min'
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        super().__init__()
        self.monitor = monitor_name(monitor)
        self.mode = _mode(mode, self.monitor, "EarlyStopping")
        self.min_delta, self.patience, self.verbose = abs(min_delta), patience, verbose
        self.baseline, self.start_from_epoch = baseline, start_from_epoch
        self.restore_best_weights = restore_best_weights
        self.wait = self.stopped_epoch = self.best_epoch = 0
        self.best: float | None = None
        self.best_weights: dict[str, torch.Tensor] | None = None

    def _improves(self, value: float, reference: float | None) -> bool:
        if reference is None:
            return True
        return value - self.min_delta > reference if self.mode == "max" else value + self.min_delta < reference

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self.wait = self.stopped_epoch = self.best_epoch = 0
        self.best, self.best_weights = None, None

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        current = _monitored(logs or {}, self.monitor, "Early stopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = _snapshot(self.model), epoch
        self.wait += 1
        if self._improves(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = _snapshot(self.model)
            if self.baseline is None or self._improves(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.load_state_dict(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model after every epoch, or only when ``monitor`` improves (``save_best_only``).

    ``filepath`` may hold ``{epoch:02d}`` (1-based, as Keras) and any log key, e.g. ``{val_loss:.2f}``.
    The whole model is written with ``model.save``; ``save_weights_only`` writes ``model.save_weights``
    where the model has it, else its ``state_dict`` (a safe torch checkpoint).

    >>> ModelCheckpoint("best.pt", monitor="val_accuracy", save_best_only=True).mode
    'max'
    """

    def __init__(
        self,
        filepath: str | Path,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        initial_value_threshold: float | None = None,
    ) -> None:
        super().__init__()
        self.filepath = str(filepath)
        self.monitor = monitor_name(monitor)
        self.mode = _mode(mode, self.monitor, "ModelCheckpoint")
        self.verbose, self.save_best_only, self.save_weights_only = verbose, save_best_only, save_weights_only
        self.best = initial_value_threshold if initial_value_threshold is not None else self._worst()

    def _worst(self) -> float:
        return -math.inf if self.mode == "max" else math.inf

    def _path(self, epoch: int, logs: dict[str, float]) -> Path:
        try:
            return Path(self.filepath.format(epoch=epoch + 1, **logs))
        except KeyError as exc:
            raise ConfigError(
                f"ModelCheckpoint filepath names {exc.args[0]!r}, which the logs do not have",
                where=self.filepath,
                fix=f"use {{epoch}} or one of: {', '.join(logs)}",
            ) from None

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        if self.save_best_only:
            current = _monitored(logs, self.monitor, "Saving the best model")
            if current is None:
                return
            if not (current > self.best if self.mode == "max" else current < self.best):
                return
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to {current:.5f}")
            self.best = current
        path = self._path(epoch, logs)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.save_weights_only:
            self.model.save(path)
        elif hasattr(self.model, "save_weights"):
            self.model.save_weights(path)
        else:
            save_checkpoint(path, {k: v.contiguous() for k, v in self.model.state_dict().items()})


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stalls for ``patience`` epochs (Keras 3).

    The new rate goes to the live torch optimizer through ``model.optimizer.learning_rate``; it is
    also logged as ``learning_rate``. Needs the constant schedule (the default of ``compile``):
    ``fit`` refuses a per-step schedule, which would overwrite the lowered rate every step.

    >>> ReduceLROnPlateau(factor=1.5)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.ConfigError: ReduceLROnPlateau does not support a factor >= 1.0. Received: factor=1.5 ...
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        super().__init__()
        if factor >= 1.0:
            raise ConfigError(
                f"ReduceLROnPlateau does not support a factor >= 1.0. Received: factor={factor}",
                where="ReduceLROnPlateau",
                fix="use a factor below 1, e.g. 0.1 or 0.5",
            )
        self.monitor = monitor_name(monitor)
        self.mode = _mode(mode, self.monitor, "ReduceLROnPlateau")
        self.factor, self.patience, self.verbose = factor, patience, verbose
        self.min_delta, self.cooldown, self.min_lr = min_delta, cooldown, min_lr
        self.wait = self.cooldown_counter = 0
        self.best = self._worst()

    def _worst(self) -> float:
        return -math.inf if self.mode == "max" else math.inf

    def _improves(self, value: float) -> bool:
        return value > self.best + self.min_delta if self.mode == "max" else value < self.best - self.min_delta

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self.wait = self.cooldown_counter = 0
        self.best = self._worst()

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs if logs is not None else {}
        logs["learning_rate"] = float(self.model.optimizer.learning_rate)
        current = _monitored(logs, self.monitor, "Learning rate reduction")
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improves(current):
            self.best, self.wait = current, 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(self.model.optimizer.learning_rate)
                if old > self.min_lr:
                    new = max(old * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new
                    if self.verbose:
                        print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of every epoch to ``schedule(epoch, lr)`` (or ``schedule(epoch)``).

    >>> LearningRateScheduler(lambda epoch, lr: lr * 0.5).schedule(0, 0.1)
    0.05
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        lr = float(self.model.optimizer.learning_rate)
        try:
            new = self.schedule(epoch, lr)
        except TypeError:  # Keras also accepts a one-argument schedule
            new = self.schedule(epoch)
        if not isinstance(new, int | float) or not math.isfinite(new):
            raise ConfigError(
                f"the schedule must return a finite float learning rate. Received: {new!r}",
                where="LearningRateScheduler",
            )
        self.model.optimizer.learning_rate = float(new)
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {new}.")

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class CSVLogger(Callback):
    """Stream every epoch's logs to a CSV file: columns ``epoch`` (0-based) and the log keys, sorted (Keras).

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
    >>> logger = CSVLogger(path)
    >>> logger.on_train_begin()
    >>> logger.on_epoch_end(0, {"loss": 0.5, "accuracy": 0.75})
    >>> logger.on_train_end()
    >>> path.read_text().splitlines()
    ['epoch,accuracy,loss', '0,0.75,0.5']
    """

    def __init__(self, filename: str | Path, separator: str = ",", append: bool = False) -> None:
        super().__init__()
        self.filename, self.sep, self.append = Path(filename), separator, append
        self.keys: list[str] | None = None
        self._file: Any = None
        self._writer: csv.DictWriter[str] | None = None
        self._header = True

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self._header = not (self.append and self.filename.is_file() and self.filename.stat().st_size > 0)
        self.filename.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.filename, "a" if self.append else "w", newline="")  # noqa: SIM115 (open until train end)

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch", *self.keys], delimiter=self.sep)
            if self._header:
                self._writer.writeheader()
        self._writer.writerow({"epoch": epoch} | {k: logs.get(k, "NA") for k in self.keys})
        self._file.flush()

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        if self._file is not None:
            self._file.close()
        self._file, self._writer = None, None


class LambdaCallback(Callback):
    """A callback from functions: ``on_epoch_begin(epoch, logs)``, ``on_epoch_end(epoch, logs)``,
    ``on_train_begin(logs)``, ``on_train_end(logs)``, ``on_train_batch_end(batch, logs)`` (also as
    ``on_batch_end``).

    >>> LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs)).on_epoch_end(2, {"loss": 1.0})
    2 {'loss': 1.0}
    """

    def __init__(
        self,
        on_epoch_begin: Callable[[int, dict[str, float]], None] | None = None,
        on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
        on_train_begin: Callable[[dict[str, float]], None] | None = None,
        on_train_end: Callable[[dict[str, float]], None] | None = None,
        on_train_batch_end: Callable[[int, dict[str, float]], None] | None = None,
        on_batch_end: Callable[[int, dict[str, float]], None] | None = None,
    ) -> None:
        super().__init__()
        given = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_end": on_train_batch_end or on_batch_end,
        }
        for hook, function in given.items():
            if function is not None:
                setattr(self, hook, function)


__all__ = [
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ReduceLROnPlateau",
    "keras_logs",
    "to_trainer_callback",
]
