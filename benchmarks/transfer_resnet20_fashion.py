"""Pretrained CIFAR-10 ResNet-20 (akamaster) fine-tuned on 1,000 Fashion-MNIST images vs the same net from scratch.

Both runs see the same images (28x28 grey, padded to 32x32 and repeated into RGB, with the weights'
ImageNet mean/std), the same optimiser, learning rate, schedule and number of epochs; they differ only in
the starting weights. Accuracy is measured on the first ``--test`` images of the Fashion-MNIST test set.

    python benchmarks/transfer_resnet20_fashion.py --epochs 4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from cnnlab.data.augment import Compose, Normalize, Rescale
from cnnlab.data.datasets import load_mnist, stratified_split
from cnnlab.data.loader import TensorLoader
from cnnlab.models import create_model
from cnnlab.train.config import TrainConfig
from cnnlab.train.trainer import Trainer
from cnnlab.transfer import adapt_images, fine_tune, load_pretrained

SHARED = Path(os.environ.get("CNNLAB_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def compare(epochs: int, train_images: int, test_images: int, seed: int = 0) -> dict[str, object]:
    """Train both nets; returns test accuracies and seconds."""
    root = SHARED / "fashion-mnist"
    train, test = load_mnist(root, "train"), load_mnist(root, "test")
    _, keep = stratified_split(train.targets, train_images / len(train), seed=seed)  # 100 per class
    x = adapt_images(train.images[keep], (3, 32, 32))  # (N, 3, 32, 32): padded, grey repeated into RGB
    y = train.targets[keep]
    x_test, y_test = adapt_images(test.images[:test_images], (3, 32, 32)), test.targets[:test_images]
    weights = SHARED / "resnet-cifar10-akamaster" / "resnet20-12fca82f.th"
    transform = Compose([Rescale(), Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    config = TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, seed=seed)
    test_loader = TensorLoader(x_test, y_test, 500, transform=transform)
    results: dict[str, object] = {"train_images": len(y), "test_images": len(y_test), "epochs": epochs}

    torch.manual_seed(seed)
    pretrained, _ = load_pretrained("resnet20", weights, num_classes=10)
    started = time.perf_counter()
    options = {"unfreeze": 99, "config": config, "unfrozen_lr": config.lr, "decay": 0.5, "eval_transform": transform}
    trainer = fine_tune(pretrained, (x, y), None, frozen_epochs=0, unfrozen_epochs=epochs, **options)
    results["pretrained_s"] = round(time.perf_counter() - started, 1)
    results["pretrained_acc"] = round(trainer.evaluate(test_loader)["acc"], 4)

    torch.manual_seed(seed)
    scratch = create_model("resnet20", num_classes=10)
    started = time.perf_counter()
    trainer = Trainer(scratch, config)
    trainer.fit(TensorLoader(x, y, config.batch_size, shuffle=True, seed=seed, transform=transform))
    results["scratch_s"] = round(time.perf_counter() - started, 1)
    results["scratch_acc"] = round(trainer.evaluate(test_loader)["acc"], 4)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train", type=int, default=1000)
    parser.add_argument("--test", type=int, default=2000)
    args = parser.parse_args()
    results = compare(args.epochs, args.train, args.test)
    machine = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}
    print(json.dumps(results | machine | {"load_average": os.getloadavg()}, indent=2))


if __name__ == "__main__":
    main()
