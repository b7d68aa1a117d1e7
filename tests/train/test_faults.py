"""Fault cases of training: tiny schedules, lost best.pt, SIGTERM, an empty training set."""

import math
import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from cnnlab.core.errors import DataError
from cnnlab.core.rundir import RunDir, load_checkpoint
from cnnlab.data.loader import TensorLoader
from cnnlab.train.callbacks import Checkpointer, RunLogger
from cnnlab.train.config import TrainConfig
from cnnlab.train.lr_find import find_lr
from cnnlab.train.trainer import Callback, Trainer, _make_scheduler

FP32 = {"precision": "fp32", "seed": 0, "optimizer": "sgd", "lr": 0.1}


@pytest.mark.parametrize("warmup", [0.0, 0.2, 0.5])
@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "step"])
def test_every_schedule_works_for_1_to_12_steps(schedule, warmup):
    for total in range(1, 13):
        optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
        config = TrainConfig(schedule=schedule, warmup_fraction=warmup, step_epochs=1)
        scheduler, _ = _make_scheduler(optimizer, config, total, steps_per_epoch=2)
        assert scheduler is not None
        used = []
        for _ in range(total):
            used.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        final = optimizer.param_groups[0]["lr"]
        assert all(math.isfinite(lr) and lr > 0 for lr in used), (total, used)
        assert math.isfinite(final) and final >= 0, (total, final)


def test_onecycle_falls_back_visibly_when_its_rising_phase_is_empty(tmp_path, one_thread):
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    run = RunDir.create(tmp_path, "classify", "tiny")
    trainer = Trainer(nn.Linear(4, 2), TrainConfig(epochs=5, schedule="onecycle", **FP32), callbacks=[RunLogger(run)])
    history = trainer.fit(TensorLoader(x, y, 8))  # 5 epochs x 1 batch: one-cycle's rising phase is 0.2 x 5 = 1 step
    assert len(history) == 5 and all(math.isfinite(h["lr"]) for h in history)
    assert trainer.schedule_note is not None and "cosine decay from the peak LR" in trainer.schedule_note
    assert f"LR schedule: {trainer.schedule_note}" in run.log_file.read_text()

    plenty = Trainer(nn.Linear(4, 2), TrainConfig(epochs=10, schedule="onecycle", **FP32))
    plenty.fit(TensorLoader(x, y, 8))
    assert plenty.schedule_note is None and isinstance(plenty.scheduler, torch.optim.lr_scheduler.OneCycleLR)


class StopAfter(Callback):
    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_batch_end(self, trainer, logs):
        if trainer.global_step == self.steps:
            trainer.stop_reason = "interrupted"


