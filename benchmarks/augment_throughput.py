"""Augmentation throughput (images/s): cnnlab batched vs per-image PIL vs Keras ImageDataGenerator.

Same operations in all three, per workload:
  28x28   (Fashion-MNIST): rotate ±10°, shift ±10%, zoom 0.9-1.1, rescale to [0, 1]          (preset "mnist")
  32x32   (hymenoptera):   shift ±4 px (pad 4 + crop, reflect), h-flip, rescale                 (preset "cifar")
  224x224 (hymenoptera):   rotate ±40°, shift ±20%, shear 0.2°, zoom 0.8-1.2, h-flip, rescale (preset "keras-course")
  224x224 (hymenoptera):   random resized crop from 256x256, h-flip, colour jitter, normalise   (preset "imagenet",
                           cnnlab only: ImageDataGenerator has no such operations)

Keras runs in its own environment (tensorflow-cpu must never go into the project venv):

    python -m venv /tmp/tfbench && /tmp/tfbench/bin/pip install tensorflow-cpu scipy pillow
    python benchmarks/augment_throughput.py --keras-python /tmp/tfbench/bin/python

The script hands the same uint8 images to the Keras worker through a temporary .npy file and
prints two markdown tables from the same timing loops, by wall clock and by process CPU time (the
steadier one on a shared machine), with the load average before and after; ratios come from this
one run. No timing assertions live in tests.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

KERAS_ARGS = {
    "cifar": {
        "width_shift_range": 4,
        "height_shift_range": 4,
        "horizontal_flip": True,
        "fill_mode": "reflect",
        "rescale": 1 / 255,
    },
    "mnist": {
        "rotation_range": 10,
        "width_shift_range": 0.1,
        "height_shift_range": 0.1,
        "zoom_range": 0.1,
        "fill_mode": "constant",
        "rescale": 1 / 255,
    },
    "keras-course": {
        "rotation_range": 40,
        "width_shift_range": 0.2,
        "height_shift_range": 0.2,
        "shear_range": 0.2,
        "zoom_range": 0.2,
        "horizontal_flip": True,
        "fill_mode": "nearest",
        "rescale": 1 / 255,
    },
}


Rate = tuple[float, float]
"""(images per wall-clock second, images per CPU-second of the process, all its threads together)."""


def _rate(step: Callable[[int], int], min_seconds: float) -> Rate:
    """Rates of ``step(i) -> images done``, after one warm-up call, over at least ``min_seconds`` of wall time.

    CPU time does not count the time other processes hold the cores, so on a shared machine it gives
    the steadier comparison between single-threaded runs measured one after the other.
    """
    step(0)
    done, start, cpu, i = 0, time.perf_counter(), time.process_time(), 1
    while (elapsed := time.perf_counter() - start) < min_seconds or i < 4:
        done += step(i)
        i += 1
    return done / elapsed, done / (time.process_time() - cpu)


def keras_worker(images_path: str, preset: str, batch: int, seconds: float) -> None:
    """Run inside the TensorFlow environment: time ImageDataGenerator.flow on the given images."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from tensorflow.keras.preprocessing.image import ImageDataGenerator

    x = np.load(images_path)  # (N, H, W, C) uint8
    flow = ImageDataGenerator(**KERAS_ARGS[preset]).flow(x.astype(np.float32), batch_size=batch, shuffle=True, seed=0)

    def step(_: int) -> int:
        return len(next(flow))

    print(json.dumps({"rate": _rate(step, seconds), "tensorflow": tf.__version__}))


def pil_affine_batch(x: np.ndarray, preset: str, rng: random.Random) -> np.ndarray:
    """Per-image PIL: draw parameters, one Image.transform(AFFINE) per image, flip, to float in [0, 1]."""
    from PIL import Image

    args = KERAS_ARGS[preset]
    out = []
    for image in x:  # (H, W, C)
        h, w = image.shape[:2]
        pil = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
        rotation, shear, zoom = args.get("rotation_range", 0), args.get("shear_range", 0), args.get("zoom_range", 0)
        sx, sy = args["width_shift_range"], args["height_shift_range"]
        angle = math.radians(rng.uniform(-rotation, rotation))
        tx = rng.uniform(-sx, sx) * (w if sx < 1 else 1)
        ty = rng.uniform(-sy, sy) * (h if sy < 1 else 1)
        shear = math.radians(rng.uniform(-shear, shear))
        zx, zy = rng.uniform(1 - zoom, 1 + zoom), rng.uniform(1 - zoom, 1 + zoom)
        # Output -> input map about the centre: rotation @ shear @ zoom, plus the shift.
        a = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        a = a @ np.array([[1, -math.sin(shear)], [0, math.cos(shear)]]) @ np.diag([zx, zy])
        c = np.array([w / 2, h / 2])
        offset = c - a @ c + np.array([tx, ty])
        data = (a[0, 0], a[0, 1], offset[0], a[1, 0], a[1, 1], offset[1])
        pil = pil.transform((w, h), Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR)
        if args.get("horizontal_flip") and rng.random() < 0.5:
            pil = pil.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        out.append(np.asarray(pil, dtype=np.float32) * args["rescale"])
    return np.stack(out)


