"""``cnnlab lr-find``: the learning-rate range test on a dataset and model, with its plot."""

from __future__ import annotations

from pathlib import Path

import typer


def lr_find(
    data: str = typer.Option(None, "--data", help="Folder of class folders, .npz, .csv, or fashion-mnist / mnist."),
    model: str = typer.Option(None, "--model", help="Model name (cnnlab models lists them)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Images per step."),
    aug: str = typer.Option(None, "--aug", help="Augmentation preset."),
    img_size: int = typer.Option(None, "--img-size", help="Resize images to SxS when decoding."),
    optimizer: str = typer.Option(None, help="sgd | adam | adamw."),
    steps: int = typer.Option(100, help="LR values to try (one training step each)."),
    config: Path = typer.Option(None, "--config", help="run.yaml with the same settings as cnnlab train."),
    data_dir: str = typer.Option(None, "--data-dir", help="Where named datasets live (default $CNNLAB_DATA)."),
    out: Path = typer.Option(Path("lr_find.png"), "--out", help="Where to save the loss-vs-LR plot."),
) -> None:
    """Sweep the LR from 1e-6 to 1 over a few steps, plot the loss, and suggest an LR for --lr."""
    from rich.console import Console

    from cnnlab.classify import build_model, load_run_config, load_splits, train_transform
    from cnnlab.data.loader import TensorLoader
    from cnnlab.report.plots import plot_lr_find
    from cnnlab.train.lr_find import find_lr
    from cnnlab.train.trainer import Trainer

    overrides = {
        "data": {"source": data, "data_dir": data_dir, "img_size": img_size, "aug": aug},
        "model": {"name": model},
        "train": {"batch_size": batch_size, "optimizer": optimizer, "schedule": "constant"},
    }
    run_config = load_run_config(config, overrides)
    splits = load_splits(run_config.data, run_config.train.seed)
    trainer = Trainer(build_model(run_config, splits), run_config.train)
    cfg = run_config.train
    transform = train_transform(run_config.data.aug, splits)
    loader = TensorLoader(splits.train.images, splits.train.targets, cfg.batch_size, True, cfg.seed, transform)
    result = find_lr(trainer, loader, steps=steps)
    plot_lr_find(result.lrs, result.losses, result.suggestion, out)
    suggestion = f"[bold]{result.suggestion:.2e}[/bold]"
    Console().print(f"Suggested learning rate: {suggestion} (inside the longest fall of the loss)")
    Console().print(f"Plot: {out}")
