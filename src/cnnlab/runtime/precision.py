"""The speed plan for a device: which precision, memory layout and backend settings to use, and why.

CPU: bf16 autocast pays only where the CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere it
is emulated and slower, so ``precision="auto"`` reads the CPU flags. Measured on the 2-core Zen 5
dev machine (shared/notes/engine-bench.md): channels_last + bf16 trains a small CNN 2.2x and a
CIFAR ResNet-18 2.1x faster than NCHW fp32.

CUDA (``device="cuda"``): bf16 autocast on GPUs that compute it natively (Ampere and newer), else fp16
autocast with a GradScaler; channels_last, cudnn.benchmark and TF32 for what stays fp32. These are the
usual settings of the PyTorch performance guide; they have not been measured on a GPU with cnnlab yet
(docs/gpu.md, benchmarks/gpu_check.sh). MPS: fp32 unless fp16 or bf16 is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from cnnlab.core.errors import ConfigError
from cnnlab.runtime.device import Accelerators, DeviceChoice, choose_device

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16")
"""Training precisions: auto (per device, see the module doc), fp32, bf16 autocast, fp16 autocast (GPUs)."""


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU feature flags (empty where /proc/cpuinfo does not exist)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@dataclass(frozen=True)
class SpeedPlan:
    """What the trainer will do for speed on ``device``, with the reason for each choice."""

    bf16: bool
    channels_last: bool
    threads: int
    reasons: tuple[str, ...]
    compile: bool = False
    fast_dropout: bool = True
    device: str = "cpu"  # the resolved device: cpu, cuda:N or mps
    fp16: bool = False  # fp16 autocast (GPUs)
    grad_scaler: bool = False  # scale the loss (fp16 gradients would underflow without it)
    cudnn_benchmark: bool = False
    tf32: bool = False  # TF32 matmuls and convs for fp32 work on the GPU
    pin_memory: bool = False  # copy batches from pinned host memory, non-blocking

    @property
    def device_type(self) -> str:
        """``cpu``, ``cuda`` or ``mps``: what ``torch.autocast`` takes."""
        return torch.device(self.device).type

    @property
    def autocast_dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.bf16 else torch.float16 if self.fp16 else torch.float32

    @property
    def mixed(self) -> bool:
        """Whether the forward pass runs under autocast."""
        return self.bf16 or self.fp16


def check_precision(precision: str) -> None:
    """A :class:`ConfigError` for an unknown training precision.

    >>> check_precision("fp64")
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.ConfigError: unknown precision 'fp64' [--precision]. Fix: use one of auto, fp32, bf16, fp16
    """
    if precision not in PRECISION_CHOICES:
        raise ConfigError(
            f"unknown precision '{precision}'", where="--precision", fix=f"use one of {', '.join(PRECISION_CHOICES)}"
        )


def plan_speed(
    precision: str = "auto",
    channels_last: bool = True,
    flags: set[str] | None = None,
    compile: bool = False,
    fast_dropout: bool = True,
    *,
    device: str | torch.device | DeviceChoice = "cpu",
    caps: Accelerators | None = None,
    deterministic: bool = False,
) -> SpeedPlan:
    """Choose precision and layout for ``device`` (``auto``, ``cpu``, ``cuda[:N]``, ``mps``, or a choice already
    made; ``caps``: the accelerators, read from torch by default); ``compile`` and ``fast_dropout`` are taken as
    given, with reasons. The first reason names the device.

    >>> plan_speed("auto", flags={"avx512_bf16"}).bf16
    True
    >>> plan_speed("auto", flags={"avx2"}).bf16
    False
    >>> plan_speed("fp32", flags={"avx512_bf16"}).bf16
    False
    >>> t4 = Accelerators(cuda_built=True, cuda_names=("Tesla T4",), cuda_bf16=(False,))
    >>> plan = plan_speed("auto", device="cuda", caps=t4)
    >>> plan.device, plan.autocast_dtype, plan.grad_scaler
    ('cuda:0', torch.float16, True)
    """
    check_precision(precision)
    choice = device if isinstance(device, DeviceChoice) else None
    if caps is None and (choice.device.type if choice else str(device).strip().lower()) != "cpu":
        caps = Accelerators.detect()
    choice = choice or choose_device(str(device), caps)
    if choice.device.type == "cuda" and caps is not None:
        return _cuda_plan(choice, caps, precision, channels_last, compile, deterministic)
    if choice.device.type == "mps":
        return _mps_plan(choice, precision, compile)
    if precision == "fp16":
        raise ConfigError(
            "fp16 autocast is for GPUs: on the CPU it is emulated and slow",
            where="--precision",
            fix="use --precision bf16 or fp32 on the CPU (auto picks bf16 where the CPU has it natively)",
        )
    flags = cpu_flags() if flags is None else flags
    native = sorted(flags.intersection(BF16_FLAGS))
    if precision == "bf16":
        bf16, why = (
            True,
            "bf16 autocast: asked for" + ("" if native else " (no native bf16 here: expect it to be slow)"),
        )
    elif precision == "fp32":
        bf16, why = False, "fp32: asked for"
    elif native:
        bf16, why = True, f"bf16 autocast: the CPU has native bf16 ({', '.join(native)})"
    else:
        bf16, why = False, "fp32: the CPU has no native bf16 (avx512_bf16/amx_bf16), so bf16 would be emulated"
    layout = "channels_last: oneDNN's fast path for conv" if channels_last else "NCHW: channels_last switched off"
    threads = torch.get_num_threads()
    compiled = (
        "torch.compile: asked for (the first steps pay 10-25 s of compiling)"
        if compile
        else f"eager: torch.compile {'gave no gain for bf16 training' if bf16 else 'adds ~14% to fp32 training'} on "
        "the dev machine for 10-25 s of compiling (switch on with --compile)"
    )
    fast_dropout = fast_dropout and not compile
    dropout = (
        "dropout masks from a counter hash (1.3x faster training of a CNN with dropout on the dev machine)"
        if fast_dropout
        else f"torch's dropout: {'compiled code makes its own masks' if compile else 'fast_dropout switched off'}"
    )
    reasons = (choice.reason, why, layout, f"{threads} intra-op threads (one per core)", dropout, compiled)
    return SpeedPlan(bf16, channels_last, threads, reasons, compile, fast_dropout)


def _cuda_plan(
    choice: DeviceChoice, caps: Accelerators, precision: str, channels_last: bool, compile: bool, deterministic: bool
) -> SpeedPlan:
    index = choice.device.index or 0
    name, native = caps.cuda_names[index], caps.cuda_bf16[index]
    bf16 = fp16 = False
    if precision == "fp32":
        why = "fp32: asked for (TF32 off too: exact fp32 matmuls and convs)"
    elif precision == "bf16":
        bf16, why = (
            True,
            "bf16 autocast: asked for" + ("" if native else f" ({name} has no native bf16: slow, if torch allows it)"),
        )
    elif precision == "fp16":
        fp16, why = True, "fp16 autocast + GradScaler: asked for"
    elif native:
        bf16, why = True, f"bf16 autocast: {name} computes bf16 natively (fp32's range: no loss scaling needed)"
    else:
        fp16, why = True, f"fp16 autocast + GradScaler: {name} has no native bf16 (older than Ampere)"
    tf32 = precision != "fp32"
    threads = torch.get_num_threads()
    reasons = (
        choice.reason,
        why,
        "channels_last: cuDNN's NHWC convs feed the tensor cores"
        if channels_last
        else "NCHW: channels_last switched off",
        "cudnn.benchmark off: deterministic mode"
        if deterministic
        else "cudnn.benchmark: the fastest conv algorithm per input shape (the first batches pay for the search)",
        *(["TF32 for what stays fp32 (matmuls and convs outside autocast)"] if tf32 else []),
        "pinned host batches, non_blocking copies: a batch's copy queues behind the running step",
        f"{threads} CPU threads for the host side (augmentation)",
        "torch's dropout: its GPU kernel is fast (the counter-hash masks are a CPU speed-up)",
        _gpu_compile(compile),
    )
    return SpeedPlan(
        bf16,
        channels_last,
        threads,
        reasons,
        compile,
        fast_dropout=False,
        device=str(choice.device),
        fp16=fp16,
        grad_scaler=fp16,
        cudnn_benchmark=not deterministic,
        tf32=tf32,
        pin_memory=True,
    )


def _mps_plan(choice: DeviceChoice, precision: str, compile: bool) -> SpeedPlan:
    bf16, fp16 = precision == "bf16", precision == "fp16"
    why = {
        "bf16": "bf16 autocast: asked for (MPS bf16 needs macOS 14+)",
        "fp16": "fp16 autocast: asked for (no GradScaler on MPS: a NaN loss stops the run)",
        "fp32": "fp32: asked for",
    }.get(precision, "fp32: mixed precision on MPS is not measured yet (ask with --precision fp16)")
    threads = torch.get_num_threads()
    reasons = (
        choice.reason,
        why,
        "NCHW: channels_last is no measured gain on MPS",
        f"{threads} CPU threads for the host side (augmentation)",
        "torch's dropout: its GPU kernel is fast (the counter-hash masks are a CPU speed-up)",
        _gpu_compile(compile),
    )
    return SpeedPlan(bf16, False, threads, reasons, compile, fast_dropout=False, device="mps", fp16=fp16)


def _gpu_compile(compile: bool) -> str:
    if compile:
        return "torch.compile: asked for (the first steps pay its compiling)"
    return "eager: torch.compile is not measured on a GPU yet (switch on with --compile)"


def apply_backend_settings(plan: SpeedPlan) -> None:
    """Set torch's process-wide CUDA switches the plan asks for (cudnn.benchmark, TF32); nothing for CPU or MPS."""
    if plan.device_type != "cuda":
        return
    torch.backends.cudnn.benchmark = plan.cudnn_benchmark
    mode = "tf32" if plan.tf32 else "ieee"
    if hasattr(torch.backends.cudnn, "conv") and hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        torch.backends.cudnn.conv.fp32_precision = mode  # torch >= 2.9's switches (the old ones warn when mixed)
        torch.backends.cuda.matmul.fp32_precision = mode
    else:
        torch.backends.cudnn.allow_tf32 = plan.tf32
        torch.backends.cuda.matmul.allow_tf32 = plan.tf32
