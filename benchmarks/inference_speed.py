"""Inference images/s: eager fp32 NCHW vs cnnlab's fast path (:mod:`cnnlab.runtime.inference`) and its variants.

Nets (issue 7): (a) the Fashion-MNIST CNN (``fashion_cnn``) at 1x28x28; (b) ResNet-18 with the
CIFAR-style stem (``resnet18``, ``small_input=True``) at 3x32x32. Random weights (speed does not
depend on the values), synthetic inputs, batch 256 and batch 1. Variants, each on its own copy of the net:

  eager fp32 NCHW        ``model(x)`` under ``torch.inference_mode()``: the baseline
  eager <auto>           ``fast_inference(model, compile="off")``: bf16 autocast + channels_last where
                         the CPU has native bf16 (else fp32)
  compiled <auto>        ``fast_inference(model, compile="on")``: torch.compile (inductor, freezing);
                         its first call (compiling and one batch) is reported as compile seconds

The default path depends on the size of the job (``compile="auto"``); for each ``--jobs`` size the
script says which variant the default picks and what it gives, compile included, and it prints the
break-even: the job size from which compiling pays back, measured here.

Every variant is measured ``--rounds`` times round-robin (machine noise hits all alike), each time for
``--seconds`` after warm-up. Images/s come from the median time of a call (a call that another process
preempted does not drag it down; on a quiet machine it equals the mean, also in the JSON); the median
over rounds is reported and ratios are taken within this one run. The machine may be shared: the
load average is recorded before and after, and every sample records how much CPU other processes
used while it ran (``others_cpu``, share of all cores; above a few % the numbers are disturbed).
Compile seconds depend on inductor's on-disk cache: a net compiled before compiles faster. For a cold
compile, as a first run sees it, point ``TORCHINDUCTOR_CACHE_DIR`` at an empty folder.

    python benchmarks/inference_speed.py
    python benchmarks/inference_speed.py --json /tmp/inference_speed.json --rounds 5
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from cnnlab.models import create_model
from cnnlab.runtime.inference import COMPILE_MIN_IMAGES, COMPILE_MIN_MACS, compile_pays, fast_inference, macs_per_image
from cnnlab.runtime.precision import BF16_FLAGS, cpu_flags

NETS = {
    "a_fashion_cnn": {"model": "fashion_cnn", "kwargs": {"in_chans": 1}, "shape": (1, 28, 28)},
    "b_resnet18_cifar": {"model": "resnet18", "kwargs": {"small_input": True}, "shape": (3, 32, 32)},
}
BASELINE = "eager fp32 NCHW"


def build(net: dict[str, Any]) -> nn.Module:
    torch.manual_seed(0)
    return create_model(net["model"], num_classes=10, **net["kwargs"]).eval()


def _busy_jiffies() -> int:
    """CPU time of all cores that was not idle, in clock ticks (from /proc/stat)."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    return sum(values) - values[3] - values[4]  # minus idle and iowait


def measure(run: Callable[[], object], batch: int, seconds: float) -> dict[str, float]:
    """Images/s of ``run`` (one batch per call) over about ``seconds``, from the median and the mean call,
    the median ms per call, and the share of all cores that other processes used meanwhile."""
    run()  # warm-up: oneDNN primitives, caches
    ticks, own, started = _busy_jiffies(), time.process_time(), time.perf_counter()
    times = []
    while time.perf_counter() - started < seconds or len(times) < 3:
        begin = time.perf_counter()
        run()
        times.append(time.perf_counter() - begin)
    wall = time.perf_counter() - started
    busy = (_busy_jiffies() - ticks) / os.sysconf("SC_CLK_TCK")
    others = max(0.0, busy - (time.process_time() - own)) / (wall * (os.cpu_count() or 1))
    median = statistics.median(times)
    return {
        "img_per_s": batch / median,
        "mean_img_per_s": batch * len(times) / sum(times),
        "ms": 1000 * median,
        "others_cpu": others,
    }


def variants(net: dict[str, Any], batch: int, stack: contextlib.ExitStack) -> tuple[dict[str, Callable], dict]:
    """``name -> callable running one batch`` and compile details; fast paths stay entered in ``stack``."""
    x = torch.randn(batch, *net["shape"])
    plain = build(net)

    def eager() -> object:
        with torch.inference_mode():
            return plain(x)

    found: dict[str, Callable] = {BASELINE: eager}
    fast = stack.enter_context(fast_inference(build(net), compile="off", batch_size=batch))
    label = fast.describe()["precision"] + (" + channels_last" if fast.bf16 else "")
    found[f"eager {label}"] = lambda: fast(x)
    compiled = stack.enter_context(fast_inference(build(net), compile="on", batch_size=batch))
    compiled(x)  # compiles for this batch shape
    details = {"compile_s": compiled.compile_seconds, "compiled": compiled.compiled, "label": label}
    if compiled.compiled:
        found[f"compiled {label}"] = lambda: compiled(x)
    return found, details


