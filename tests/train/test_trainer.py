import math

import pytest
import torch
from torch import nn

from cnnlab.core.errors import TrainingError
from cnnlab.core.rundir import RunDir, load_checkpoint
from cnnlab.data.loader import TensorLoader
from cnnlab.train.callbacks import Checkpointer, EarlyStopping, RunLogger
from cnnlab.train.config import TrainConfig
from cnnlab.train.trainer import Callback, Trainer


def blobs(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes of 1x6x6 images: bright top half vs bright bottom half, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 1, 6, 6, generator=g) * 0.5
    x[y == 0, :, :3] += 1.0
    x[y == 1, :, 3:] += 1.0
    return x, y


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.2), nn.Flatten(), nn.Linear(144, 2)
    )


FP32 = {"precision": "fp32", "seed": 0, "optimizer": "sgd", "lr": 0.05, "schedule": "onecycle"}


def test_loss_falls_on_synthetic_data():
    x, y = blobs()
    trainer = Trainer(tiny_cnn(), TrainConfig(epochs=4, batch_size=32, **FP32))
    history = trainer.fit(TensorLoader(x, y, 32, shuffle=True), TensorLoader(x, y, 128))
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    assert history[-1]["val_acc"] > 0.9


def test_a_3d_conv_net_trains_under_the_default_plan_without_channels_last():
    """torch's channels_last is a 4-D layout: a Conv3D model used to crash in the Trainer ("required rank 4")."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv3d(1, 2, 3), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(2, 2))
    x, y = torch.randn(8, 1, 5, 5, 5), torch.arange(8) % 2
    trainer = Trainer(net, TrainConfig(epochs=1, batch_size=4))
    assert not trainer.plan.channels_last and any("3-D" in reason for reason in trainer.plan.reasons)
    assert math.isfinite(trainer.fit(TensorLoader(x, y, 4))[0]["loss"])


class StopAfter(Callback):
    """Interrupts like Ctrl-C does: sets the stop flag after `steps` optimiser steps."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_batch_end(self, trainer, logs):
        if trainer.global_step == self.steps:
            trainer.stop_reason = "interrupted"


def test_resume_after_interrupt_equals_uninterrupted_run(tmp_path):
    x, y = blobs()
    config = TrainConfig(epochs=3, batch_size=32, **FP32)
    train, val = TensorLoader(x, y, 32, shuffle=True, seed=3), TensorLoader(x, y, 128)

    reference = Trainer(tiny_cnn(), config)
    reference.fit(train, val)

    run = RunDir.create(tmp_path, "classify", "t")
    first = Trainer(tiny_cnn(), config, callbacks=[Checkpointer(run), StopAfter(steps=13)])  # mid epoch 2
    first.fit(train, val)
    assert first.stop_reason == "interrupted"
    state = load_checkpoint(run.last_checkpoint)
    assert (state["epoch"], state["step_in_epoch"]) == (1, 5)

    resumed = Trainer(tiny_cnn(), config)
    resumed.load_state_dict(state)
    resumed.fit(train, val)
    for a, b in zip(reference.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in reference.history])


class Recorder(Callback):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_fit_start(self, trainer, logs):
        self.calls.append("fit_start")

    def on_epoch_start(self, trainer, logs):
        self.calls.append("epoch_start")

    def on_batch_end(self, trainer, logs):
        self.calls.append("batch")

    def on_epoch_end(self, trainer, logs):
        self.calls.append("epoch_end")

    def on_fit_end(self, trainer, logs):
        self.calls.append("fit_end")


def test_callbacks_fire_in_documented_order():
    x, y = blobs(64)
    recorder = Recorder()
    Trainer(tiny_cnn(), TrainConfig(epochs=2, batch_size=32, **FP32), callbacks=[recorder]).fit(TensorLoader(x, y, 32))
    epoch = ["epoch_start", "batch", "batch", "epoch_end"]
    assert recorder.calls == ["fit_start", *epoch, *epoch, "fit_end"]


