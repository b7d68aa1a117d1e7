"""Fast inference: an eval-mode model as a callable that returns float32 CPU outputs, as fast as the device allows.

:func:`fast_inference` picks the path; measured on the 2-core Zen 5 dev machine at batch 256
(shared/notes/engine-bench.md, images/s):

* ``precision="auto"`` runs under bf16 autocast with channels_last weights and inputs where the CPU
  computes bf16 natively (:func:`cnnlab.runtime.precision.plan_speed` reads the CPU flags), else in
  fp32. Eager fp32 NCHW -> bf16 + channels_last: ResNet-18 CIFAR 203 -> 622 (3.1x). ``"bf16"`` forces
  it; ``"fp32"`` runs the model exactly as it is (NCHW, no autocast), the reference numerics
  (channels_last alone made fp32 inference of the small CNN slower: 5719 -> 5451).
* ``compile="on"`` runs ``torch.compile`` (inductor, with freezing: the weights are folded into the
  compiled code): the Fashion-MNIST CNN 5719 -> 25599 (4.5x) and ResNet-18 CIFAR 752 (3.7x) in bf16,
  for about 5 s of compiling. Batches are cut to ``batch_size`` and the last one is padded, so one
  compile serves the whole job. If compiling fails (no C++ compiler, a layer inductor cannot
  handle), a warning says why and the job goes on eager.
* ``compile="auto"`` compiles only when the job is big enough to pay the compile back (never with an
  explicit ``precision="fp32"``): more than one batch, and at least ``COMPILE_MIN_IMAGES`` (100k)
  images or ``COMPILE_MIN_MACS`` (3e12) multiply-adds in all. A compile of C s pays once
  ``images x saving per image > C``; the saving is a fixed part (per-call overhead, which dominates
  small nets) plus a share of the compute (which dominates big ones), so the job pays once either
  its images or its multiply-adds are many enough. ``benchmarks/inference_speed.py`` prints the
  break-even of each net; on the idle machine (docs/benchmarks-inference.md) 139k images for the
  Fashion-MNIST CNN (15 MMAC/image: eager bf16 is already 3.1x eager fp32, compiling adds 1.4x for
  4 s) and 6.5k images (3.6e12 MACs) for ResNet-18 CIFAR (0.56 GMAC); the bench notes give 3.5k
  images (6e12 MACs) for ResNet-18 at 224. Compiling too early costs at most one compile (seconds),
  too late a share of the whole job, so the thresholds sit at or below the measured break-evens.
  The rule depends only on the job, never on timings: the same command gives the same numbers.
* ``device`` (default: the command's ``--device``, :func:`cnnlab.runtime.device.current_device`, else the
  CPU): the model runs there for the block (and is put back where it was after it), inputs are copied
  there, outputs come back to the CPU as float32. On a CUDA GPU ``precision="auto"`` is bf16 autocast
  where the GPU has native bf16, else fp16 autocast, with channels_last (not measured with cnnlab yet:
  docs/gpu.md); on MPS it is fp32.

>>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(2 * 4 * 4, 3))
>>> x = torch.randn(5, 1, 6, 6)
>>> with fast_inference(net, precision="fp32") as run:
...     out = run(x)
>>> torch.equal(out, net(x).detach()), run.describe()["compiled"]
(True, False)
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.runtime.device import current_device, placed_on
from cnnlab.runtime.precision import SpeedPlan, apply_backend_settings, plan_speed

PRECISIONS = ("auto", "fp32", "bf16")
"""``--precision`` choices: bf16 where the CPU has it natively (auto), always fp32, always bf16."""

COMPILE_MODES = ("auto", "on", "off")
"""``--compile`` choices: compile when the job pays it back (auto), always, never."""

COMPILE_MIN_IMAGES = 100_000
"""Images of a job from which ``compile="auto"`` compiles, whatever the net (see the module doc)."""

COMPILE_MIN_MACS = 3e12
"""Multiply-adds of a job (images x MACs per image) from which ``compile="auto"`` compiles (see the module doc)."""


def check_inference_options(precision: str, compile: str) -> None:
    """Raise a :class:`~cnnlab.core.errors.ConfigError` for an unknown ``precision`` or ``compile`` choice.

    >>> check_inference_options("auto", "off")
    >>> check_inference_options("fp16", "off")
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.ConfigError: unknown precision 'fp16' [--precision]. Fix: use one of auto, fp32, bf16
    """
    for option, value, choices in (("precision", precision, PRECISIONS), ("compile", compile, COMPILE_MODES)):
        if value not in choices:
            raise ConfigError(
                f"unknown {option} '{value}'", where=f"--{option}", fix=f"use one of {', '.join(choices)}"
            )


def compile_pays(images: int, macs_per_image: float, batch_size: int = 256) -> bool:
    """Whether compiling pays back on a job of ``images`` at ``macs_per_image``: more than one batch, and
    at least :data:`COMPILE_MIN_IMAGES` images or :data:`COMPILE_MIN_MACS` multiply-adds in all.

    >>> compile_pays(10_000, 14.9e6), compile_pays(200_000, 14.9e6)  # the Fashion-MNIST CNN: test set, 20x more
    (False, True)
    >>> compile_pays(10_000, 555e6)  # ResNet-18 CIFAR on its test set: about 16 s eager
    True
    """
    return images > batch_size and (images >= COMPILE_MIN_IMAGES or images * macs_per_image >= COMPILE_MIN_MACS)


def macs_per_image(model: nn.Module, x: torch.Tensor) -> float:
    """Multiply-adds of ``model`` on one image shaped like ``x[0]`` (the count :func:`cnnlab.summary` prints).

    >>> macs_per_image(torch.nn.Linear(8, 4), torch.zeros(3, 8))
    32.0
    """
    from cnnlab.layers.summary import summary

    return float(summary(model, tuple(x.shape[1:]), dtype=torch.float32).total_macs)


class InferenceRunner:
    """The callable :func:`fast_inference` yields: ``run(x)`` gives the model's float32 CPU outputs for a batch
    of any size, computed in chunks of ``batch_size`` on the chosen path and device."""

    def __init__(
        self, model: nn.Module, plan: SpeedPlan, compile: str, batch_size: int, images: int | None, reasons: list[str]
    ) -> None:
        self.model = model
        self.plan = plan
        self.device = torch.device(plan.device)
        self.batch_size = max(1, min(batch_size, images or batch_size))
        self.images = images
        self.reasons = reasons
        self.compile_seconds: float | None = None  # the first compiled call: compiling and one batch
        self._pending: str | None = compile  # "auto" / "on" / "off", settled at the first call (it needs a shape)
        self._compiled: Callable[[torch.Tensor], torch.Tensor] | None = None

    @property
    def compiled(self) -> bool:
        """Whether the compiled model answers (``False`` before the first call, when off, or after a fallback)."""
        return self._compiled is not None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self._pending is not None:
            mode, self._pending = self._pending, None
            if (self._decide(x) if mode == "auto" else mode) == "on":
                self._compiled = self._build_compiled()
        return torch.cat([self._forward(chunk) for chunk in x.split(self.batch_size)])

    def describe(self) -> dict[str, Any]:
        """What ran and why, JSON-ready (for ``evaluation.json`` and the CLI)."""
        return {
            "device": self.plan.device,
            "precision": "bf16" if self.plan.bf16 else "fp16" if self.plan.fp16 else "fp32",
            "channels_last": self.plan.mixed,
            "compiled": self.compiled,
            "compile_seconds": None if self.compile_seconds is None else round(self.compile_seconds, 2),
            "batch_size": self.batch_size,
            "reasons": list(self.reasons),
        }

    def _decide(self, x: torch.Tensor) -> str:
        if self.images is None or self.images <= self.batch_size:  # no need to count: compile_pays says no
            self.reasons.append("eager: one batch or an unknown amount of work never pays a compile back")
            return "off"
        per_image = macs_per_image(self.model, x)
        total = f"{self.images} images x {per_image:.2e} = {self.images * per_image:.1e} multiply-adds"
        rule = f"{COMPILE_MIN_IMAGES} images or {COMPILE_MIN_MACS:.0e} multiply-adds"
        if compile_pays(self.images, per_image, self.batch_size):
            self.reasons.append(f"compiled: {total}, at least {rule}: enough to pay the compile back")
            return "on"
        self.reasons.append(f"eager: {total}, fewer than {rule}: too few to pay a compile back")
        return "off"

    def _build_compiled(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        model = self.model

        def forward(x: torch.Tensor) -> torch.Tensor:
            return model(x)

        # Dynamo keeps compiled code on the code object it traced and re-uses it for the same model object,
        # with frozen weights baked in: a model trained further and compiled again answered with its old
        # weights. A code object of our own starts with an empty cache and dies with this runner.
        forward.__code__ = forward.__code__.replace()
        try:
            return torch.compile(forward, dynamic=False, fullgraph=True)
        except Exception as exc:  # e.g. a Python version torch.compile does not support
            self._fall_back(exc)
            return None

    def _forward(self, chunk: torch.Tensor) -> torch.Tensor:
        if self._compiled is not None:
            try:
                return self._forward_compiled(self._compiled, chunk)
            except Exception as exc:  # no C++ compiler, a layer inductor cannot handle, a graph break...
                self._fall_back(exc)
        with torch.inference_mode(), self._autocast():
            return self.model(self._layout(chunk)).float().cpu()

    def _forward_compiled(self, compiled: Callable[[torch.Tensor], torch.Tensor], chunk: torch.Tensor) -> torch.Tensor:
        count, missing = len(chunk), self.batch_size - len(chunk)
        if missing:  # one input shape for the whole job: no recompile for the short last batch
            chunk = torch.cat([chunk, chunk.new_zeros((missing, *chunk.shape[1:]))])
        started = time.perf_counter()
        with (
            torch.inference_mode(),
            self._autocast(),
            torch._inductor.config.patch(freezing=True),  # read while tracing too, so set around every call
        ):
            out = compiled(self._layout(chunk)).float()[:count].cpu()
        if self.compile_seconds is None:
            self.compile_seconds = time.perf_counter() - started
        return out

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.plan.device_type, dtype=self.plan.autocast_dtype, enabled=self.plan.mixed)

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        """The chunk on the device (in the layout of the plan's weights)."""
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.plan.mixed and x.dim() == 4 else x

    def _fall_back(self, exc: Exception) -> None:
        first_line = (str(exc).strip().splitlines() or [""])[0][:300]
        warnings.warn(
            f"torch.compile failed ({type(exc).__name__}: {first_line}); running eager instead. "
            "Fix: install a C++ compiler (g++) for inductor, or pass --compile off / compile='off'",
            RuntimeWarning,
            stacklevel=2,
        )
        self.reasons.append(f"eager: compiling failed ({type(exc).__name__})")
        self._compiled = None


@contextmanager
def fast_inference(
    model: nn.Module,
    precision: str = "auto",
    compile: str = "auto",
    batch_size: int = 256,
    images: int | None = None,
    device: str | torch.device | None = None,
) -> Iterator[InferenceRunner]:
    """Run ``model`` in eval mode on the fast path for ``device`` (see the module doc; default: the command's
    device); ``images`` is how many images the whole job will pass through the runner, what ``compile="auto"``
    weighs. Inside the block the model is in eval mode and on the device, and under autocast its 4-D weights are
    channels_last; all three are restored on exit.

    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 2))
    >>> with fast_inference(net.train(), precision="bf16", compile="off") as run:
    ...     out = run(torch.randn(10, 3, 8, 8))
    ...     net.training, net[0].weight.is_contiguous(memory_format=torch.channels_last)
    (False, True)
    >>> out.dtype, out.shape, net.training, net[0].weight.is_contiguous()
    (torch.float32, torch.Size([10, 2]), True, True)
    """
    check_inference_options(precision, compile)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be positive, got {batch_size}", where="--batch-size", fix="use 1 or more")
    plan = plan_speed(precision, device=current_device() if device is None else device)
    apply_backend_settings(plan)
    reasons = list(plan.reasons[0 if plan.device_type != "cpu" else 1 : 2])  # the precision's, after a GPU's name
    if plan.mixed:
        library, dtype = ("oneDNN" if plan.device_type == "cpu" else "cuDNN"), ("bf16" if plan.bf16 else "fp16")
        reasons.append(f"channels_last weights and inputs: {library}'s fast path for {dtype} conv")
    if compile == "auto" and precision == "fp32":
        compile = "off"
        reasons.append("eager: fp32 asked for, the model exactly as it is (pass compile='on' to compile it)")
    elif compile != "auto":
        reasons.append(f"{'compiled' if compile == 'on' else 'eager'}: asked for")
    was_training = model.training
    with placed_on(model, torch.device(plan.device)):
        moved = [(p, p.data) for p in model.parameters() if plan.mixed and p.dim() == 4]
        model.eval()
        for parameter, data in moved:
            parameter.data = data.contiguous(memory_format=torch.channels_last)
        try:
            yield InferenceRunner(model, plan, compile, batch_size, images, reasons)
        finally:
            for parameter, data in moved:
                parameter.data = data
            model.train(was_training)
