"""A small trained run (two epochs on synthetic shapes), evaluated with flip TTA and a 2-model ensemble."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from cnnlab.cli.app import main
from cnnlab.tasks.classify.config import RunConfig
from cnnlab.tasks.classify.pipeline import run_classification
from cnnlab.tasks.config import DataConfig, ModelConfig
from cnnlab.train.config import TrainConfig


def shapes(n: int, seed: int, label_noise: float) -> tuple[np.ndarray, np.ndarray]:
    """28x28 images of class c: a bright square at one of three heights; some labels changed, so there are mistakes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for image, label in zip(images, labels, strict=True):
        top = 4 + 7 * label + rng.integers(-2, 3)
        image[top : top + 8, 10:18] = 230
    noisy = rng.random(n) < label_noise
    labels[noisy] = (labels[noisy] + 1) % 3
    return images, labels


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder written by ``train`` (report included), then ``evaluate --tta flip --ensemble last.pt``."""
    root = tmp_path_factory.mktemp("small-run")
    x_train, y_train = shapes(240, 0, 0.0)
    x_test, y_test = shapes(90, 1, 0.15)
    source = root / "shapes.npz"
    np.savez(source, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    config = RunConfig(
        name="small",
        data=DataConfig(source=str(source), val_fraction=0.2, aug="mnist"),
        model=ModelConfig(name="cnn_small"),
        train=TrainConfig(epochs=2, batch_size=32, eval_batch_size=128, lr=3e-3),
    )
    results = run_classification(config, runs_dir=root / "runs", console=Console(quiet=True))
    run = Path(results["run_dir"])
    assert (run / "report.html").is_file()
    code = main(["evaluate", str(run), "--tta", "flip", "--ensemble", str(run / "checkpoints" / "last.pt")])
    assert code == 0
    return run
