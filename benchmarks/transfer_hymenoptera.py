"""EfficientNet-Lite0 on hymenoptera (ants vs bees): ImageNet features + linear head, fine-tuning, and the
same network from scratch, each timed from a cold feature cache (decoding included).

Preprocessing is the weights' own: shorter side to 256 (aspect kept), centre crop 224, (x - 127) / 128.
Validation is the val/ folder (153 images); nothing is selected on it (the last epoch counts).

    python benchmarks/transfer_hymenoptera.py --runs features finetune scratch
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from cnnlab.data.augment import Compose, Normalize, Rescale
from cnnlab.data.datasets import load_split_folders
from cnnlab.data.loader import TensorLoader
from cnnlab.data.presets import PRESETS
from cnnlab.models import create_model, weight_spec
from cnnlab.train.config import TrainConfig
from cnnlab.train.trainer import Trainer
from cnnlab.transfer import TransferConfig, adapt_dataset, fit_transfer, load_pretrained, with_normalisation

SHARED = Path(os.environ.get("CNNLAB_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SPEC = weight_spec("efficientnet_lite0.imagenet")
WEIGHTS = SHARED / "efficientnet-lite0-imagenet" / SPEC.file_name


def run(kind: str, scratch_epochs: int, options: dict[str, Any]) -> dict[str, object]:
    """One configuration, timed end to end; returns its validation accuracy and seconds."""
    started = time.perf_counter()
    sets = load_split_folders(SHARED / "hymenoptera", size=SPEC.resize, fit="crop")
    train, val = (adapt_dataset(sets[s], SPEC.input_size, fit="crop") for s in ("train", "val"))
    transform = Compose([Rescale(), Normalize(SPEC.mean, SPEC.std)])
    torch.manual_seed(int(options["seed"]))
    if kind == "scratch":  # the same architecture and preprocessing, random weights, full training
        config = TrainConfig(epochs=scratch_epochs, batch_size=32, lr=3e-3)
        trainer = Trainer(create_model("efficientnet_lite0", num_classes=2), config)
        trainer.fit(TensorLoader(train.images, train.targets, 32, shuffle=True, transform=transform))
        acc = trainer.evaluate(TensorLoader(val.images, val.targets, 64, transform=transform))["acc"]
    else:
        model, _ = load_pretrained("efficientnet_lite0", WEIGHTS, num_classes=2)
        cache = tempfile.mkdtemp(prefix="cnnlab-features-")  # cold: the backbone runs in this timing
        config = TransferConfig(
            mode=kind,  # type: ignore[arg-type]
            unfreeze=int(options["unfreeze"]),
            unfrozen_lr=options["unfrozen_lr"],
            decay=options["decay"],
            cache_dir=cache,
        )
        epochs = 20 if kind == "features" else int(options["finetune_epochs"])
        train_config = TrainConfig(epochs=epochs, batch_size=32, lr=3e-3, seed=int(options["seed"]))
        data, held = (train.images, train.targets), (val.images, val.targets)
        augment = with_normalisation(PRESETS.get(str(options["aug"]))(train.images), SPEC.mean, SPEC.std)
        _, predict = fit_transfer(model, config, train_config, data, held, augment, transform)
        probs = predict(val.images).softmax(1)
        acc = (probs.argmax(1) == val.targets).float().mean().item()
        mirrored = (probs + predict(val.images.flip(-1)).softmax(1)) / 2  # flip test-time augmentation
        flip_acc = (mirrored.argmax(1) == val.targets).float().mean().item()
        return {"run": kind, "val_acc": round(acc, 4), "val_acc_flip_tta": round(flip_acc, 4), "wall_s": wall(started)}
    return {"run": kind, "val_acc": round(acc, 4), "wall_s": wall(started)}


def wall(started: float) -> float:
    return round(time.perf_counter() - started, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=["features", "finetune", "scratch"])
    parser.add_argument("--scratch-epochs", type=int, default=3)
    parser.add_argument("--finetune-epochs", type=int, default=5)
    parser.add_argument("--unfreeze", type=int, default=2, help="finetune: backbone layer groups trained")
    parser.add_argument("--unfrozen-lr", type=float, default=1e-3, help="finetune: the head's peak LR")
    parser.add_argument("--decay", type=float, default=0.3, help="finetune: LR factor per group further down")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--aug", default="none", help="finetune: augmentation preset (none: cached tail + mirrors)")
    args = parser.parse_args()
    options = {k: vars(args)[k] for k in ("finetune_epochs", "unfreeze", "unfrozen_lr", "decay", "seed", "aug")}
    for kind in args.runs:
        result = run(kind, args.scratch_epochs, options) | {"options": options}
        print(json.dumps(result | {"threads": torch.get_num_threads(), "load_average": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
