"""Keras callbacks on the cnnlab Trainer: Keras' semantics, log names and the live optimizer.

The runs train towards class 0 while the validation set says class 1, so the validation loss gets
worse every epoch: the first epoch is the best one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.data.loader import TensorLoader
from cnnlab.keras.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    to_trainer_callback,
)
from cnnlab.train import TrainConfig, Trainer

X = torch.randn(16, 1, 2, 2, generator=torch.Generator().manual_seed(0))
TRAIN = TensorLoader(X, torch.zeros(16, dtype=torch.long), batch_size=8)
VAL = TensorLoader(X, torch.ones(16, dtype=torch.long), batch_size=16)


class _Optimizer:
    """The keras model's optimizer contract: ``learning_rate`` reads and sets the live torch optimizer."""

    def __init__(self) -> None:
        self.torch: torch.optim.Optimizer | None = None

    @property
    def learning_rate(self) -> float:
        assert self.torch is not None
        return self.torch.param_groups[0]["lr"]

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        assert self.torch is not None
        for group in self.torch.param_groups:
            group["lr"] = value


class KerasLike(nn.Module):
    """What cnnlab.keras models offer callbacks: stop_training, optimizer.learning_rate, save."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.dense = nn.Linear(4, 2)
        self.stop_training = False
        self.optimizer = _Optimizer()
        self.saved: list[str] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(x.flatten(1))

    def save(self, path: str | Path) -> None:
        Path(path).write_text("model")
        self.saved.append(Path(path).name)


def _fit(model: KerasLike, callbacks: list[Callback], epochs: int = 5, schedule: str = "constant") -> Trainer:
    config = TrainConfig(
        epochs=epochs,
        optimizer="sgd",
        lr=0.5,
        momentum=0.0,
        nesterov=False,
        schedule=schedule,
        precision="fp32",
        channels_last=False,
    )
    trainer = Trainer(model, config, callbacks=[to_trainer_callback(callbacks, model)])
    model.optimizer.torch = trainer.optimizer
    trainer.fit(TRAIN, VAL)
    return trainer


def _weights_per_epoch(model: KerasLike) -> tuple[LambdaCallback, list[dict[str, torch.Tensor]]]:
    seen: list[dict[str, torch.Tensor]] = []
    record = LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append({k: v.clone() for k, v in model.state_dict().items()})
    )
    return record, seen


def test_early_stopping_restores_the_best_epochs_weights():
    model = KerasLike()
    record, seen = _weights_per_epoch(model)
    stop = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    trainer = _fit(model, [record, stop], epochs=10)
    losses = [row["val_loss"] for row in trainer.history]
    assert losses == sorted(losses) and losses[0] < losses[-1]  # worse every epoch
    assert len(trainer.history) == 3 and stop.stopped_epoch == 2 and stop.best_epoch == 0
    assert trainer.stop_reason == "stop_training" and model.stop_training
    assert torch.equal(model.dense.weight, seen[0]["dense.weight"])
    assert not torch.equal(model.dense.weight, seen[-1]["dense.weight"])


def test_early_stopping_without_restore_keeps_the_last_weights():
    model = KerasLike()
    record, seen = _weights_per_epoch(model)
    _fit(model, [record, EarlyStopping(patience=1)], epochs=10)
    assert len(seen) == 2 and torch.equal(model.dense.weight, seen[-1]["dense.weight"])


def test_early_stopping_on_accuracy_spelled_the_old_way_maximises():
    stop = EarlyStopping(monitor="val_acc")
    assert (stop.monitor, stop.mode) == ("val_accuracy", "max")
    stop.set_model(KerasLike())
    stop.on_train_begin()
    for epoch, accuracy in enumerate([0.5, 0.6, 0.6]):
        stop.on_epoch_end(epoch, {"val_accuracy": accuracy})
    assert stop.best == 0.6 and stop.model.stop_training


def test_a_missing_monitor_warns_with_the_available_keys():
    model = KerasLike()
    with pytest.warns(UserWarning, match=r"`val_f1` which is not available. Available metrics are: loss,accuracy"):
        trainer = _fit(model, [EarlyStopping(monitor="val_f1")], epochs=1)
    assert len(trainer.history) == 1


def test_model_checkpoint_save_best_only_writes_only_on_improvement(tmp_path):
    model = KerasLike()
    checkpoint = ModelCheckpoint(tmp_path / "m-{epoch:02d}-{val_loss:.2f}.keras", save_best_only=True)
    checkpoint.set_model(model)
    for epoch, val_loss in enumerate([1.0, 0.8, 0.9, 0.7, 0.7]):
        checkpoint.on_epoch_end(epoch, {"loss": 0.5, "val_loss": val_loss})
    assert model.saved == ["m-01-1.00.keras", "m-02-0.80.keras", "m-04-0.70.keras"]
    assert sorted(p.name for p in tmp_path.iterdir()) == model.saved


def test_model_checkpoint_in_a_run_saves_every_epoch_or_the_first_when_it_only_gets_worse(tmp_path):
    every, best = KerasLike(), KerasLike()
    _fit(every, [ModelCheckpoint(tmp_path / "all" / "e{epoch}.keras")], epochs=3)
    _fit(best, [ModelCheckpoint(tmp_path / "best.keras", monitor="val_loss", save_best_only=True)], epochs=3)
    assert every.saved == ["e1.keras", "e2.keras", "e3.keras"] and best.saved == ["best.keras"]


def test_model_checkpoint_weights_only_writes_a_state_dict(tmp_path):
    model = KerasLike()
    _fit(model, [ModelCheckpoint(tmp_path / "w.pt", save_weights_only=True)], epochs=1)
    state = torch.load(tmp_path / "w.pt", weights_only=True)
    assert torch.equal(state["dense.weight"], model.dense.weight) and model.saved == []


def test_reduce_lr_on_plateau_lowers_the_live_learning_rate():
    model = KerasLike()
    lrs: list[float] = []
    probe = LambdaCallback(on_epoch_begin=lambda epoch, logs: lrs.append(model.optimizer.learning_rate))
    reduce = ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, min_lr=0.1)
    trainer = _fit(model, [probe, reduce], epochs=5)
    # epoch 0 sets the best; every later epoch is worse: halved after epochs 1, 2 (then clamped at min_lr).
    assert lrs == [0.5, 0.5, 0.25, 0.125, 0.1]
    assert trainer.optimizer.param_groups[0]["lr"] == 0.1
    assert [row["lr"] for row in trainer.history] == lrs  # the optimiser really ran at the lowered rates


def test_reduce_lr_on_plateau_refuses_a_schedule_that_would_overwrite_it():
    with pytest.raises(ConfigError, match="per-step schedule 'onecycle' would overwrite"):
        _fit(KerasLike(), [ReduceLROnPlateau()], epochs=2, schedule="onecycle")


def test_learning_rate_scheduler_sets_the_rate_each_epoch():
    model = KerasLike()
    trainer = _fit(model, [LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1))], epochs=3)
    assert [round(row["lr"], 6) for row in trainer.history] == [0.1, 0.05, 0.033333]


def test_csv_logger_writes_keras_columns(tmp_path):
    path = tmp_path / "training.log"
    _fit(KerasLike(), [CSVLogger(path)], epochs=2)
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,accuracy,loss,val_accuracy,val_loss"
    assert [line.split(",")[0] for line in lines[1:]] == ["0", "1"]
    _fit(KerasLike(), [CSVLogger(path, separator=";", append=True)], epochs=1)
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("0;")


def test_lambda_callback_gets_keras_logs_batches_and_can_stop_training():
    model = KerasLike()
    events: list[tuple[str, object]] = []

    def epoch_end(epoch: int, logs: dict[str, float]) -> None:
        events.append(("epoch", sorted(logs)))
        model.stop_training = epoch == 1

    callback = LambdaCallback(
        on_train_begin=lambda logs: events.append(("begin", logs)),
        on_batch_end=lambda batch, logs: events.append(("batch", batch)),
        on_epoch_end=epoch_end,
        on_train_end=lambda logs: events.append(("end", sorted(logs))),
    )
    trainer = _fit(model, [callback], epochs=5)
    keys = ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert events == [("begin", {}), ("batch", 0), ("batch", 1), ("epoch", keys)] * 1 + [
        ("batch", 0),
        ("batch", 1),
        ("epoch", keys),
        ("end", keys),
    ]
    assert len(trainer.history) == 2


def test_the_adapter_refuses_trainer_callbacks():
    from cnnlab.train.callbacks import EarlyStopping as TrainerEarlyStopping

    with pytest.raises(ConfigError, match=r"cnnlab\.keras\.callbacks\.Callback objects"):
        to_trainer_callback([TrainerEarlyStopping()], KerasLike())  # type: ignore[list-item]


def test_keras_fit_with_early_stopping_restores_the_best_epoch(tmp_path: Path):
    """The course's way: ``model.fit(..., callbacks=[EarlyStopping(...), ModelCheckpoint(...)])`` on a keras model."""
    from cnnlab import keras

    torch.manual_seed(0)
    model = keras.Sequential([keras.layers.Flatten(input_shape=(2, 2, 1)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss="sparse_categorical_crossentropy")
    x = X.permute(0, 2, 3, 1).numpy()  # NHWC, as Keras users hold images
    stop = EarlyStopping(patience=1, restore_best_weights=True)
    best = ModelCheckpoint(str(tmp_path / "best.keras"), save_best_only=True)
    history = model.fit(x, np.zeros(16), validation_data=(x, np.ones(16)), epochs=10, callbacks=[stop, best], verbose=0)
    assert history.epoch == [0, 1] and stop.best_epoch == 0  # validation gets worse from the first epoch on
    assert sorted(history.history) == ["loss", "val_loss"]
    assert np.isclose(model.evaluate(x, np.ones(16), verbose=0), history.history["val_loss"][0], atol=1e-5)
    saved = keras.models.load_model(tmp_path / "best.keras")
    np.testing.assert_allclose(saved.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_fit_goes_on_from_initial_epoch_as_keras_numbers_it():
    """Keras 3.15, the same calls: History.epoch [0, 1], then [1, 2, 3, 4] with the callbacks seeing 1..4 and
    params epochs 5; initial_epoch past epochs trains nothing ([] and {})."""
    from cnnlab.keras import callbacks, layers
    from cnnlab.keras.models import Sequential

    model = Sequential([layers.Input((2,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((4, 2), np.float32), np.zeros((4, 1), np.float32)
    first = model.fit(x, y, epochs=2, verbose=0)
    seen: list[int] = []
    record = callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
    more = model.fit(x, y, epochs=5, initial_epoch=first.epoch[-1], verbose=0, callbacks=[record])
    assert first.epoch == [0, 1] and more.epoch == [1, 2, 3, 4] and seen == [1, 2, 3, 4]
    assert len(more.history["loss"]) == 4 and record.params["epochs"] == 5
    none = model.fit(x, y, epochs=2, initial_epoch=3, verbose=0)
    assert none.epoch == [] and none.history == {}
