"""Default settings vs round 1's on a small folder nobody tuned for: what a user who types only ``--data`` gets.

Writes a 4-class folder of simple shapes (circle, square, triangle, cross; random sizes, positions,
colours and backgrounds; PNG, JPEG and BMP files of 40-120 px, some grey), then trains through the CLI
with round 1's defaults spelled out (no augmentation, 10 epochs, batch 128) and with nothing but
``--data`` (settings chosen from the data), for each model given, and prints the held-out accuracies.

    python benchmarks/default_settings.py --images 600 --models cnn_small resnet20 --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "cross")


def draw(shape: str, rng: np.random.Generator) -> Image.Image:
    side = int(rng.integers(40, 121))
    background = tuple(int(v) for v in rng.integers(0, 120, 3))
    colour = tuple(int(v) for v in rng.integers(120, 256, 3))
    image = Image.new("RGB", (side, side), background)
    pen = ImageDraw.Draw(image)
    size = rng.uniform(0.35, 0.8) * side
    cx, cy = rng.uniform(size / 2, side - size / 2, 2)
    box = (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)
    if shape == "circle":
        pen.ellipse(box, fill=colour)
    elif shape == "square":
        pen.rectangle(box, fill=colour)
    elif shape == "triangle":
        pen.polygon([(cx, box[1]), (box[0], box[3]), (box[2], box[3])], fill=colour)
    else:
        bar = size / 4
        pen.rectangle((cx - bar / 2, box[1], cx + bar / 2, box[3]), fill=colour)
        pen.rectangle((box[0], cy - bar / 2, box[2], cy + bar / 2), fill=colour)
    return image.convert("L") if rng.random() < 0.2 else image


def write_shapes(root: Path, images: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(images):
        shape = SHAPES[i % len(SHAPES)]
        folder = root / shape
        folder.mkdir(parents=True, exist_ok=True)
        ext = ("png", "jpg", "bmp")[i % 3]
        draw(shape, rng).save(folder / f"{i}.{ext}")
    return root


def train(data: Path, runs: Path, model: str, seed: int, extra: list[str]) -> tuple[float, float]:
    command = [sys.executable, "-m", "cnnlab.cli.app", "train", "--data", str(data), "--img-size", "64"]
    command += ["--model", model, "--seed", str(seed), "--runs-dir", str(runs), *extra]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    run = max((runs / "classify").iterdir(), key=lambda p: p.stat().st_mtime)
    return json.loads((run / "results.json").read_text())["held_out_acc"], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--models", nargs="+", default=["cnn_small", "resnet20"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        data = write_shapes(Path(tmp) / "shapes", args.images)
        round1 = ["--aug", "none", "--epochs", "10", "--batch-size", "128"]
        for model in args.models:
            for seed in args.seeds:
                old, old_s = train(data, Path(tmp) / "runs", model, seed, round1)
                new, new_s = train(data, Path(tmp) / "runs", model, seed, [])
                print(
                    f"{model} seed {seed}: round-1 defaults {old:.1%} ({old_s:.0f} s), "
                    f"chosen from the data {new:.1%} ({new_s:.0f} s)"
                )


if __name__ == "__main__":
    main()