def test_nan_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(tmp_path):
    x, y = blobs(64)
    run = RunDir.create(tmp_path, "classify", "nan")

    class PoisonAfterFirstEpoch(Callback):
        def on_epoch_end(self, trainer, logs):
            with torch.no_grad():
                trainer.model[0].weight.fill_(math.nan)

    config = TrainConfig(epochs=3, batch_size=32, **FP32)
    trainer = Trainer(tiny_cnn(), config, callbacks=[Checkpointer(run), RunLogger(run), PoisonAfterFirstEpoch()])
    with pytest.raises(TrainingError, match="NaN or infinite in epoch 2"):
        trainer.fit(TensorLoader(x, y, 32), TensorLoader(x, y, 64))
    saved = load_checkpoint(run.last_checkpoint)
    assert saved["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in saved["model"].values() if v.is_floating_point())
    assert len(run.read_metrics()) == 1


def test_early_stopping_sets_the_stop_flag():
    x, y = blobs(64)
    stopper = EarlyStopping(monitor="val_loss", patience=1, min_delta=10.0)  # no epoch can improve by 10
    trainer = Trainer(tiny_cnn(), TrainConfig(epochs=5, batch_size=32, **FP32), callbacks=[stopper])
    history = trainer.fit(TensorLoader(x, y, 32), TensorLoader(x, y, 64))
    assert trainer.stop_reason == "early_stopping" and len(history) == 2


def test_bf16_autocast_and_channels_last_train_the_same_task():
    x, y = blobs()
    config = TrainConfig(epochs=4, batch_size=32, **(FP32 | {"precision": "bf16"}))
    trainer = Trainer(tiny_cnn(), config)
    trainer.fit(TensorLoader(x, y, 32, shuffle=True))
    assert trainer.plan.bf16 and trainer.plan.channels_last
    assert trainer.evaluate(TensorLoader(x, y, 128))["acc"] > 0.9


def test_resuming_with_more_epochs_continues_with_a_new_schedule(tmp_path):
    x, y = blobs(64)
    run = RunDir.create(tmp_path, "classify", "more")
    config = TrainConfig(epochs=2, batch_size=32, **FP32)
    Trainer(tiny_cnn(), config, callbacks=[Checkpointer(run)]).fit(TensorLoader(x, y, 32))
    longer = Trainer(tiny_cnn(), config)
    longer.load_state_dict(load_checkpoint(run.last_checkpoint))
    history = longer.fit(TensorLoader(x, y, 32), epochs=4)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert history[2]["lr"] > history[1]["lr"]  # a new one-cycle over the added epochs


def test_soft_targets_from_mixup_train_and_report_hard_accuracy():
    from cnnlab.data.augment import MixUp

    x, y = blobs()
    mixup = MixUp(alpha=0.2, num_classes=2)
    loader = TensorLoader(x, y, 32, shuffle=True, mix=lambda a, b, g: mixup(a, b, g))
    first = next(iter(loader.batches()))[1]
    assert first.shape == (32, 2) and torch.allclose(first.sum(1), torch.ones(32))
    trainer = Trainer(tiny_cnn(), TrainConfig(epochs=4, batch_size=32, **FP32))
    history = trainer.fit(loader, TensorLoader(x, y, 128))
    assert history[-1]["val_acc"] > 0.9


def test_weight_ema_is_evaluated_and_resumed(tmp_path):
    x, y = blobs(128)
    config = TrainConfig(epochs=2, batch_size=32, ema_decay=0.9, **FP32)
    trainer = Trainer(tiny_cnn(), config)
    trainer.fit(TensorLoader(x, y, 32))
    ema_weight = trainer.ema.module[0].weight
    assert not torch.equal(ema_weight, trainer.model[0].weight)  # a real average, not a copy
    assert trainer.eval_model is trainer.ema.module
    assert not torch.equal(trainer.ema.module[1].running_mean, torch.zeros(4))  # BN statistics averaged too
    restored = Trainer(tiny_cnn(), config)
    restored.load_state_dict(trainer.state_dict())
    torch.testing.assert_close(restored.ema.module[0].weight, ema_weight)


@pytest.mark.parametrize("schedule", ["cosine", "step", "constant"])
def test_schedules_with_warmup(schedule):
    x, y = blobs(64)
    config = TrainConfig(
        epochs=4, batch_size=32, **(FP32 | {"schedule": schedule}), warmup_fraction=0.25, step_epochs=2
    )
    lrs = []

    class LR(Callback):
        def on_batch_end(self, trainer, logs):
            lrs.append(trainer.optimizer.param_groups[0]["lr"])

    Trainer(tiny_cnn(), config, callbacks=[LR()]).fit(TensorLoader(x, y, 32))
    if schedule == "constant":
        assert set(lrs) == {0.05}
    else:
        assert lrs[0] < lrs[1] < 0.05 + 1e-9  # linear warm-up over the first 2 of 8 steps
        assert lrs[-1] < 0.05 * 0.5  # decayed by the end


def test_lr_find_suggests_a_working_lr_and_restores_the_model():
    from cnnlab.train.lr_find import find_lr

    x, y = blobs()
    model = tiny_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(model, TrainConfig(epochs=3, batch_size=32, **(FP32 | {"schedule": "constant"})))
    result = find_lr(trainer, TensorLoader(x, y, 32, shuffle=True), steps=60)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert 1e-4 < result.suggestion < 1.0 and min(result.losses) < result.losses[0]
    tuned = Trainer(tiny_cnn(), TrainConfig(epochs=3, batch_size=32, **(FP32 | {"lr": result.suggestion})))
    assert tuned.fit(TensorLoader(x, y, 32, shuffle=True), TensorLoader(x, y, 128))[-1]["val_acc"] > 0.9


@pytest.mark.slow
def test_compiled_training_learns_and_keeps_eager_checkpoint_names():
    x, y = blobs()
    eager, compiled = tiny_cnn(), tiny_cnn()
    trainer = Trainer(compiled, TrainConfig(epochs=3, batch_size=32, compile=True, **FP32))
    history = trainer.fit(TensorLoader(x, y, 32, shuffle=True), TensorLoader(x, y, 128))
    assert trainer.plan.compile and "torch.compile: asked for" in trainer.plan.reasons[-1]
    assert history[-1]["val_acc"] > 0.9
    assert list(trainer.state_dict()["model"]) == list(eager.state_dict())  # loads into an eager model
    assert "eager: torch.compile" in Trainer(tiny_cnn(), TrainConfig(**FP32)).plan.reasons[-1]


def test_every_run_logs_a_time_estimate_and_prints_it_when_long(tmp_path, monkeypatch) -> None:
    """run_callbacks (what every task trains with) measures a few steps, then logs the estimated time; the
    console hears of it only when it is a minute or more (a 7-minute default series run said nothing)."""
    import io

    from rich.console import Console

    import cnnlab.train.callbacks as callbacks

    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    model = nn.Sequential(nn.Linear(4, 2))
    for minimum, printed in ((60.0, False), (0.0, True)):
        monkeypatch.setattr(callbacks, "MIN_PRINTED_MINUTES", minimum)
        run = RunDir.create(tmp_path / str(minimum), "classify", "tiny")
        out = io.StringIO()
        console = Console(file=out, width=200)
        trainer = Trainer(
            model, TrainConfig(epochs=3, batch_size=4), callbacks=callbacks.run_callbacks(run, console, "loss", dict)
        )
        trainer.fit(TensorLoader(x, y, 4, True))
        log = run.log_file.read_text()
        assert "time estimate: about" in log and "x 16 steps x 3 epochs" in log
        assert ("Time estimate:" in out.getvalue()) is printed
