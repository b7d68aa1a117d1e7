"""Distributed training: sharding, reduced metrics, DDP equivalence, a killed rank, the CLI run folder.

The multi-process tests start 2 gloo processes through torchrun (``launch_local``) running this
file as a script (see ``__main__`` at the bottom); each rank saves what it ended with, and the
test compares it with a single-process run in the test process.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.cli.app import main as cli_main
from cnnlab.core.config import load_yaml
from cnnlab.core.errors import ConfigError, TrainingError
from cnnlab.core.rundir import load_checkpoint
from cnnlab.data.loader import TensorLoader
from cnnlab.tasks.classify.config import RunConfig
from cnnlab.train.config import TrainConfig
from cnnlab.train.distributed import (
    DistributedTrainer,
    GlobalBatchNorm,
    ShardedBatches,
    World,
    convert_sync_batchnorm,
    launch_local,
    process_group,
    world_from_env,
)
from cnnlab.train.trainer import Callback, Logs, Trainer

CONFIG = TrainConfig(epochs=2, batch_size=16, precision="fp32", optimizer="sgd", lr=0.1, seed=3)
STOP_AT = 3  # the resumed run stops after this many steps of epoch 1, then a new trainer continues


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(96, 1, 8, 8, generator=g), torch.randint(0, 3, (96,), generator=g)


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    )


def loader() -> TensorLoader:
    return TensorLoader(*data(), batch_size=CONFIG.batch_size, shuffle=True, seed=CONFIG.seed)


class StopAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_batch_end(self, trainer: Trainer, logs: Logs) -> None:
        if trainer.global_step == self.step:
            trainer.stop_reason = "interrupted"


class KillSelf(Callback):
    def on_batch_end(self, trainer: Trainer, logs: Logs) -> None:
        if trainer.global_step == 2:
            os.kill(os.getpid(), signal.SIGKILL)


# ----- no process group ------------------------------------------------------------------------
def test_shards_cover_every_global_batch_once_in_order():
    source = TensorLoader(torch.arange(23), torch.arange(23), batch_size=8, shuffle=True, seed=5)
    for size in (2, 3):
        shards = [list(ShardedBatches(source, World(r, r, size)).batches(epoch=1)) for r in range(size)]
        for step, global_batch in enumerate(source.batches(epoch=1)):
            parts = [shards[r][step][0] for r in range(size)]
            assert torch.equal(torch.cat(parts), global_batch[0])  # contiguous shares, rank order
            assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_lockstep_skips_a_final_batch_smaller_than_the_world_but_evaluation_keeps_it():
    source = TensorLoader(torch.arange(9), torch.arange(9), batch_size=4)  # batches of 4, 4, 1
    train = [len(x) for x, _ in ShardedBatches(source, World(1, 1, 2)).batches()]
    shares = [ShardedBatches(source, World(r, r, 2), lockstep=False) for r in (0, 1)]
    evaluate = [[x.tolist() for x, _ in share.batches()] for share in shares]
    assert train == [2, 2]
    assert evaluate == [[[0, 1], [4, 5], [8]], [[2, 3], [6, 7]]]


def test_a_checkpoint_position_counts_global_batches():
    source = ShardedBatches(loader(), World(0, 0, 2))
    assert [x.tolist() for x, _ in source.batches(1, start=2)] == [x.tolist() for x, _ in source.batches(1)][2:]


def test_world_from_env_reads_torchrun_variables_and_explains_a_broken_one():
    assert world_from_env({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4"}) == World(3, 1, 4)
    assert world_from_env({"PATH": "/bin"}) is None
    with pytest.raises(ConfigError, match="torchrun"):
        world_from_env({"WORLD_SIZE": "2"})


def test_global_batchnorm_converts_with_the_same_state_and_names():
    plain = model()
    plain(torch.randn(8, 1, 8, 8))  # moves the running statistics away from their defaults
    before = {k: v.clone() for k, v in plain.state_dict().items()}
    converted = convert_sync_batchnorm(plain)
    assert isinstance(converted[1], GlobalBatchNorm)
    after = converted.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_global_batchnorm_in_a_one_process_group_matches_batchnorm(tmp_path, monkeypatch):
    """Inside a process group it takes its own (differentiable) path; with one rank that path must be BatchNorm."""
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    with socket.socket() as probe:  # a free port for the group's rendezvous
        probe.bind(("127.0.0.1", 0))
        monkeypatch.setenv("MASTER_PORT", str(probe.getsockname()[1]))
    x = torch.randn(6, 3, 5, 5, requires_grad=True)
    reference, synced = nn.BatchNorm2d(3), convert_sync_batchnorm(nn.Sequential(nn.BatchNorm2d(3)))[0]
    with process_group(World(0, 0, 1), timeout_s=10):
        out = synced(x)
        (out * torch.arange(5.0)).sum().backward()
    grad = x.grad.clone()
    x.grad = None
    expected = reference(x)
    (expected * torch.arange(5.0)).sum().backward()
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(grad, x.grad, atol=1e-5)
    assert torch.allclose(synced.running_var, reference.running_var, atol=1e-6)
    assert torch.allclose(synced.running_mean, reference.running_mean, atol=1e-6)


# ----- 2 gloo processes ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    launch_local(2, [__file__, "equivalence", str(out)])
    return out


@pytest.mark.slow
def test_parameters_stay_identical_across_ranks(two_ranks):
    rank0, rank1 = (torch.load(two_ranks / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["model"].keys() == rank1["model"].keys()
    for key in rank0["model"]:
        assert torch.equal(rank0["model"][key], rank1["model"][key]), key
    without_time = [[{k: v for k, v in logs.items() if k != "time_s"} for logs in r["history"]] for r in (rank0, rank1)]
    assert without_time[0] == without_time[1]  # reduced metrics: every rank logs the same numbers


@pytest.mark.slow
def test_two_ranks_train_like_one_process_on_the_same_global_batches(two_ranks):
    """Sharded batches + DDP + BatchNorm over the global batch + a mid-epoch stop and resume = one process."""
    single = Trainer(model(), CONFIG)
    history = single.fit(loader())
    ranked = torch.load(two_ranks / "rank0.pt", weights_only=True)
    for got, want in zip(ranked["history"], history, strict=True):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)
        assert got["acc"] == pytest.approx(want["acc"], abs=1e-9)
    for key, value in single.model.state_dict().items():
        assert torch.allclose(ranked["model"][key].float(), value.float(), atol=1e-5), key


@pytest.mark.slow
def test_a_killed_rank_ends_the_job_with_an_error_instead_of_hanging(tmp_path):
    started = time.monotonic()
    with pytest.raises(TrainingError, match="torchrun exited with status"):
        launch_local(2, [__file__, "kill", str(tmp_path)])
    assert time.monotonic() - started < 90


@pytest.mark.slow
def test_cli_nproc_2_writes_the_run_folder_of_a_single_process_run(tmp_path, monkeypatch):
    x, y = data()
    images = (x.clamp(-2, 2) * 60 + 128).to(torch.uint8).permute(0, 2, 3, 1).numpy()  # (N, H, W, 1)
    np.savez(tmp_path / "tiny.npz", x=images, y=y.numpy())
    monkeypatch.chdir(tmp_path)
    common = ["--data", "tiny.npz", "--model", "cnn_small", "--epochs", "1", "--batch-size", "16"]
    assert cli_main(["train", *common, "--name", "one"]) == 0
    assert cli_main(["train", *common, "--name", "two", "--nproc", "2"]) == 0
    one, two = tmp_path / "runs/classify/one-1", tmp_path / "runs/classify/two-1"
    assert sorted(p.relative_to(two).as_posix() for p in two.rglob("*")) == sorted(
        p.relative_to(one).as_posix() for p in one.rglob("*")
    )
    assert not list((tmp_path / "runs/classify").glob("two-2"))  # rank 1 made no folder of its own
    checkpoint = load_checkpoint(two / "checkpoints/last.pt")
    assert checkpoint["epoch"] == 1 and not any(k.startswith("module.") for k in checkpoint["model"])
    assert load_yaml(RunConfig, two / "config.yaml") == dataclasses.replace(
        load_yaml(RunConfig, one / "config.yaml"), name="two"
    )
    assert "distributed: 2 processes" in (two / "log.txt").read_text()


# ----- what each rank runs ---------------------------------------------------------------------
def _equivalence(out: Path, world: World) -> None:
    """Train with a stop after STOP_AT steps, save rank 0's checkpoint, resume in a new trainer, save."""
    first = DistributedTrainer(model(), CONFIG, world=world, sync_bn=True, callbacks=[StopAt(STOP_AT)])
    first.fit(ShardedBatches(loader(), world))
    if world.is_main:
        torch.save(first.state_dict(), out / "checkpoint.pt")
    torch.distributed.barrier()
    fresh = model()
    torch.manual_seed(100 + world.rank)  # different fresh weights per rank: the checkpoint must win
    with torch.no_grad():
        for parameter in fresh.parameters():
            parameter.normal_()
    second = DistributedTrainer(fresh, CONFIG, world=world, sync_bn=True)
    second.load_state_dict(torch.load(out / "checkpoint.pt", weights_only=False))
    history = second.fit(ShardedBatches(loader(), world))
    assert second.eval_model is second.module  # not the DDP wrapper: rank 0 evaluates it alone afterwards
    torch.save({"model": second.state_dict()["model"], "history": history}, out / f"rank{world.rank}.pt")


def _kill(out: Path, world: World) -> None:
    callbacks = [KillSelf()] if world.rank == 1 else []
    trainer = DistributedTrainer(model(), TrainConfig(epochs=1000, batch_size=16), world=world, callbacks=callbacks)
    trainer.fit(ShardedBatches(loader(), world))


if __name__ == "__main__":
    mode, folder = sys.argv[1], Path(sys.argv[2])
    this = world_from_env()
    assert this is not None, "run through torchrun"
    with process_group(this, timeout_s=30):
        {"equivalence": _equivalence, "kill": _kill}[mode](folder, this)
