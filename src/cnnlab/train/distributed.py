"""Data-parallel training over several processes started by ``torchrun`` (DistributedDataParallel).

Every process runs the same program; ``torchrun`` tells each its place through ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE`` (and where to meet through ``MASTER_ADDR``/``MASTER_PORT``).

How a batch is split: ``config.batch_size`` stays the *global* batch. Every rank draws the same
global batches in the same order as a single-process run (the loader's per-epoch seeded
permutation) and keeps its contiguous share (``tensor_split``: sizes differ by at most one). DDP
averages the gradients, so with equal shares one step is the single-process step on that global
batch, and the reduced epoch metrics are the single-process ones. Each rank transforms the whole
global batch before slicing, so augmentation is identical to a single-process run too; that costs
``world_size`` times the (cheap, batched uint8) augmentation work, not the forward/backward.

Backends: NCCL when the run's device is a CUDA GPU (one process per GPU: rank ``r`` of a machine
takes ``cuda:LOCAL_RANK``, :func:`rank_device`), gloo on the CPU. ``--device auto`` on a machine with
GPUs is CUDA; ``cnnlab train --nproc N`` then needs N GPUs (``--device cpu`` trains N CPU processes).
The NCCL path has not run on a GPU machine yet (docs/gpu.md).

>>> from cnnlab.data.loader import TensorLoader
>>> numbers = TensorLoader(torch.arange(10), torch.arange(10), batch_size=4)
>>> source = ShardedBatches(numbers, World(rank=1, local_rank=1, size=2))
>>> len(source), [x.tolist() for x, _ in source.batches()]
(3, [[2, 3], [6, 7], [9]])
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from cnnlab.core.errors import ConfigError, TrainingError
from cnnlab.runtime.device import Accelerators, DeviceChoice, choose_device
from cnnlab.train.config import TrainConfig
from cnnlab.train.trainer import Batch, BatchSource, Callback, Trainer

T = TypeVar("T")


@dataclass(frozen=True)
class DistributedConfig:
    """Settings for multi-process training (used only when the program runs under torchrun)."""

    sync_bn: bool = False  # BatchNorm statistics over the global batch instead of each rank's share
    timeout_s: float = 60.0  # a collective that waits longer fails the job (e.g. a rank died or hangs)

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ConfigError(
                f"timeout_s must be positive. Received: timeout_s={self.timeout_s}",
                where="DistributedConfig",
                fix="pass a number of seconds, e.g. 60",
            )


@dataclass(frozen=True)
class World:
    """This process's place in the job: global ``rank``, ``local_rank`` on its machine, ``size`` processes."""

    rank: int
    local_rank: int
    size: int

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes the run folder, checkpoints and report, and prints."""
        return self.rank == 0


def world_from_env(env: Mapping[str, str] | None = None) -> World | None:
    """This process's :class:`World` from torchrun's variables, or ``None`` outside torchrun.

    >>> world_from_env({"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2"})
    World(rank=1, local_rank=1, size=2)
    >>> world_from_env({}) is None
    True
    """
    env = os.environ if env is None else env
    if "WORLD_SIZE" not in env:
        return None
    try:
        return World(int(env["RANK"]), int(env.get("LOCAL_RANK", env["RANK"])), int(env["WORLD_SIZE"]))
    except (KeyError, ValueError):
        raise ConfigError(
            "WORLD_SIZE is set but RANK is missing or not a number",
            where="environment",
            fix="start the program with torchrun (or cnnlab train --nproc N), or unset WORLD_SIZE",
        ) from None


FINISH_TIMEOUT_S = 3600.0  # how long other ranks wait at the end for rank 0's evaluation and report


def rank_device(request: str, world: World, caps: Accelerators | None = None) -> DeviceChoice:
    """This rank's device for a run's ``--device``: on CUDA one GPU per process, ``cuda:LOCAL_RANK``; else the CPU.

    >>> two = Accelerators(cuda_built=True, cuda_names=("A100", "A100"), cuda_bf16=(True, True))
    >>> rank_device("auto", World(rank=3, local_rank=1, size=4), two).device
    device(type='cuda', index=1)
    >>> rank_device("auto", World(0, 0, 2), Accelerators()).device
    device(type='cpu')
    >>> rank_device("cuda", World(2, 2, 3), two)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.ConfigError: local rank 2 has no GPU: this machine has 2 [--nproc]. Fix: pass --nproc 2 ...
    """
    choice = choose_device(request, caps)
    if choice.device.type == "mps":
        if request.strip().lower() != "auto":
            raise ConfigError(
                "distributed training runs on CUDA GPUs (NCCL) or the CPU (gloo), not on MPS",
                where="--device",
                fix="pass --device cpu with --nproc, or train in one process on mps",
            )
        return DeviceChoice(torch.device("cpu"), "device cpu: auto with --nproc (MPS does not train distributed)")
    if choice.device.type != "cuda":
        return choice
    caps = caps or Accelerators.detect()
    if ":" in request and world.size > 1:
        raise ConfigError(
            f"--device {request} names one GPU, and --nproc trains one process per GPU",
            where="--device",
            fix="pass --device cuda (rank r of a machine takes cuda:r)",
        )
    index = choice.device.index if ":" in request else world.local_rank
    if index >= caps.cuda_count:
        raise ConfigError(
            f"local rank {world.local_rank} has no GPU: this machine has {caps.cuda_count}",
            where="--nproc",
            fix=f"pass --nproc {caps.cuda_count} (one process per GPU), or --device cpu",
        )
    name = caps.cuda_names[index]
    return DeviceChoice(
        torch.device("cuda", index), f"device cuda:{index} ({name}): local rank {world.local_rank}'s GPU"
    )


@contextlib.contextmanager
def process_group(world: World, timeout_s: float = 60.0, device: str = "cpu") -> Iterator[None]:
    """Join the process group (``MASTER_ADDR``/``MASTER_PORT`` from torchrun) and leave it on exit: NCCL when
    the run's ``device`` is CUDA for this rank (:func:`rank_device`, made the current GPU), else gloo.

    ``timeout_s`` bounds every collective, so a rank that dies or stalls ends the job instead of hanging it.
    """
    place = rank_device(device, world).device
    backend = "nccl" if place.type == "cuda" else "gloo"
    options: dict[str, Any] = {}
    if backend == "nccl":
        torch.cuda.set_device(place)  # object collectives (broadcast_from_main) use the current GPU
        options["device_id"] = place
    dist.init_process_group(
        backend,
        rank=world.rank,
        world_size=world.size,
        timeout=timedelta(seconds=timeout_s),
        init_method="env://",
        **options,
    )
    try:
        # NCCL has no monitored barrier, and its collectives all share timeout_s: the long wait at the end
        # goes through a gloo group of its own.
        finish = dist.new_group(backend="gloo") if backend == "nccl" else None
        yield
        # Leave together: a rank that tears its group down while rank 0 is still writing the report
        # can abort in gloo's destructor ("terminate called without an active exception").
        dist.monitored_barrier(group=finish, timeout=timedelta(seconds=max(timeout_s, FINISH_TIMEOUT_S)))
    finally:
        dist.destroy_process_group()


def broadcast_from_main(value: T) -> T:
    """Rank 0's ``value`` on every rank (any picklable object)."""
    box: list[Any] = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sum_over_ranks(sums: dict[str, torch.Tensor], seen: int) -> tuple[dict[str, torch.Tensor], int]:
    """Add up every rank's metric sums and sample counts (ranks may hold different keys, e.g. none at all)."""
    local = ({key: float(value) for key, value in sums.items()}, seen)
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, local)
    totals: dict[str, float] = {}
    for rank_sums, _ in gathered:
        for key, value in rank_sums.items():
            totals[key] = totals.get(key, 0.0) + value
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in totals.items()}, sum(n for _, n in gathered)


