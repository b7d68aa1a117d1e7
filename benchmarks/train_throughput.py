"""Training images/s: cnnlab's Trainer (its fast CPU defaults) vs a plain fp32 PyTorch loop vs Keras/TF.

Nets (issue 7): (a) the classic Fashion-MNIST CNN (``fashion_cnn``), batch 256, 1x28x28;
(b) ResNet-18 with the CIFAR-style stem, batch 128, 3x32x32. Synthetic data; steady state after
warm-up; every configuration is measured ``--rounds`` times round-robin (so machine noise hits all
of them alike) and the median is reported, with ratios taken within this one run.

    python benchmarks/train_throughput.py                       # torch only
    python benchmarks/train_throughput.py --keras-python /tmp/tfbench/bin/python

The Keras side runs in its own interpreter (a venv with tensorflow-cpu; never the project's venv).
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


def cnnlab_fit(net: dict, steps: int, warmup: int, compile: bool = False) -> float:
    """``Trainer.fit`` with its defaults (``compile``: plus ``--compile``, its compile inside the warm-up),
    fed uint8 batches through the normal data path."""
    n = (warmup + steps) * net["batch"]
    x = torch.randint(0, 256, (n, *net["shape"]), dtype=torch.uint8)
    y = torch.randint(0, 10, (n,))
    loader = TensorLoader(x, y, net["batch"], shuffle=True, transform=lambda b, g: b.float().div_(255))
    clock = _Clock(warmup)
    config = TrainConfig(
        epochs=1, batch_size=net["batch"], optimizer="sgd", lr=0.01, schedule="constant", compile=compile
    )
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
    for _ in range(args.rounds):
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
        "nets": {},
    }
    for name, by_label in samples.items():
        medians = {label: statistics.median(values) for label, values in by_label.items()}
        ratios = {f"cnnlab/{k}": medians["cnnlab_fit"] / v for k, v in medians.items() if k != "cnnlab_fit"}
        result["nets"][name] = {"img_per_s": medians, "ratios": ratios, "samples": by_label}
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