def load_images(workload: str) -> np.ndarray:
    """(N, H, W, C) uint8 real images for a workload (random bytes when ../shared/data is absent)."""
    from cnnlab.data.datasets import load_mnist, load_split_folders

    if workload == "28":
        root = SHARED / "fashion-mnist"
        if root.is_dir():
            return load_mnist(root, "train").images[:4096].permute(0, 2, 3, 1).numpy()
        return np.random.default_rng(0).integers(0, 256, (4096, 28, 28, 1), dtype=np.uint8)
    side = int(workload)
    root = SHARED / "hymenoptera"
    if root.is_dir():
        images = load_split_folders(root, size=side, fit="crop")["train"].images.permute(0, 2, 3, 1).numpy()
        return np.concatenate([images, images[: 512 - len(images)]])
    return np.random.default_rng(0).integers(0, 256, (512, side, side, 3), dtype=np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keras-python", help="Python of an environment with tensorflow-cpu installed.")
    parser.add_argument("--seconds", type=float, default=4.0, help="Minimum timed seconds per measurement.")
    parser.add_argument("--threads", type=int, help="torch intra-op threads for cnnlab (default: torch's choice).")
    parser.add_argument(
        "--keras-worker", nargs=4, metavar=("NPY", "PRESET", "BATCH", "SECONDS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.keras_worker:
        npy, preset, batch, seconds = args.keras_worker
        keras_worker(npy, preset, int(batch), float(seconds))
        return

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    tf_version = "-"
    load_before = os.getloadavg()
    workloads = (("28", "mnist", 256), ("32", "cifar", 256), ("224", "keras-course", 64), ("256", "imagenet", 64))
    for workload, preset, batch in workloads:
        x = load_images(workload)  # (N, H, W, C) uint8
        ours, pil, keras, version = measure(x, preset, batch, args.seconds, args.keras_python)
        tf_version = version or tf_version
        shape = f"{x.shape[2]}x{x.shape[1]}" if preset != "imagenet" else "256x256 -> 224x224"
        rows.append((shape, preset, batch, ours, pil, keras))

    print(
        f"python {platform.python_version()}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"tensorflow {tf_version}, {platform.processor() or platform.machine()}"
    )
    load_after = os.getloadavg()
    print(
        f"load average (1, 5, 15 min) on {os.cpu_count()} CPUs: before {', '.join(f'{v:.2f}' for v in load_before)}, "
        f"after {', '.join(f'{v:.2f}' for v in load_after)}"
    )
    for clock, unit in ((0, "img/s"), (1, "img/CPU-s")):
        print(f"\n{('Wall clock', 'CPU time (process, all threads)')[clock]}:\n")
        print(
            f"| images | preset | batch | cnnlab {unit} | per-image PIL {unit} | Keras IDG {unit} | vs PIL | vs Keras |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for shape, preset, batch, ours, *others in rows:
            rate = ours[clock]
            values = [other[clock] if other else None for other in others]
            cells = [f"{v:,.0f}" if v else "-" for v in values] + [f"{rate / v:.1f}x" if v else "-" for v in values]
            print(f"| {shape} | {preset} | {batch} | {rate:,.0f} | " + " | ".join(cells) + " |")
    sys.stdout.flush()


def measure(
    x: np.ndarray, preset: str, batch: int, seconds: float, keras_python: str | None
) -> tuple[Rate, Rate | None, Rate | None, str | None]:
    """(cnnlab, PIL, Keras) rates for one workload, and the TensorFlow version when Keras ran."""
    import torch

    from cnnlab.data.presets import PRESETS

    tensor = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)
    pipeline = PRESETS.get(preset)(None)
    n_batches = len(tensor) // batch

    def ours(i: int) -> int:
        j = i % n_batches
        return len(pipeline(tensor[j * batch : (j + 1) * batch], torch.Generator().manual_seed(i)))

    rate = _rate(ours, seconds)
    if preset not in KERAS_ARGS:
        return rate, None, None, None
    rng = random.Random(0)

    def pil(i: int) -> int:
        j = i % n_batches
        return len(pil_affine_batch(x[j * batch : (j + 1) * batch], preset, rng))

    pil_rate = _rate(pil, seconds)
    if not keras_python:
        return rate, pil_rate, None, None
    with tempfile.TemporaryDirectory() as folder:
        npy = Path(folder) / "x.npy"
        np.save(npy, x)
        cmd = [keras_python, __file__, "--keras-worker", str(npy), preset, str(batch), str(seconds)]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result = json.loads(done.stdout.splitlines()[-1])
    return rate, pil_rate, tuple(result["rate"]), result["tensorflow"]


if __name__ == "__main__":
    main()