class ShardedBatches:
    """This rank's contiguous share of every global batch of ``source`` (a :class:`BatchSource`).

    ``lockstep=True`` (training): every rank takes part in every step, so a final global batch
    with fewer samples than ranks is skipped by all of them (at most ``size - 1`` samples an
    epoch). ``lockstep=False`` (evaluation, no collectives per batch): a rank whose share is empty
    skips it, so every sample is counted exactly once.
    """

    def __init__(self, source: BatchSource, world: World, lockstep: bool = True) -> None:
        self.source, self.world, self.lockstep = source, world, lockstep

    def __len__(self) -> int:
        """Global batches: the step count, and so the LR schedule, of a single-process run."""
        return len(self.source)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[Batch]:
        """``start`` counts global batches, so a checkpoint's position means the same at any world size."""
        for batch in self.source.batches(epoch, start):
            if self.lockstep and len(batch[0]) < self.world.size:
                return
            share = [part.tensor_split(self.world.size)[self.world.rank] for part in batch]
            if len(share[0]):
                yield share


class DistributedTrainer(Trainer):
    """A :class:`Trainer` whose training steps run through DDP and whose metrics are summed over ranks.

    Feed it :class:`ShardedBatches`. Checkpoints (``state_dict``) hold the plain model's weights, the
    same as a single-process run's, so either kind resumes the other. Callbacks that write files
    belong on rank 0 only; callbacks that stop training must run on every rank (they see the same
    reduced logs, so they decide alike).
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig | None = None,
        *,
        world: World,
        sync_bn: bool = False,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        model = convert_sync_batchnorm(model) if sync_bn else model
        self.world = world  # before the plan: it decides this rank's device
        super().__init__(model, config, loss_fn=loss_fn, callbacks=callbacks)
        self.module = self.model  # the plain model: checkpoints, evaluation and prediction use it
        on_gpu = [self.device.index] if self.device.type == "cuda" else None
        self.ddp = DistributedDataParallel(self.module, device_ids=on_gpu)  # broadcasts rank 0's weights and buffers
        self.model = self.ddp

    def device_request(self) -> DeviceChoice:
        """This rank's device: ``cuda:LOCAL_RANK`` on CUDA (:func:`rank_device`), else the CPU."""
        return rank_device(self.config.device, self.world)

    def reduce_sums(self, sums: dict[str, torch.Tensor], seen: int) -> tuple[dict[str, torch.Tensor], int]:
        return sum_over_ranks(sums, seen)

    def _run_epoch(self, train: BatchSource, val: BatchSource | None, last: bool) -> None:
        super()._run_epoch(train, val, last)
        if self.step_in_epoch:  # stopped mid-epoch (every rank alike): rank 0 holds the totals for its checkpoint
            sums, seen = self.reduce_sums(self._sums, self._seen)
            self._sums, self._seen = (sums, seen) if self.world.is_main else ({}, 0)

    def evaluate(self, data: BatchSource) -> dict[str, float]:
        """Mean metrics over every rank's share of ``data`` (each rank must call it)."""
        with self._plain_model():
            return super().evaluate(data)

    def predict(self, data: BatchSource) -> torch.Tensor:
        """Logits of this rank's data through the plain model (no collectives: rank 0 may call it alone)."""
        with self._plain_model():
            return super().predict(data)

    @property
    def eval_model(self) -> nn.Module:
        """The plain model (or its EMA copy), never the DDP wrapper: rank 0 may run it alone after training."""
        with self._plain_model():
            return super().eval_model

    def state_dict(self) -> dict[str, Any]:
        with self._plain_model():
            return super().state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Every rank loads the same checkpoint; a mid-epoch checkpoint's metric sums stay on rank 0 alone,
        so the sum over ranks counts them once."""
        with self._plain_model():
            super().load_state_dict(state)
        if not self.world.is_main:
            self._sums, self._seen = {}, 0

    @contextlib.contextmanager
    def _plain_model(self) -> Iterator[None]:
        self.model = self.module
        try:
            yield
        finally:
            self.model = self.ddp


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics cover the global batch (all ranks), on CPU tensors too.

    torch's ``nn.SyncBatchNorm`` runs on GPUs only; this sums each channel's count, sum and sum of
    squares over ranks with an all-reduce whose backward all-reduces the gradient,
    which is what the global-batch BatchNorm's gradient needs. Outside a process group, or in eval
    mode, it is a plain BatchNorm; its weights and buffers have BatchNorm's names, so checkpoints
    load into the unconverted model.

    >>> bn = GlobalBatchNorm(3)
    >>> x = torch.randn(8, 3, 4, 4)
    >>> torch.allclose(bn(x), nn.BatchNorm2d(3)(x))
    True
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"GlobalBatchNorm expects (N, C, ...) inputs, got shape {tuple(input.shape)}")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(input)
        self._check_input_dim(input)
        channels = input.shape[1]
        dims = [0, *range(2, input.dim())]
        x = input.float()
        count = x.new_full((1,), input.numel() // channels)
        stats = _SumOverRanks.apply(torch.cat([x.sum(dims), (x * x).sum(dims), count]))  # (2C + 1,) over ranks
        n = stats[-1]
        mean = stats[:channels] / n
        var = (stats[channels : 2 * channels] / n - mean * mean).clamp_min(0)  # biased, as BatchNorm normalises
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                assert self.num_batches_tracked is not None
                self.num_batches_tracked.add_(1)
                factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean, factor)
                self.running_var.lerp_(var * n / (n - 1).clamp_min(1), factor)  # unbiased, as BatchNorm stores
        shape = [1, channels] + [1] * (input.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)  # (N, C, ...)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(input.dtype)


class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) whose gradient is the all-reduced gradient: each rank's loss depends on every rank's input."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


def convert_sync_batchnorm(model: nn.Module) -> nn.Module:
    """``model`` with every BatchNorm replaced (in place) by a :class:`GlobalBatchNorm` holding the same state.

    >>> model = convert_sync_batchnorm(nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)))
    >>> type(model[1]).__name__
    'GlobalBatchNorm'
    """
    for name, child in list(model.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, GlobalBatchNorm):
            synced = GlobalBatchNorm(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
            )
            tensors = [*child.parameters(), *child.buffers()]
            if tensors:
                synced.to(tensors[0].device)
            synced.load_state_dict(child.state_dict())
            synced.train(child.training)
            setattr(model, name, synced)
        else:
            convert_sync_batchnorm(child)
    return model


def launch_local(nproc: int, program: Sequence[str]) -> None:
    """Run ``python <program>`` as ``nproc`` processes on this machine through torchrun (``--standalone``).

    Raises :class:`TrainingError` when the job fails; torchrun has then stopped the other ranks.
    Ctrl-C stops torchrun, which stops its workers.
    """
    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1. Received: --nproc={nproc}", where="--nproc", fix="pass 1 or more")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *program]
    with subprocess.Popen(command) as job:
        try:
            status = job.wait()
        except KeyboardInterrupt:
            job.send_signal(signal.SIGTERM)  # torchrun's agent terminates its workers on SIGTERM
            job.wait()
            raise
    if status != 0:
        raise TrainingError(
            f"distributed training failed: torchrun exited with status {status}",
            where=f"{nproc} processes",
            fix="the failing rank's error is printed above (torchrun names the rank and its exit code); "
            "fix it and rerun, or --resume the run folder from its last checkpoint",
        )