class LRs(Callback):
    """The LR after every step (the one the next step uses)."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def on_batch_end(self, trainer, logs):
        self.seen.append(trainer.optimizer.param_groups[0]["lr"])


def test_resume_rebuilds_the_schedule_over_its_whole_length(one_thread):
    """10 one-cycle steps stopped after 5: the 5 steps left alone would make an empty rising phase."""
    x, y = torch.randn(40, 4), torch.randint(0, 2, (40,))
    config = TrainConfig(epochs=2, schedule="onecycle", warmup_fraction=0.2, **FP32)
    reference = LRs()
    torch.manual_seed(0)
    Trainer(nn.Linear(4, 2), config, callbacks=[reference]).fit(TensorLoader(x, y, 8))

    torch.manual_seed(0)
    first = Trainer(nn.Linear(4, 2), config, callbacks=[StopAfter(5)])
    first.fit(TensorLoader(x, y, 8))
    resumed_lrs = LRs()
    resumed = Trainer(nn.Linear(4, 2), config, callbacks=[resumed_lrs])
    resumed.load_state_dict(first.state_dict())
    resumed.fit(TensorLoader(x, y, 8))
    assert resumed.schedule_note is None
    assert resumed_lrs.seen == pytest.approx(reference.seen[5:])


@pytest.mark.parametrize("schedule", ["cosine", "step", "onecycle"])
def test_resuming_with_more_epochs_trains_the_added_epochs(one_thread, schedule):
    """Cosine ends at LR 0: the new schedule over the added epochs must not start from there."""
    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    config = TrainConfig(epochs=2, schedule=schedule, warmup_fraction=0.0, step_epochs=1, **FP32)
    first = Trainer(nn.Linear(4, 2), config)
    first.fit(TensorLoader(x, y, 8))
    longer_lrs = LRs()
    longer = Trainer(nn.Linear(4, 2), config, callbacks=[longer_lrs])
    longer.load_state_dict(first.state_dict())
    longer.fit(TensorLoader(x, y, 8), epochs=4)
    assert len(longer_lrs.seen) == 8 and longer_lrs.seen[0] == pytest.approx(0.1, rel=0.1)
    assert all(lr > 0 for lr in longer_lrs.seen[:-1])  # the LR after each step but the last (cosine ends at 0)


@pytest.mark.parametrize("epochs", [1, 3])
def test_resume_after_a_kill_between_last_and_best_still_writes_best(tmp_path, one_thread, epochs):
    """The kill came after last.pt and before best.pt; no later epoch beats the restored best score."""
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    run = RunDir.create(tmp_path, "classify", "k")
    config = TrainConfig(epochs=1, **FP32)
    Trainer(nn.Linear(4, 2), config, callbacks=[Checkpointer(run, "val_acc")]).fit(
        TensorLoader(x, y, 8), TensorLoader(x, y, 16)
    )
    run.best_checkpoint.unlink()

    state = load_checkpoint(run.last_checkpoint) | {"best_score": 2.0}  # accuracy never exceeds 1
    resumed = Trainer(nn.Linear(4, 2), TrainConfig(epochs=epochs, **FP32), callbacks=[Checkpointer(run, "val_acc")])
    resumed.load_state_dict(state)
    resumed.fit(TensorLoader(x, y, 8), TensorLoader(x, y, 16))
    assert resumed.stop_reason is None and resumed.epoch == epochs
    assert run.best_checkpoint.is_file()
    assert load_checkpoint(run.best_checkpoint)["epoch"] >= 1


class _Slow:
    """1,000 batches of 20 ms each; tells the test when training is under way."""

    def __init__(self, started: Any) -> None:
        self.started = started

    def __len__(self) -> int:
        return 1000

    def batches(self, epoch: int = 0, start: int = 0):
        for step in range(start, 1000):
            if step == 2:
                self.started.set()
            time.sleep(0.02)
            yield torch.randn(4, 3), torch.randint(0, 2, (4,))


def _train_until_signalled(run_path: str, started: Any) -> None:
    torch.set_num_threads(1)  # a forked child must not use the parent's thread pool
    run = RunDir(Path(run_path))
    trainer = Trainer(nn.Linear(3, 2), TrainConfig(epochs=1, **FP32), callbacks=[Checkpointer(run, "loss")])
    trainer.fit(_Slow(started))
    (run.path / "stopped.txt").write_text(f"{trainer.stop_reason} {trainer.stop_signal}")


def test_sigterm_stops_after_the_batch_and_saves_a_checkpoint(tmp_path):
    """What docker, Kubernetes and Slurm send before killing: a process (forked: no second torch import)."""
    run = RunDir.create(tmp_path, "classify", "term")
    fork = multiprocessing.get_context("fork")
    started = fork.Event()
    job = fork.Process(target=_train_until_signalled, args=(str(run.path), started))
    job.start()
    try:
        assert started.wait(timeout=30)
        os.kill(job.pid, signal.SIGTERM)
        job.join(timeout=30)
    finally:
        job.kill()
    assert job.exitcode == 0
    assert (run.path / "stopped.txt").read_text() == "interrupted SIGTERM"
    state = load_checkpoint(run.last_checkpoint)
    assert state["epoch"] == 0 and 2 <= state["step_in_epoch"] < 1000


def test_fit_on_an_empty_training_set_is_a_data_error(one_thread):
    empty = TensorLoader(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), 8)
    trainer = Trainer(nn.Linear(4, 2), TrainConfig(epochs=2, **FP32))
    with pytest.raises(DataError, match="no training batches: the training set is empty"):
        trainer.fit(empty)
    with pytest.raises(DataError, match="no training batches"):
        find_lr(trainer, empty, steps=3)
