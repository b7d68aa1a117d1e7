"""Detection on BCCD with 2 cores, as a user runs it: ``cnnlab train --task detect --data BCCD`` with the
defaults (nothing else), then ``cnnlab evaluate RUN --split test``; then inference speed at the run's input
size (320x416) and at 416x416, batch 1 and 16: eager fp32 NCHW vs the runtime's fast path, eager and compiled,
side by side.

    CNNLAB_WEIGHTS=../shared/data/efficientnet-lite0-imagenet \\
        python benchmarks/detect_bccd.py --shared ../shared/data --out docs/benchmarks-detection.json

``--run RUN`` skips training and measures an existing run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from cnnlab.models.detect.yolo import DecodedYolo
from cnnlab.runtime.inference import fast_inference
from cnnlab.tasks.detect.predictor import Detector


def cli(*args: str) -> float:
    """Run ``cnnlab`` in a fresh process (as a user does); returns the wall time."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cnnlab.cli.app", *args], check=True)
    return time.perf_counter() - started


def images_per_second(module: torch.nn.Module, size: tuple[int, int], batch: int, path: str, repeats: int) -> float:
    """Images/s after one warm-up call (which compiles, for ``compiled``): ``eager_fp32`` runs the model as it is,
    ``fast`` the runtime's eager fast path (bf16 + channels_last where native), ``compiled`` the same compiled."""
    x = torch.randn(batch, 3, *size)
    precision, compile = {"eager_fp32": ("fp32", "off"), "fast": ("auto", "off"), "compiled": ("auto", "on")}[path]
    with fast_inference(module, precision, compile, batch, batch) as run:
        run(x)  # warm-up (and the compile)
        started = time.perf_counter()
        for _ in range(repeats):
            run(x)
        return batch * repeats / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks-detection.json"))
    parser.add_argument("--run", type=Path, default=None)
    args = parser.parse_args()
    data = args.shared / "bccd" / "BCCD"
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__}
    result: dict[str, object] = {"machine": machine}
    run = args.run
    if run is None:
        runs = Path(tempfile.mkdtemp(prefix="bccd-runs-"))
        wall = cli("train", "--task", "detect", "--data", str(data), "--runs-dir", str(runs))
        result["train_wall_s"] = round(wall, 1)
        run = next((runs / "detect").iterdir())
        result["run"] = str(run)
    result["train_results"] = json.loads((run / "results.json").read_text())
    result["evaluate_wall_s"] = round(cli("evaluate", str(run), "--split", "test", "--out", str(run / "test")), 1)
    scores = json.loads((run / "test" / "evaluation.json").read_text())["scores"]
    result["test"] = {k: scores[k] for k in scores if k.startswith(("voc", "coco")) and "threshold" not in k}
    detector = Detector.load(run / "checkpoints" / "best.pt")
    module = DecodedYolo(detector.model).eval()
    speed = {}
    for size in ((320, 416), (416, 416)):
        for batch in (1, 16):
            repeats = 20 if batch == 1 else 3
            rates = {p: images_per_second(module, size, batch, p, repeats) for p in ("eager_fp32", "fast", "compiled")}
            row = {f"{p}_images_per_s": round(r, 1) for p, r in rates.items()}
            row |= {f"{p}_ratio": round(rates[p] / rates["eager_fp32"], 2) for p in ("fast", "compiled")}
            speed[f"{size[0]}x{size[1]} batch {batch}"] = row
            print(size, batch, speed[f"{size[0]}x{size[1]} batch {batch}"], flush=True)
    result["inference"] = speed
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
