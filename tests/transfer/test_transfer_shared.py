"""Transfer learning on the real data: EfficientNet-Lite0 (ImageNet) on hymenoptera, ResNet-20 (CIFAR-10) on
Fashion-MNIST. The settings are those of docs/transfer.md (and of `cnnlab train --transfer`)."""

from __future__ import annotations

import json

import pytest
import torch

from cnnlab.cli.app import main
from cnnlab.data.augment import Compose, Normalize, Rescale
from cnnlab.data.datasets import load_mnist, load_split_folders, stratified_split
from cnnlab.data.loader import TensorLoader
from cnnlab.models import create_model, weight_spec
from cnnlab.train.config import TrainConfig
from cnnlab.train.trainer import Trainer
from cnnlab.transfer import TransferConfig, adapt_dataset, adapt_images, fine_tune, fit_transfer, load_pretrained

pytestmark = [pytest.mark.data, pytest.mark.slow]


@pytest.fixture(scope="module")
def hymenoptera(shared_data):
    spec = weight_spec("efficientnet_lite0.imagenet")
    # The weights' own preprocessing: shorter side to 256 (aspect kept), centre crop 224.
    sets = load_split_folders(shared_data / "hymenoptera", size=spec.resize, fit="crop")
    train, val = (adapt_dataset(sets[s], spec.input_size, fit="crop") for s in ("train", "val"))
    weights = shared_data / "efficientnet-lite0-imagenet" / spec.file_name
    transform = Compose([Rescale(), Normalize(spec.mean, spec.std)])  # the weights' own (x - 127) / 128
    return train, val, weights, transform


@pytest.fixture(scope="module")
def feature_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("features")  # shared: fine-tuning reuses the features run's cache


def _accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    return (logits.argmax(1) == targets).float().mean().item()


def _transfer(hymenoptera, cache, mode: str, epochs: int) -> float:
    train, val, weights, transform = hymenoptera
    torch.manual_seed(0)
    model, _ = load_pretrained("efficientnet_lite0", weights, num_classes=2)
    config = TransferConfig(mode=mode, unfrozen_lr=5e-4, cache_dir=str(cache))  # type: ignore[arg-type]
    train_config = TrainConfig(epochs=epochs, batch_size=32, lr=3e-3)
    data, held = (train.images, train.targets), (val.images, val.targets)
    _, predict = fit_transfer(model, config, train_config, data, held, transform, transform)
    return _accuracy(predict(val.images), val.targets)


@pytest.mark.measure  # notebooks/05_transfer.ipynb runs the same path through the CLI in the default suite
def test_features_and_a_linear_head_reach_93_percent(hymenoptera, feature_cache):
    assert len(hymenoptera[0]) == 245 and len(hymenoptera[1]) == 153
    assert _transfer(hymenoptera, feature_cache, "features", epochs=20) >= 0.93


@pytest.mark.measure
def test_fine_tuning_through_the_cli_then_evaluate(shared_data, tmp_path, monkeypatch, capsys):
    """The docs/transfer.md command: every group unfrozen, imagenet augmentation, 3 + 8 epochs. Measured 96.08% with
    seed 0 (94.12% and 96.08% with seeds 1 and 2); the check leaves room for bf16 differences between machines."""
    monkeypatch.setenv("CNNLAB_FEATURE_CACHE", str(tmp_path / "cache"))
    weights = shared_data / "efficientnet-lite0-imagenet" / weight_spec("efficientnet_lite0.imagenet").file_name
    args = ["train", "--data", str(shared_data / "hymenoptera"), "--model", "efficientnet_lite0"]
    args += ["--weights", str(weights), "--transfer", "finetune", "--unfreeze", "99", "--aug", "imagenet"]
    args += ["--epochs", "8", "--batch-size", "32", "--runs-dir", str(tmp_path / "runs")]
    assert main(args) == 0, capsys.readouterr().err
    run = tmp_path / "runs" / "classify" / "efficientnet_lite0-1"
    results = json.loads((run / "results.json").read_text())
    assert results["held_out_images"] == 153 and results["held_out_acc"] >= 0.94
    # evaluate reads the val folder the way training did (shorter side 256, centre crop 224)
    assert main(["evaluate", str(run)]) == 0, capsys.readouterr().err
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["images"] == 153 and abs(evaluation["accuracy"] - results["held_out_acc"]) <= 1 / 153


def test_pretrained_resnet20_beats_scratch_on_1000_fashion_mnist_images(shared_data):
    root = shared_data / "fashion-mnist"
    train, test = load_mnist(root, "train"), load_mnist(root, "test")
    _, keep = stratified_split(train.targets, 1000 / len(train), seed=0)  # 100 images per class
    x, y = adapt_images(train.images[keep], (3, 32, 32)), train.targets[keep]  # padded 28 -> 32, grey -> RGB
    x_test, y_test = adapt_images(test.images[:1000], (3, 32, 32)), test.targets[:1000]
    transform = Compose([Rescale(), Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    config = TrainConfig(epochs=3, batch_size=64, lr=3e-3)
    test_loader = TensorLoader(x_test, y_test, 500, transform=transform)

    torch.manual_seed(0)
    pretrained, spec = load_pretrained(
        "resnet20", shared_data / "resnet-cifar10-akamaster" / "resnet20-12fca82f.th", 10
    )
    assert spec is not None and spec.name == "resnet20.cifar10"
    options = {"unfreeze": 99, "config": config, "unfrozen_lr": config.lr, "decay": 0.5, "eval_transform": transform}
    tuned = fine_tune(pretrained, (x, y), None, frozen_epochs=0, unfrozen_epochs=3, **options)

    torch.manual_seed(0)
    scratch = Trainer(create_model("resnet20", num_classes=10), config)
    scratch.fit(TensorLoader(x, y, config.batch_size, shuffle=True, transform=transform))
    assert tuned.evaluate(test_loader)["acc"] > scratch.evaluate(test_loader)["acc"] + 0.02
