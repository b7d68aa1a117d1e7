"""The Trainer: step methods you can override, a thin loop, and explicit callbacks.

Callback order: ``on_fit_start``, then per epoch ``on_epoch_start``, ``on_batch_end`` after every
step, ``on_epoch_end``; finally ``on_fit_end`` (also after Ctrl-C). Stopping is a flag
(``trainer.stop_reason``), not an exception. Ctrl-C or SIGTERM (what docker, Kubernetes and Slurm
send) once stops after the current batch (the checkpoint callback then saves a resumable mid-epoch
checkpoint); a second signal aborts at once.

The device is ``config.device`` (``auto``: the first CUDA GPU, else MPS, else the CPU; see
:mod:`cnnlab.runtime.device`): the model moves there, every batch is copied there (from pinned memory,
non-blocking, on CUDA), the forward pass runs under the plan's autocast (fp16 with a GradScaler on GPUs
without native bf16), and ``predict`` returns CPU tensors. Running out of GPU memory stops the fit with a
:class:`~cnnlab.core.errors.TrainingError` that names a batch size to try; the last checkpoint stays.

>>> import torch
>>> from torch import nn
>>> from cnnlab.data.loader import TensorLoader
>>> x, y = torch.randn(64, 1, 4, 4), torch.randint(0, 2, (64,))
>>> trainer = Trainer(nn.Sequential(nn.Flatten(), nn.Linear(16, 2)), TrainConfig(epochs=2, batch_size=16))
>>> history = trainer.fit(TensorLoader(x, y, batch_size=16))
>>> len(history), sorted(history[-1])
(2, ['acc', 'epoch', 'loss', 'lr', 'time_s'])
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import torch
from torch import nn

from cnnlab.core.errors import DataError, TrainingError
from cnnlab.runtime.conv3d_guard import guard_shallow_conv3d
from cnnlab.runtime.device import DeviceChoice, to_device
from cnnlab.runtime.fast_dropout import use_hash_dropout
from cnnlab.runtime.precision import SpeedPlan, apply_backend_settings, plan_speed
from cnnlab.train.config import TrainConfig
from cnnlab.train.metrics import Metric, accuracy, hard_labels
from cnnlab.train.precise_bn import recompute_batchnorm

Batch = Sequence[torch.Tensor]
Logs = dict[str, Any]
_OUT_OF_MEMORY: type[Exception] = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
_CPU = torch.device("cpu")


class BatchSource(Protocol):
    """What the trainer iterates: batches, a length, and a per-epoch reshuffle."""

    def __len__(self) -> int: ...
    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[Batch]: ...


class Callback:
    """Base class: override the hooks you need; each receives ``(trainer, logs)``."""

    def on_fit_start(self, trainer: Trainer, logs: Logs) -> None: ...
    def on_epoch_start(self, trainer: Trainer, logs: Logs) -> None: ...
    def on_batch_end(self, trainer: Trainer, logs: Logs) -> None: ...
    def on_epoch_end(self, trainer: Trainer, logs: Logs) -> None: ...
    def on_fit_end(self, trainer: Trainer, logs: Logs) -> None: ...


class Trainer:
    """Train and evaluate an ``nn.Module`` classifier on batches of ``(inputs, targets)``."""

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig | None = None,
        *,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        callbacks: Sequence[Callback] = (),
        param_groups: Sequence[dict[str, Any]] | None = None,
        metrics: Sequence[Metric] = (),
    ) -> None:
        """``param_groups`` (optional) are torch optimiser groups, e.g. per-layer learning rates for fine-tuning;
        by default one group holds every parameter with ``requires_grad``. ``metrics`` are metric objects
        (:class:`~cnnlab.train.metrics.Metric`) that :meth:`evaluate` feeds every batch's outputs and reports
        over the whole set (IoU from one confusion matrix, mAP, ROC: what a mean of batch means cannot give)."""
        self.metrics = list(metrics)
        self.config = config or TrainConfig()
        if self.config.deterministic:
            torch.use_deterministic_algorithms(True)
        self.plan: SpeedPlan = plan_speed(
            self.config.precision,
            self.config.channels_last,
            compile=self.config.compile,
            fast_dropout=self.config.fast_dropout,
            device=self.device_request(),
            deterministic=self.config.deterministic,
        )
        three_d = any(p.dim() == 5 for p in model.parameters())
        if self.plan.channels_last and three_d:
            layout = "NCDHW: channels_last is torch's layout for 2-D convs, and this model has 3-D ones"
            self.plan = dataclasses.replace(self.plan, channels_last=False, reasons=(*self.plan.reasons, layout))
        if three_d and self.plan.bf16 and self.plan.device_type == "cpu" and guard_shallow_conv3d(model):
            self.plan = dataclasses.replace(self.plan, reasons=(*self.plan.reasons, CONV3D_BF16_CPU))
        self.device = torch.device(self.plan.device)
        apply_backend_settings(self.plan)
        model.to(self.device)  # in place: parameters keep their identity (param_groups, callers' references)
        self.model = model.to(memory_format=torch.channels_last) if self.plan.channels_last else model
        self.scaler = torch.amp.GradScaler(self.plan.device_type) if self.plan.grad_scaler else None
        if self.plan.fast_dropout:
            use_hash_dropout(self.model)
        self.loss_fn = loss_fn or nn.CrossEntropyLoss(label_smoothing=self.config.label_smoothing)
        self.callbacks = list(callbacks)
        self.optimizer = _make_optimizer(model, self.config, param_groups)
        # Weight EMA (Polyak averaging): evaluation and prediction use the averaged copy.
        self.ema = (
            torch.optim.swa_utils.AveragedModel(
                self.model,
                multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(self.config.ema_decay),
                use_buffers=True,  # BatchNorm statistics are averaged too, not frozen at their initial values
            )
            if self.config.ema_decay
            else None
        )
        if self.plan.compile:
            self.model.compile()  # in place: parameter names and checkpoints stay those of the eager model
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        self._pending_optimizer_state: dict[str, Any] | None = None
        self._pending_scheduler_state: dict[str, Any] | None = None
        self.epoch = 0  # the epoch in progress (or the next one to run)
        self.step_in_epoch = 0  # batches of `epoch` already done (non-zero only in a mid-epoch checkpoint)
        self.global_step = 0
        self.schedule_steps = 0  # the global step at which the LR schedule ends
        self.schedule_start = 0  # the global step at which it began (it spans schedule_steps - schedule_start)
        self.schedule_note: str | None = None  # why the LR schedule differs from config.schedule, if it does
        self.history: list[Logs] = []
        self.best_score: float | None = None
        self.stop_reason: str | None = None
        self.stop_signal: str | None = None  # "SIGINT" or "SIGTERM" when a signal stopped the fit
        self._sums: dict[str, torch.Tensor] = {}
        self._seen = 0
        self._evaluating = False  # what an out-of-memory error was doing: evaluating or training
        self._batch_size = self.config.batch_size or 0  # the last batch's size (what out of memory reports)

    def device_request(self) -> str | DeviceChoice:
        """The device to ask the plan for: ``config.device`` (the distributed trainer: this rank's GPU)."""
        return self.config.device

    # ----- steps: override these -------------------------------------------------------------
    def prepare(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Move a batch to the device and into the model's layout (channels_last for images)."""
        x, y = self.to_device(batch[0]), self.to_device(batch[1])
        if self.plan.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def to_device(self, value: Any) -> Any:
        """``value`` (a tensor, or lists, tuples and dicts of them) on the trainer's device; on CUDA copied from
        pinned host memory without waiting (the copy queues behind the running step). Unchanged on the CPU."""
        if self.device.type == "cpu":
            return value
        return to_device(value, self.device, non_blocking=True, pin=self.plan.pin_memory)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.device.type == "cpu":
            return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.plan.bf16)
        return torch.autocast(self.plan.device_type, dtype=self.plan.autocast_dtype, enabled=self.plan.mixed)

    def logits(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``model``'s output for a prepared batch (``model`` is the trained one or its EMA copy)."""
        with self.autocast():
            return model(x)

    def optimise(self, loss: torch.Tensor) -> None:
        """Backward pass, optional gradient clipping, optimiser and scheduler step, EMA update (fp16: through the
        GradScaler, which skips a step whose gradients overflowed and lowers its scale)."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            if self.config.grad_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            if self.config.grad_clip:
                self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def train_step(self, batch: Batch) -> Logs:
        """One optimisation step; returns batch-mean metrics as 0-d tensors."""
        x, y = self.prepare(batch)
        logits = self.logits(self.model, x)
        loss = self.loss_fn(logits.float(), y)
        self.optimise(loss)
        return {"loss": loss.detach(), "acc": accuracy(logits.detach(), hard_labels(y))}

    def eval_step(self, batch: Batch) -> Logs:
        """Metrics for one batch without gradients."""
        x, y = self.prepare(batch)
        logits = self.logits(self.eval_model, x)
        self.update_metrics(logits.float(), y)
        return {"loss": self.loss_fn(logits.float(), y), "acc": accuracy(logits, hard_labels(y))}

    def update_metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Feed one evaluation batch to every metric object (``eval_step`` calls it); they get CPU tensors."""
        if self.metrics and self.device.type != "cpu":
            outputs, targets = to_device(outputs, _CPU), to_device(targets, _CPU)
        for metric in self.metrics:
            metric.update(outputs, targets)

    def predict_step(self, batch: Batch) -> torch.Tensor | list[torch.Tensor]:
        """Logits (float32) for one batch; a list for a model with several outputs."""
        x, _ = self.prepare(batch)
        out = self.logits(self.eval_model, x)
        return [o.float() for o in out] if isinstance(out, list) else out.float()

    @property
    def eval_model(self) -> nn.Module:
        """The model used by evaluate/predict: the EMA copy when weight EMA is on."""
        return self.ema.module if self.ema is not None else self.model

    # ----- loops ------------------------------------------------------------------------------
    def fit(self, train: BatchSource, val: BatchSource | None = None, epochs: int | None = None) -> list[Logs]:
        """Train until ``epochs`` (default ``config.epochs``) are done or a callback stops it."""
        epochs = epochs or self.config.epochs
        if len(train) == 0:
            raise DataError(
                "no training batches: the training set is empty",
                fix="check the data folder or split (are the images where --data-dir points?)",
            )
        self._ensure_scheduler(steps_per_epoch=len(train), epochs=epochs)
        self.stop_reason = self.stop_signal = None
        self._call("on_fit_start", {"epochs": epochs, "steps_per_epoch": len(train)})
        with _stop_on_signals(self):
            try:
                while self.epoch < epochs and self.stop_reason is None:
                    self._run_epoch(train, val, last=self.epoch + 1 == epochs)
            except _OUT_OF_MEMORY as exc:
                self.stop_reason = "out_of_memory"
                self._call("on_fit_end", {"stop_reason": self.stop_reason})
                raise self._out_of_memory() from exc
        self._call("on_fit_end", {"stop_reason": self.stop_reason})
        if self.stop_reason == "nan":
            raise TrainingError(
                f"the training loss became NaN or infinite in epoch {self.epoch + 1}",
                fix="lower --lr, add gradient clipping, or check the inputs; the last good checkpoint was kept",
            )
        return self.history

    def _run_epoch(self, train: BatchSource, val: BatchSource | None, last: bool) -> None:
        self.model.train()
        started = time.perf_counter()
        self._call("on_epoch_start", {"epoch": self.epoch, "start_step": self.step_in_epoch})
        for batch in train.batches(self.epoch, start=self.step_in_epoch):
            self._batch_size = len(batch[0])
            logs = self.train_step(batch)
            self._accumulate(logs, len(batch[0]))
            self.step_in_epoch += 1
            self.global_step += 1
            self._call("on_batch_end", logs | {"batch_size": len(batch[0])})
            if self.stop_reason is not None:
                return  # mid-epoch stop: the sums stay for the checkpoint
        logs = self._epoch_means()
        if not math.isfinite(logs.get("loss", 0.0)):
            self.stop_reason = "nan"
            return
        if self.config.precise_bn and last:
            self.recompute_batchnorm(train)  # before validation and the checkpoint of the last epoch
        if val is not None:
            logs |= {f"val_{k}": v for k, v in self.evaluate(val).items()}
        logs = {"epoch": self.epoch + 1, **logs, "lr": self.optimizer.param_groups[0]["lr"]}
        logs["time_s"] = round(time.perf_counter() - started, 3)
        self.history.append(logs)
        self.epoch += 1
        self.step_in_epoch = 0
        self._sums, self._seen = {}, 0
        self._call("on_epoch_end", logs)

    def recompute_batchnorm(self, train: BatchSource) -> int:
        """Set the BatchNorm statistics of the eval model (:attr:`eval_model`: the EMA copy when on) to those of
        ``train``'s inputs under its current weights (:mod:`cnnlab.train.precise_bn`); ``config.precise_bn`` does
        it after the last epoch. Returns the number of BatchNorm layers set."""
        inputs = (self.prepare(batch)[0] for batch in train.batches(self.epoch))
        return recompute_batchnorm(self.eval_model, inputs, self.config.eval_batch_size, forward=self.logits)

    def evaluate(self, data: BatchSource) -> dict[str, float]:
        """Mean batch metrics over ``data`` and each metric object's result over all of it (no gradients,
        the eval model (EMA copy when on) in eval mode)."""
        was_training = self.model.training
        self.eval_model.eval()
        for metric in self.metrics:
            metric.reset()
        sums: dict[str, torch.Tensor] = {}
        seen = 0
        self._evaluating = True
        try:
            with torch.inference_mode():
                for batch in data.batches():
                    n = self._batch_size = len(batch[0])
                    for key, value in self.eval_step(batch).items():
                        sums[key] = sums.get(key, 0) + value.detach().float() * n
                    seen += n
        finally:
            self._evaluating = False
        self.model.train(was_training)
        sums, seen = self.reduce_sums(sums, seen)
        means = {k: v.item() / max(seen, 1) for k, v in sums.items()}
        for metric in self.metrics:
            means |= metric.result()
        return means

    def predict(self, data: BatchSource) -> torch.Tensor | list[torch.Tensor]:
        """Concatenated logits over ``data``, in order, on the CPU (a list, one per output, for a model with
        several outputs)."""
        was_training = self.model.training
        self.eval_model.eval()
        with torch.inference_mode():
            outputs = []
            for batch in data.batches():  # each batch's to the CPU: a whole set's outputs need not fit on the GPU
                out = self.predict_step(batch)
                outputs.append([o.cpu() for o in out] if isinstance(out, list) else out.cpu())
        self.model.train(was_training)
        if isinstance(outputs[0], list):
            return [torch.cat(parts) for parts in zip(*outputs, strict=True)]
        return torch.cat(outputs)

    # ----- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: weights, optimiser, schedule, RNG (the CPU's, and the GPU's on one), position,
        history. Loads on any device (:meth:`load_state_dict`)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "schedule_steps": self.schedule_steps,
            "schedule_start": self.schedule_start,
            "partial_sums": dict(self._sums),
            "partial_seen": self._seen,
            "history": list(self.history),
            "best_score": self.best_score,
            "torch_rng": torch.get_rng_state(),
            **self._device_state(),
        }

    def _device_state(self) -> dict[str, Any]:
        """What only a GPU run has: its device, its RNG state and the GradScaler's (none on the CPU)."""
        if self.device.type == "cuda":
            state: dict[str, Any] = {"device": str(self.device), "cuda_rng": torch.cuda.get_rng_state(self.device)}
        elif self.device.type == "mps":
            state = {"device": "mps", "mps_rng": torch.mps.get_rng_state()}
        else:
            return {}
        return state | ({"grad_scaler": self.scaler.state_dict()} if self.scaler is not None else {})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` (optimiser and schedule are restored when ``fit`` builds the schedule),
        whichever device saved it: the GPU's RNG state is restored on a GPU of the same kind, else left out (a run
        moved between devices draws other random numbers there)."""
        self.model.load_state_dict(state["model"])
        self._pending_optimizer_state = state["optimizer"]
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        self._pending_scheduler_state = state.get("scheduler")
        self.epoch = state["epoch"]
        self.step_in_epoch = state["step_in_epoch"]
        self.global_step = state["global_step"]
        self.schedule_steps = state.get("schedule_steps", 0)
        self.schedule_start = state.get("schedule_start", 0)
        self._sums = self.to_device(dict(state.get("partial_sums") or {}))
        self._seen = state.get("partial_seen", 0)
        self.history = list(state.get("history") or [])
        self.best_score = state.get("best_score")
        torch.set_rng_state(state["torch_rng"].cpu())
        if self.device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), self.device)
        if self.device.type == "mps" and state.get("mps_rng") is not None:
            torch.mps.set_rng_state(state["mps_rng"].cpu())
        if self.scaler is not None and state.get("grad_scaler"):
            self.scaler.load_state_dict(state["grad_scaler"])

    # ----- helpers ----------------------------------------------------------------------------
    def _out_of_memory(self) -> TrainingError:
        """The error for a GPU that ran out of memory: what to try, and that the last checkpoint stays."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        size = self._batch_size if self._evaluating else (self.config.batch_size or self._batch_size)
        half = max(size // 2, 1)
        where = f"{self.device}, epoch {self.epoch + 1}, step {self.step_in_epoch + 1}"
        if self._evaluating:
            what = f"out of GPU memory while evaluating batches of {size}"
            fix = f"set train.eval_batch_size to {half} in a run.yaml (--config); the last checkpoint was kept"
        elif size > 1:
            what = f"out of GPU memory while training at batch size {size}"
            fix = f"try --batch-size {half}; the last checkpoint was kept (--resume RUN --batch-size {half} goes on)"
        else:
            what = "out of GPU memory while training at batch size 1"
            fix = "use a smaller model or --img-size, or --device cpu; the last checkpoint was kept"
        return TrainingError(what, where=where, fix=fix)

    def _ensure_scheduler(self, steps_per_epoch: int, epochs: int) -> None:
        total = steps_per_epoch * epochs
        if self._pending_scheduler_state is not None and self.schedule_steps != total:
            self._pending_scheduler_state = None  # resumed with another length: a new schedule over the steps left
        new_schedule = self.scheduler is None and self._pending_scheduler_state is None
        if self.scheduler is None:
            if new_schedule:
                self.schedule_start = self.global_step
            # Resuming the same schedule rebuilds it over its original length, so it is of the saved kind.
            self.scheduler, self.schedule_note = _make_scheduler(
                self.optimizer, self.config, max(total - self.schedule_start, 1), steps_per_epoch
            )
        self.schedule_steps = total
        if self._pending_optimizer_state is not None:
            # After the scheduler is built: building one resets lr and momentum in the param groups.
            built = [{k: v for k, v in group.items() if k != "params"} for group in self.optimizer.param_groups]
            self.optimizer.load_state_dict(self._pending_optimizer_state)
            if new_schedule and self.scheduler is not None:
                # A new schedule keeps the optimiser's state (momentum buffers) but starts from its own LRs,
                # not from where the old one ended (0 for cosine: the added epochs would not train).
                for group, hyper in zip(self.optimizer.param_groups, built, strict=True):
                    group.update(hyper)
        if self.scheduler is not None and self._pending_scheduler_state is not None:
            self.scheduler.load_state_dict(self._pending_scheduler_state)
        self._pending_optimizer_state = self._pending_scheduler_state = None

    def _accumulate(self, logs: Logs, n: int) -> None:
        for key, value in logs.items():
            self._sums[key] = self._sums.get(key, 0) + value.detach().float() * n
        self._seen += n

    def _epoch_means(self) -> dict[str, float]:
        sums, seen = self.reduce_sums(self._sums, self._seen)
        return {k: v.item() / max(seen, 1) for k, v in sums.items()}

    def reduce_sums(self, sums: dict[str, torch.Tensor], seen: int) -> tuple[dict[str, torch.Tensor], int]:
        """Metric sums (value x batch size) and sample counts over all processes: here unchanged; distributed
        training (``cnnlab.train.distributed.DistributedTrainer``) adds up every rank's."""
        return sums, seen

    def running_mean(self, key: str) -> float:
        """Mean of ``key`` over the batches of the current epoch so far (one host sync)."""
        return self._sums[key].item() / max(self._seen, 1) if key in self._sums else float("nan")

    def _call(self, hook: str, logs: Logs) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, logs)


CONV3D_BF16_CPU = (
    "3-D convolutions over inputs shallower than their kernels in fp32: oneDNN's bf16 backward of those gives "
    "wrong weight gradients (runtime.conv3d_guard)"
)
"""The plan's reason when a bfloat16 CPU run guards its 3-D convolutions."""


def _make_optimizer(
    model: nn.Module, config: TrainConfig, param_groups: Sequence[dict[str, Any]] | None = None
) -> torch.optim.Optimizer:
    params: Any = list(param_groups) if param_groups is not None else [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=config.weight_decay
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def _make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int, steps_per_epoch: int
) -> tuple[torch.optim.lr_scheduler.LRScheduler | None, str | None]:
    """Per-step LR schedule over ``total_steps`` (>= 1), and a note when it is not the one asked for.

    Cosine and step get a linear warm-up over ``warmup_fraction`` of the steps. One-cycle's rising
    phase must span more than one step (torch divides by its length); shorter runs get a cosine
    decay from the peak LR instead, and the note says so.

    >>> opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    >>> scheduler, note = _make_scheduler(opt, TrainConfig(schedule="onecycle", warmup_fraction=0.2), 5, 1)
    >>> type(scheduler).__name__, note.split(":")[0]
    ('CosineAnnealingLR', "one-cycle's rising phase would be 1 step or less (warmup_fraction 0.2 x 5 steps = 1)")
    """
    if config.schedule == "onecycle":
        pct_start = max(config.warmup_fraction, 0.01)
        if pct_start * total_steps > 1:
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer,
                max_lr=[group["lr"] for group in optimizer.param_groups],  # each group peaks at its own rate
                total_steps=total_steps,
                pct_start=pct_start,
            )
            return scheduler, None
        note = (
            f"one-cycle's rising phase would be 1 step or less (warmup_fraction {config.warmup_fraction} x "
            f"{total_steps} steps = {config.warmup_fraction * total_steps:.3g}): cosine decay from the peak LR instead"
        )
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps), note
    if config.schedule == "constant":
        return None, None
    warmup = int(total_steps * config.warmup_fraction)
    if config.schedule == "cosine":
        main: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(total_steps - warmup, 1)
        )
    else:  # "step": decay by step_gamma every step_epochs epochs
        main = torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=max(config.step_epochs * steps_per_epoch, 1), gamma=config.step_gamma
        )
    if warmup == 0:
        return main, None
    ramp = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=warmup)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [ramp, main], milestones=[warmup]), None


@contextlib.contextmanager
def _stop_on_signals(trainer: Trainer) -> Iterator[None]:
    """The first SIGINT (Ctrl-C) or SIGTERM sets ``trainer.stop_reason = 'interrupted'`` and ``stop_signal``;
    a second one aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if trainer.stop_reason == "interrupted":
            raise KeyboardInterrupt
        trainer.stop_reason = "interrupted"
        trainer.stop_signal = signal.Signals(signum).name

    stopping = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, handler) for signum in stopping}
    try:
        yield
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)
