"""Training images/s: cnnlab's Trainer (its fast CPU defaults) vs a plain fp32 PyTorch loop vs Keras/TF.

Nets (issue 7): (a) the classic Fashion-MNIST CNN (``fashion_cnn``), batch 256, 1x28x28;
(b) ResNet-18 with the CIFAR-style stem, batch 128, 3x32x32. Synthetic data; steady state after
warm-up; every configuration is measured ``--rounds`` times round-robin (so machine noise hits all
of them alike) and the median is reported, with ratios taken within this one run.

    python benchmarks/train_throughput.py                       # torch only
    python benchmarks/train_throughput.py --keras-python /tmp/tfbench/bin/python

The Keras side runs in its own interpreter (a venv with tensorflow-cpu; never the project's venv).

Each round also measures the machine's conv peak (GFLOP/s of oneDNN's 3x3 convolution, fp32 and bf16
channels_last, over the stage shapes of net (b) plus the bench notes' 256-channel kernel; the best shape
counts), so the share of peak that training reaches is taken in the same run as the throughputs.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import textwrap
import time
from functools import partial

import torch
from torch import nn

from cnnlab.data.loader import TensorLoader
from cnnlab.models import create_model
from cnnlab.train import Callback, TrainConfig, Trainer

NETS = {
    "a_fashion_cnn": {"model": "fashion_cnn", "kwargs": {"in_chans": 1}, "shape": (1, 28, 28), "batch": 256},
    "b_resnet18_cifar": {"model": "resnet18", "kwargs": {"small_input": True}, "shape": (3, 32, 32), "batch": 128},
}


# 3x3 convolutions (batch, channels, height = width): net (b)'s four stages at batch 128, the notes' kernel.
PEAK_SHAPES = [(128, 64, 32), (128, 128, 16), (128, 256, 8), (128, 512, 4), (64, 256, 14)]
# Training FLOPs per image = 3 x forward (2 x multiply-adds), as in ../shared/notes/engine-bench.md.
TRAIN_GFLOP_PER_IMAGE = {"a_fashion_cnn": 3 * 0.0297, "b_resnet18_cifar": 3 * 1.111}


def conv_peak(dtype: torch.dtype, reps: int = 6) -> float:
    """Best GFLOP/s of a forward 3x3 conv (channels_last, no grad) over ``PEAK_SHAPES``."""
    best = 0.0
    for batch, channels, size in PEAK_SHAPES:
        x = torch.randn(batch, channels, size, size).to(dtype).contiguous(memory_format=torch.channels_last)
        conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False).to(dtype, memory_format=torch.channels_last)
        flops = 2 * batch * channels * channels * 9 * size * size
        with torch.no_grad():
            for _ in range(2):
                conv(x)
            start = time.perf_counter()
            for _ in range(reps):
                conv(x)
        best = max(best, flops * reps / (time.perf_counter() - start) / 1e9)
    return best


def build(net: dict) -> nn.Module:
    torch.manual_seed(0)
    return create_model(net["model"], num_classes=10, **net["kwargs"])


def plain_fp32(net: dict, steps: int, warmup: int) -> float:
    """The loop most tutorials write: NCHW fp32, SGD momentum, one fixed batch."""
    model = build(net).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(net["batch"], *net["shape"])
    y = torch.randint(0, 10, (net["batch"],))
    loss_fn = nn.CrossEntropyLoss()
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()
    return steps * net["batch"] / (time.perf_counter() - start)


class _Clock(Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end, self.images = warmup, 0.0, 0.0, 0

    def on_batch_end(self, trainer: Trainer, logs: dict) -> None:
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()
        elif trainer.global_step > self.warmup:
            self.images += logs["batch_size"]
            self.end = time.perf_counter()


def cnnlab_fit(net: dict, steps: int, warmup: int, **settings: object) -> float:
    """``Trainer.fit`` with its defaults, changed by ``settings`` (``TrainConfig`` fields; with ``compile=True``
    the compile happens inside the warm-up), fed uint8 batches through the normal data path."""
    n = (warmup + steps) * net["batch"]
    x = torch.randint(0, 256, (n, *net["shape"]), dtype=torch.uint8)
    y = torch.randint(0, 10, (n,))
    loader = TensorLoader(x, y, net["batch"], shuffle=True, transform=lambda b, g: b.float().div_(255))
    clock = _Clock(warmup)
    config = TrainConfig(epochs=1, batch_size=net["batch"], optimizer="sgd", lr=0.01, schedule="constant", **settings)
    Trainer(build(net), config, callbacks=[clock]).fit(loader)
    return clock.images / (clock.end - clock.start)


KERAS_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np, keras
    from keras import layers
    name, steps, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    def fashion():
        def cbr(f, p): return [layers.Conv2D(f, 3, padding=p), layers.BatchNormalization(), layers.ReLU()]
        return keras.Sequential([keras.Input((28, 28, 1)), *cbr(32, "same"), *cbr(32, "valid"), layers.MaxPooling2D(),
            layers.Dropout(0.25), *cbr(64, "same"), *cbr(64, "valid"), layers.MaxPooling2D(), layers.Dropout(0.25),
            layers.Flatten(), layers.Dense(512), layers.BatchNormalization(), layers.ReLU(), layers.Dropout(0.5),
            layers.Dense(10)]), (28, 28, 1), 256
    def resnet18():
        def block(x, f, s):
            y = layers.Conv2D(f, 3, s, padding="same", use_bias=False)(x)
            y = layers.ReLU()(layers.BatchNormalization()(y))
            y = layers.BatchNormalization()(layers.Conv2D(f, 3, padding="same", use_bias=False)(y))
            if s != 1 or x.shape[-1] != f:
                x = layers.BatchNormalization()(layers.Conv2D(f, 1, s, use_bias=False)(x))
            return layers.ReLU()(layers.Add()([x, y]))
        inp = keras.Input((32, 32, 3))
        x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(64, 3, padding="same", use_bias=False)(inp)))
        for f, s in [(64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)]:
            x = block(x, f, s)
        return keras.Model(inp, layers.Dense(10)(layers.GlobalAveragePooling2D()(x))), (32, 32, 3), 128
    model, shape, batch = fashion() if name == "a_fashion_cnn" else resnet18()
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.rand(batch * (steps + warmup), *shape).astype("float32")
    y = np.random.randint(0, 10, len(x))
    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch_index, logs=None):
            if batch_index + 1 == warmup: self.start = time.perf_counter()
            self.end = time.perf_counter()
    clock = Clock()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, callbacks=[clock], shuffle=False)
    print(json.dumps(steps * batch / (clock.end - clock.start)))
    """
)