def machine() -> dict[str, Any]:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        lscpu = ""
    model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), "")
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "native_bf16": sorted(cpu_flags().intersection(BF16_FLAGS)),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def default_choice(
    net: dict[str, Any], rows: dict[str, float], details: dict, jobs: list[int], batch: int
) -> dict[str, Any]:
    """What ``compile="auto"`` picks for jobs of each size in batches of ``batch``, their wall time with the
    compile, and the break-even: the job from which compiling pays back, from this run's numbers."""
    macs = macs_per_image(build(net), torch.zeros(1, *net["shape"]))
    eager = rows[f"eager {details['label']}"]
    compiled = rows.get(f"compiled {details['label']}")
    first = max(batch + 1, min(COMPILE_MIN_IMAGES, math.ceil(COMPILE_MIN_MACS / macs)))  # compile_pays, inverted
    out: dict[str, Any] = {"macs_per_image": macs, "rule_min_images": first}
    if compiled and compiled > eager:
        images = details["compile_s"] / (1 / eager - 1 / compiled)
        out["break_even_images"], out["break_even_macs"] = round(images), images * macs
    for job in jobs:
        picks_compile = compile_pays(job, macs, batch_size=batch) and compiled is not None
        rate = compiled if picks_compile and compiled else eager
        seconds = job / rate + (details["compile_s"] if picks_compile else 0.0)
        out[f"job_{job}"] = {
            "picks": f"{'compiled' if picks_compile else 'eager'} {details['label']}",
            "img_per_s_steady": rate,
            "seconds": seconds,
            "eager_fp32_seconds": job / rows[BASELINE],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    parser.add_argument("--batches", nargs="+", type=int, default=[256, 1])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="per sample")
    parser.add_argument("--jobs", nargs="+", type=int, default=[10_000, 100_000], help="job sizes for the default")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    info = machine() | {"load_average_before": os.getloadavg()}
    results: dict[str, Any] = {}
    for name in args.nets:
        net = NETS[name]
        for batch in args.batches:
            with contextlib.ExitStack() as stack:
                found, details = variants(net, batch, stack)
                samples: dict[str, list[dict[str, float]]] = {v: [] for v in found}
                for _ in range(args.rounds):
                    for variant, run in found.items():
                        samples[variant].append(measure(run, batch, args.seconds))
            rows = {v: statistics.median(s["img_per_s"] for s in runs) for v, runs in samples.items()}
            entry = {
                "img_per_s": rows,
                "vs_eager_fp32": {v: rate / rows[BASELINE] for v, rate in rows.items()},
                "mean_img_per_s": {
                    v: statistics.median(s["mean_img_per_s"] for s in runs) for v, runs in samples.items()
                },
                "median_ms": {v: statistics.median(s["ms"] for s in runs) for v, runs in samples.items()},
                "others_cpu_max": max(s["others_cpu"] for runs in samples.values() for s in runs),
                "compile_s": details["compile_s"],
                "compiled": details["compiled"],
                "eager_label": f"eager {details['label']}",
            }
            if batch > 1:
                entry["default"] = default_choice(net, rows, details, args.jobs, batch)
            results[f"{name} batch {batch}"] = entry
            print(json.dumps({f"{name} batch {batch}": entry}), flush=True)
    info["load_average_after"] = os.getloadavg()
    print(f"\n{json.dumps(info)}\n")
    print("| net, batch | variant | img/s | vs eager fp32 | median ms/batch | img/s (mean call) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for key, entry in results.items():
        for variant, rate in entry["img_per_s"].items():
            ratio, ms, mean = (
                entry["vs_eager_fp32"][variant],
                entry["median_ms"][variant],
                entry["mean_img_per_s"][variant],
            )
            print(f"| {key} | {variant} | {rate:.0f} | {ratio:.2f}x | {ms:.2f} | {mean:.0f} |")
    for key, entry in results.items():
        compiled = f"compile {entry['compile_s']:.1f} s" if entry["compiled"] else "compiling FAILED (eager fallback)"
        print(f"\n{key}: {compiled}; other processes used up to {entry['others_cpu_max']:.0%} of the CPU")
        default = entry.get("default")
        if default is None:  # one image: one batch, which never compiles by default
            eager = entry["eager_label"]
            print(f"  default (one batch): {eager}, {entry['vs_eager_fp32'][eager]:.2f}x eager fp32")
            continue
        for job in args.jobs:
            choice = default[f"job_{job}"]
            print(
                f"  default for {job:,} images: {choice['picks']}, {choice['img_per_s_steady']:.0f} img/s steady, "
                f"{choice['seconds']:.1f} s in all (eager fp32 {choice['eager_fp32_seconds']:.1f} s)"
            )
        if "break_even_images" in default:
            print(
                f"  compiling pays after {default['break_even_images']:,} images ({default['break_even_macs']:.1e} "
                f"MACs); the rule compiles from {default['rule_min_images']:,} "
                f"({COMPILE_MIN_IMAGES:,} images or {COMPILE_MIN_MACS:.0e} MACs)"
            )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"machine": info, "results": results}, out, indent=2)
            out.write("\n")


if __name__ == "__main__":
    main()
