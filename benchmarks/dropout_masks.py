"""Dropout on CPU: torch's ``F.dropout`` (bernoulli_ masks) vs cnnlab's ``hash_dropout``, side by side.

The shapes are the three dropout inputs of issue 7's net (a) (the classic Fashion-MNIST CNN, batch 256) in the
trainer's bf16 + channels_last layout; then whole training steps of net (a) with ``fast_dropout`` on and off.
The two variants alternate within each round (median of rounds).

    python benchmarks/dropout_masks.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from train_throughput import NETS, cnnlab_fit

from cnnlab.runtime.fast_dropout import hash_dropout

SHAPES = {"after conv block 1": (256, 32, 13, 13), "after conv block 2": (256, 64, 5, 5), "after dense 512": (256, 512)}


def ms_per_call(fn: Callable[[], torch.Tensor], reps: int = 30) -> float:
    for _ in range(3):
        fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--p", type=float, default=0.25)
    args = parser.parse_args()
    result = {}
    for label, shape in SHAPES.items():
        x = torch.randn(shape).to(torch.bfloat16)
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        samples: dict[str, list[float]] = {"torch": [], "hash": []}
        for _ in range(args.rounds):
            samples["torch"].append(ms_per_call(lambda x=x: F.dropout(x, args.p, True)))
            samples["hash"].append(ms_per_call(lambda x=x: hash_dropout(x, args.p, True)))
        medians = {k: statistics.median(v) for k, v in samples.items()}
        result[label] = {"shape": shape, "ms": medians, "speedup": medians["torch"] / medians["hash"]}
    training: dict[str, list[float]] = {"torch": [], "hash": []}
    for _ in range(args.rounds):
        training["torch"].append(cnnlab_fit(NETS["a_fashion_cnn"], 30, 5, fast_dropout=False))
        training["hash"].append(cnnlab_fit(NETS["a_fashion_cnn"], 30, 5))
    img_per_s = {k: statistics.median(v) for k, v in training.items()}
    fit = {"img_per_s": img_per_s, "speedup": img_per_s["hash"] / img_per_s["torch"], "samples": training}
    report = {"torch": torch.__version__, "threads": torch.get_num_threads(), "p": args.p, "dropout_calls": result}
    json.dump({**report, "net_a_training": fit}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