def keras_fit(python: str, name: str, steps: int, warmup: int) -> float:
    out = subprocess.run(
        [python, "-c", KERAS_SCRIPT, name, str(steps), str(warmup)], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--keras-python", help="interpreter of a venv with tensorflow-cpu + keras")
    parser.add_argument("--nets", nargs="*", default=list(NETS))
    parser.add_argument("--compile", action="store_true", help="also time cnnlab fit with --compile")
    args = parser.parse_args()
    runners = {"plain_fp32": plain_fp32, "cnnlab_fit": cnnlab_fit}
    if args.compile:
        runners["cnnlab_fit_compiled"] = partial(cnnlab_fit, compile=True)
    samples: dict[str, dict[str, list[float]]] = {n: {} for n in args.nets}
    peaks: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(args.rounds):
        peaks["fp32"].append(conv_peak(torch.float32))
        peaks["bf16"].append(conv_peak(torch.bfloat16))
        for name in args.nets:
            net = NETS[name]
            steps = args.steps if net["batch"] == 256 else max(args.steps // 3, 8)
            for label, run in runners.items():
                samples[name].setdefault(label, []).append(run(net, steps, args.warmup))
            if args.keras_python:
                samples[name].setdefault("keras_tf", []).append(keras_fit(args.keras_python, name, steps, args.warmup))
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads()},
        "torch": torch.__version__,
        "conv_peak_gflop_per_s": {k: statistics.median(v) for k, v in peaks.items()},
        "conv_peak_samples": peaks,
        "nets": {},
    }
    for name, by_label in samples.items():
        medians = {label: statistics.median(values) for label, values in by_label.items()}
        ratios = {f"cnnlab/{k}": medians["cnnlab_fit"] / v for k, v in medians.items() if k != "cnnlab_fit"}
        gflops = {label: rate * TRAIN_GFLOP_PER_IMAGE[name] for label, rate in medians.items()}
        share = {
            "cnnlab_fit/bf16_peak": gflops["cnnlab_fit"] / result["conv_peak_gflop_per_s"]["bf16"],
            "plain_fp32/fp32_peak": gflops["plain_fp32"] / result["conv_peak_gflop_per_s"]["fp32"],
        }
        result["nets"][name] = {
            "img_per_s": medians,
            "ratios": ratios,
            "train_gflop_per_s": gflops,
            "share_of_peak": share,
            "samples": by_label,
        }
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
