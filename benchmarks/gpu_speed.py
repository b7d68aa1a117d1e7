"""Images/s on a GPU: cnnlab's Trainer and fast_inference (their defaults for the device) vs plain fp32 eager PyTorch.

What issue 25 asks to measure, for ResNet-18 with the CIFAR stem (3x32x32, 10 classes, synthetic data):

* training: ``Trainer.fit`` with cnnlab's defaults for ``--device`` (bf16 or fp16 autocast, channels_last,
  cudnn.benchmark, TF32, pinned non-blocking copies of uint8 batches decoded on the host) vs the loop
  most tutorials write (fp32 NCHW, SGD momentum, one fixed batch already on the device, torch's default
  backend settings), same batch size; optionally (``--compile``) the Trainer with ``compile=True``, whose
  compile time is reported apart and counted in its wall time;
* the share of the device's peak: training FLOPs (3 x the forward's 1.111 GFLOP per image) over the best
  GFLOP/s of a large matmul measured in the same run, in the plan's precision (bf16 on recent GPUs) for
  cnnlab and in fp32 (TF32 off, torch's default) for the plain loop;
* inference at batch 256: ``fast_inference`` (auto precision, eager) vs eager fp32, CPU batches in and CPU
  outputs back for both.

Every configuration runs ``--rounds`` times round-robin and the median counts. The JSON goes to ``--out``
(default ``$OUT/gpu_speed.json`` when ``$OUT`` is set, else ``benchmarks/results/gpu_speed.json``).

    python benchmarks/gpu_speed.py                               # on a CUDA machine (benchmarks/gpu_check.sh)
    python benchmarks/gpu_speed.py --device cpu --steps 3 --warmup 1 --batch-size 8 --rounds 1   # does it run?
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.data.loader import TensorLoader
from cnnlab.models import create_model
from cnnlab.runtime.device import resolve_device
from cnnlab.runtime.inference import fast_inference
from cnnlab.runtime.precision import plan_speed
from cnnlab.train import Callback, TrainConfig, Trainer

SHAPE = (3, 32, 32)
CLASSES = 10
TRAIN_GFLOP_PER_IMAGE = 3 * 1.111  # 3 x forward (2 x multiply-adds), as benchmarks/train_throughput.py


def build() -> nn.Module:
    torch.manual_seed(0)
    return create_model("resnet18", num_classes=CLASSES, small_input=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


class BackendDefaults:
    """torch's process-wide backend switches as the process started: the Trainer changes them (cudnn.benchmark,
    TF32), and the plain loop must run with the defaults a tutorial gets."""

    def __init__(self) -> None:
        self.benchmark = torch.backends.cudnn.benchmark
        self.new_api = hasattr(torch.backends.cudnn, "conv") and hasattr(torch.backends.cuda.matmul, "fp32_precision")
        if self.new_api:
            self.precision = (torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision)
        else:
            self.precision = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)

    def restore(self) -> None:
        torch.backends.cudnn.benchmark = self.benchmark
        if self.new_api:
            torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision = self.precision
        else:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = self.precision


def plain_fp32(device: torch.device, batch: int, steps: int, warmup: int, defaults: BackendDefaults) -> dict:
    """The loop most tutorials write: NCHW fp32, SGD momentum, one fixed batch on the device."""
    defaults.restore()
    model = build().to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, *SHAPE, device=device)
    y = torch.randint(0, CLASSES, (batch,), device=device)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for i in range(warmup + steps):
        if i == warmup:
            sync(device)
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()
    sync(device)
    return {"img_per_s": steps * batch / (time.perf_counter() - start)}


class _Clock(Callback):
    """Times the steps after the warm-up (synchronising the device at both ends) and the fit's first step."""

    def __init__(self, device: torch.device, warmup: int, steps: int) -> None:
        self.device, self.warmup, self.last = device, warmup, warmup + steps
        self.fit_start = self.start = self.end = self.first_step = 0.0

    def on_fit_start(self, trainer: Trainer, logs: dict) -> None:
        self.fit_start = time.perf_counter()

    def on_batch_end(self, trainer: Trainer, logs: dict) -> None:
        if trainer.global_step == 1:
            sync(self.device)
            self.first_step = time.perf_counter() - self.fit_start  # with compile=True: mostly compiling
        if trainer.global_step == self.warmup:
            sync(self.device)
            self.start = time.perf_counter()
        elif trainer.global_step == self.last:
            sync(self.device)
            self.end = time.perf_counter()


