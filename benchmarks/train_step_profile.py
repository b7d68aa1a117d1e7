"""Where a training step's time goes: net (b) of issue 7 (ResNet-18, CIFAR stem, batch 128) under cnnlab's
defaults (bf16 autocast + channels_last), split by operator family with torch.profiler.

It answers how close to the machine's peak training can get here: the conv kernels' own GFLOP/s (forward
and backward, with the FLOPs each does) against the best forward 3x3 conv measured in the same run.

    python benchmarks/train_step_profile.py --steps 4
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile
from train_throughput import NETS, TRAIN_GFLOP_PER_IMAGE, conv_peak

from cnnlab.data.loader import TensorLoader
from cnnlab.models import create_model
from cnnlab.train import TrainConfig, Trainer

FAMILIES = {
    "aten::mkldnn_convolution": "conv forward",
    "aten::convolution_backward": "conv backward",
    "aten::native_batch_norm": "batch norm",
    "aten::native_batch_norm_backward": "batch norm",
}


def family(op: str) -> str:
    if op in FAMILIES:
        return FAMILIES[op]
    if "Optimizer" in op or op.startswith("aten::_foreach"):
        return "optimiser"
    return "other (ReLU, add, pooling, casts, loss, Python)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    net = NETS["b_resnet18_cifar"]
    n = (args.warmup + args.steps) * net["batch"]
    x = torch.randint(0, 256, (n, *net["shape"]), dtype=torch.uint8)
    loader = TensorLoader(x, torch.randint(0, 10, (n,)), net["batch"], transform=lambda b, g: b.float().div_(255))
    torch.manual_seed(0)
    model = create_model(net["model"], num_classes=10, **net["kwargs"])
    trainer = Trainer(model, TrainConfig(epochs=1, batch_size=net["batch"], optimizer="sgd", schedule="constant"))
    batches = iter(loader.batches())
    for _ in range(args.warmup):
        trainer.train_step(next(batches))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            trainer.train_step(next(batches))
    seconds: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        seconds[family(event.key)] += event.self_cpu_time_total / 1e6 / args.steps
    step_s = sum(seconds.values())
    forward_gflop = TRAIN_GFLOP_PER_IMAGE["b_resnet18_cifar"] / 3 * net["batch"]  # per step
    peak = conv_peak(torch.bfloat16)
    result = {
        "seconds_per_step": {k: round(v, 4) for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])},
        "share_of_step": {k: round(v / step_s, 3) for k, v in seconds.items()},
        "conv_forward_gflop_per_s": forward_gflop / seconds["conv forward"],
        "conv_backward_gflop_per_s": 2 * forward_gflop / seconds["conv backward"],
        "step_gflop_per_s": 3 * forward_gflop / step_s,
        "bf16_conv_peak_gflop_per_s": peak,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
