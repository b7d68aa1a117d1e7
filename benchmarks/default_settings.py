"""Default settings vs round 1's on a small folder nobody tuned for: what a user who types only ``--data`` gets.

Writes a 6-class folder of shapes (circle, ring, square, frame, triangle, cross: filled vs hollow and
rotated, random sizes, positions and colours, two distractor lines, pixel noise; PNG, JPEG and BMP files
of 40-120 px, a fifth grey), then trains through the CLI
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

SHAPES = ("circle", "ring", "square", "frame", "triangle", "cross")


def draw(shape: str, rng: np.random.Generator) -> Image.Image:
    """One shape, rotated, small or large, on a noisy background with two distractor lines."""
    side = int(rng.integers(40, 121))
    background = tuple(int(v) for v in rng.integers(0, 120, 3))
    colour = tuple(int(v) for v in rng.integers(120, 256, 3))
    image = Image.new("RGB", (side, side), background)
    pen = ImageDraw.Draw(image)
    for _ in range(2):
        line = [float(v) for v in rng.uniform(0, side, 4)]
        pen.line(line, fill=tuple(int(v) for v in rng.integers(60, 200, 3)), width=max(1, side // 40))
    size = rng.uniform(0.3, 0.75) * side
    cx, cy = rng.uniform(size / 2, side - size / 2, 2)
    box = (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)
    width = max(2, int(size / 7))
    if shape in ("circle", "ring"):
        pen.ellipse(box, fill=colour if shape == "circle" else None, outline=colour, width=width)
    else:
        angle = rng.uniform(0, 2 * np.pi)
        corners = {"square": 4, "frame": 4, "triangle": 3, "cross": 4}[shape]
        points = [
            (
                cx + size / 2 * np.cos(angle + 2 * np.pi * k / corners),
                cy + size / 2 * np.sin(angle + 2 * np.pi * k / corners),
            )
            for k in range(corners)
        ]
        if shape == "cross":
            pen.line([points[0], points[2]], fill=colour, width=width)
            pen.line([points[1], points[3]], fill=colour, width=width)
        elif shape == "frame":
            pen.polygon(points, outline=colour, width=width)
        else:
            pen.polygon(points, fill=colour)
    noisy = np.asarray(image, np.float32) + rng.normal(0, 12, (side, side, 3))
    image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
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