def cnnlab_fit(device: torch.device, batch: int, steps: int, warmup: int, **settings: Any) -> dict:
    """``Trainer.fit`` with its defaults for ``device`` (changed by ``settings``), fed uint8 batches decoded on the
    host through the normal data path."""
    n = (warmup + steps) * batch
    x = torch.randint(0, 256, (n, *SHAPE), dtype=torch.uint8)
    y = torch.randint(0, CLASSES, (n,))
    loader = TensorLoader(x, y, batch, shuffle=True, transform=lambda b, g: b.float().div_(255))
    clock = _Clock(device, warmup, steps)
    config = TrainConfig(
        epochs=1, batch_size=batch, optimizer="sgd", lr=0.01, schedule="constant", device=str(device), **settings
    )
    trainer = Trainer(build(), config, callbacks=[clock])
    started = time.perf_counter()
    trainer.fit(loader)
    sync(device)
    return {
        "img_per_s": steps * batch / (clock.end - clock.start),
        "first_step_s": round(clock.first_step, 2),
        "wall_s": round(time.perf_counter() - started, 2),
        "plan": list(trainer.plan.reasons),
    }


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int, reps: int = 10) -> float:
    """Best GFLOP/s of a square matmul (TF32 off for fp32: the true fp32 rate)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = 0.0
    for _ in range(3):
        a @ b
        sync(device)
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync(device)
        best = max(best, 2 * size**3 * reps / (time.perf_counter() - start) / 1e9)
    return best


def inference(device: torch.device, batch: int, reps: int, fast: bool) -> dict:
    """Images/s of batches of ``batch`` CPU images through the model and back (``fast``: ``fast_inference``)."""
    model = build()
    x = torch.randn(batch, *SHAPE)
    if fast:
        with fast_inference(model, "auto", "off", batch_size=batch, device=device) as run:
            run(x)
            start = time.perf_counter()
            for _ in range(reps):
                run(x)
            seconds = time.perf_counter() - start
            return {"img_per_s": reps * batch / seconds, "path": run.describe()}
    model = model.to(device).eval()
    with torch.inference_mode():
        model(x.to(device)).cpu()
        start = time.perf_counter()
        for _ in range(reps):
            model(x.to(device)).float().cpu()
        seconds = time.perf_counter() - start
    return {"img_per_s": reps * batch / seconds}


def default_out() -> Path:
    folder = Path(os.environ["OUT"]) if os.environ.get("OUT") else Path(__file__).parent / "results"
    return folder / "gpu_speed.json"


def machine(device: torch.device) -> dict:
    about: dict[str, Any] = {
        "device": str(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        about |= {
            "gpu": props.name,
            "capability": f"{props.major}.{props.minor}",
            "memory_gb": props.total_memory / 1e9,
        }
    return about


def median_of(samples: list[dict]) -> dict:
    """The sample with the median images/s (its other fields with it)."""
    ordered = sorted(samples, key=lambda s: s["img_per_s"])
    return ordered[len(ordered) // 2] | {"img_per_s_samples": [round(s["img_per_s"], 1) for s in samples]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-size", type=int, default=256, help="training batch (both loops)")
    parser.add_argument("--infer-batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=100, help="timed training steps per run")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--infer-reps", type=int, default=None, help="timed inference batches (default: 2 x steps)")
    parser.add_argument("--compile", action="store_true", help="also time the Trainer with compile=True")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    defaults = BackendDefaults()
    runs: dict[str, Callable[[], dict]] = {
        "plain_fp32": lambda: plain_fp32(device, args.batch_size, args.steps, args.warmup, defaults),
        "cnnlab_fit": lambda: cnnlab_fit(device, args.batch_size, args.steps, args.warmup),
    }
    if args.compile:
        runs["cnnlab_fit_compiled"] = lambda: cnnlab_fit(device, args.batch_size, args.steps, args.warmup, compile=True)
    reps = args.infer_reps or 2 * args.steps
    inferences: dict[str, Callable[[], dict]] = {
        "eager_fp32": lambda: inference(device, args.infer_batch, reps, fast=False),
        "fast_inference": lambda: inference(device, args.infer_batch, reps, fast=True),
    }
    samples: dict[str, list[dict]] = {}
    errors: dict[str, str] = {}
    for _ in range(args.rounds):
        for name, run in {**runs, **inferences}.items():
            if name in errors or (name == "cnnlab_fit_compiled" and name in samples):
                continue  # compiling takes a minute: one round of it
            try:
                samples.setdefault(name, []).append(run())
            except Exception as exc:  # e.g. compiling needs a compiler or triton: record it, measure the rest
                errors[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
                print(f"{name} failed: {errors[name]}", flush=True)
    defaults.restore()
    size = 8192 if device.type == "cuda" else 1024
    plan = plan_speed(device=str(device))
    mixed = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}[plan.autocast_dtype]
    dtypes = {mixed: plan.autocast_dtype, "fp32": torch.float32}
    peaks = {name: matmul_peak(device, dtype, size) for name, dtype in dtypes.items()}
    results = {name: median_of(values) for name, values in samples.items()}
    ratios: dict[str, float] = {}
    if "cnnlab_fit" in results and "plain_fp32" in results:
        ratios["train cnnlab/plain_fp32"] = results["cnnlab_fit"]["img_per_s"] / results["plain_fp32"]["img_per_s"]
    if "cnnlab_fit_compiled" in results and "plain_fp32" in results:
        ratios["train compiled/plain_fp32"] = (
            results["cnnlab_fit_compiled"]["img_per_s"] / results["plain_fp32"]["img_per_s"]
        )
    if "fast_inference" in results and "eager_fp32" in results:
        ratios["inference fast/eager_fp32"] = (
            results["fast_inference"]["img_per_s"] / results["eager_fp32"]["img_per_s"]
        )
    shares = {
        f"{name}/{dtype}_matmul_peak": results[name]["img_per_s"] * TRAIN_GFLOP_PER_IMAGE / peaks[dtype]
        for name, dtype in (("cnnlab_fit", mixed), ("plain_fp32", "fp32"))
        if name in results
    }
    report = {
        "machine": machine(device),
        "settings": vars(args) | {"out": str(args.out or default_out())},
        "plan": list(plan.reasons),
        "matmul_peak_gflop_per_s": peaks,
        "results": results,
        "ratios": ratios,
        "share_of_peak": shares,
        "errors": errors,
        "notes": "plain_fp32 trains on one fixed batch already on the device; cnnlab_fit decodes uint8 batches on "
        "the host and copies each one (its real data path). Inference: CPU batches in, CPU outputs out, both.",
    }
    out = args.out or default_out()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({"ratios": ratios, "share_of_peak": shares, "errors": errors}, indent=2))
    print(f"written: {out}")
    return report


if __name__ == "__main__":
    main()
