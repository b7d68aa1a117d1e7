"""Inference speed: batch-1 latency and batch-64 throughput, onnxruntime vs PyTorch eager vs compiled bf16.

Models: resnet18 at 3x224x224 and the Fashion-MNIST CNN (``fashion_cnn``) at 1x28x28, random weights
(speed does not depend on the values). Runtimes, all on the CPU with the same thread count:

  eager fp32      ``model(x)`` under ``torch.inference_mode()``
  compiled bf16   ``torch.compile(model)`` under ``torch.autocast("cpu", torch.bfloat16)`` (compile time reported)
  onnxruntime     the model exported by ``cnnlab.export.onnx_bytes`` (verified fp32), CPU provider: what
                  ``cnnlab serve`` runs by default

Each measurement repeats until both ``--min-runs`` and ``--min-seconds`` are reached and reports the
median (latency) or the mean images/s (throughput). The machine may be shared: the load average is
recorded before and after, and ratios should only be compared within one run.

    python benchmarks/inference_latency.py --json benchmarks/results/inference_latency.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from cnnlab.export import onnx_bytes, onnx_session
from cnnlab.models import create_model

WORKLOADS = {"resnet18": (3, 224, 224), "fashion_cnn": (1, 28, 28)}


def timed(run: Callable[[], object], min_runs: int, min_seconds: float, warmup: int = 3) -> list[float]:
    """Seconds per call, after ``warmup`` calls, until both limits are reached."""
    for _ in range(warmup):
        run()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        begin = time.perf_counter()
        run()
        times.append(time.perf_counter() - begin)
    return times


def runners(name: str, shape: tuple[int, int, int], threads: int, compile_: bool) -> dict[str, Callable]:
    """``runtime -> (batch -> callable)``; building each runner (export, compile) is timed into ``SETUP``."""
    model = create_model(name, num_classes=10, in_chans=shape[0]).eval()
    found: dict[str, Callable] = {}

    def eager(x: torch.Tensor) -> Callable[[], object]:
        def run() -> object:
            with torch.inference_mode():
                return model(x)

        return run

    found["eager fp32"] = eager
    start = time.perf_counter()
    session = onnx_session(onnx_bytes(model, shape), threads=threads)
    SETUP[(name, "onnxruntime")] = time.perf_counter() - start

    def onnx(x: torch.Tensor) -> Callable[[], object]:
        array = x.numpy()
        return lambda: session.run(None, {"input": array})

    found["onnxruntime"] = onnx
    if compile_:
        compiled = torch.compile(model, dynamic=False)

        def bf16(x: torch.Tensor) -> Callable[[], object]:
            def run() -> object:
                with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                    return compiled(x)

            start = time.perf_counter()
            run()  # compiles for this input shape
            SETUP[(name, f"compiled bf16 (batch {len(x)})")] = time.perf_counter() - start
            return run

        found["compiled bf16"] = bf16
    return found


SETUP: dict[tuple[str, str], float] = {}


def machine() -> dict[str, object]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import onnxruntime

    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
        "bf16_native": torch.backends.mkldnn.is_available() and "avx512_bf16" in Path("/proc/cpuinfo").read_text(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--min-runs", type=int, default=20)
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--throughput-batch", type=int, default=64)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (slow to build on 2 cores)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    info = machine()
    info["load_average_before"] = os.getloadavg()
    rows = []
    for name in args.models:
        shape = WORKLOADS[name]
        found = runners(name, shape, args.threads, not args.no_compile)
        for runtime, make in found.items():
            one = timed(make(torch.randn(1, *shape)), args.min_runs, args.min_seconds)
            many = timed(make(torch.randn(args.throughput_batch, *shape)), 3, args.min_seconds, warmup=1)
            rows.append(
                {
                    "model": name,
                    "runtime": runtime,
                    "batch1_ms_median": 1000 * statistics.median(one),
                    "batch1_ms_p90": 1000 * float(np.percentile(one, 90)),
                    "batch1_runs": len(one),
                    f"batch{args.throughput_batch}_img_per_s": args.throughput_batch * len(many) / sum(many),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    info["load_average_after"] = os.getloadavg()
    key = f"batch{args.throughput_batch}_img_per_s"
    print(f"\n{json.dumps(info)}\n")
    print(
        f"| model | runtime | batch-1 median ms | p90 ms | vs eager | batch-{args.throughput_batch} img/s | vs eager |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        base = next(r for r in rows if r["model"] == row["model"] and r["runtime"] == "eager fp32")
        latency_ratio = base["batch1_ms_median"] / row["batch1_ms_median"]
        print(
            f"| {row['model']} | {row['runtime']} | {row['batch1_ms_median']:.2f} | {row['batch1_ms_p90']:.2f} | "
            f"{latency_ratio:.2f}x | {row[key]:.0f} | {row[key] / base[key]:.2f}x |"
        )
    setup = {f"{model}: {what}": round(seconds, 1) for (model, what), seconds in SETUP.items()}
    print(f"\nsetup seconds (export / compile): {json.dumps(setup)}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": info, "rows": rows, "setup_s": setup}, indent=2) + "\n")


if __name__ == "__main__":
    main()
