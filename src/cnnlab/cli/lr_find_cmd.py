"""``cnnlab lr-find``: the learning-rate range test on a dataset and model, with its plot."""

from __future__ import annotations

from pathlib import Path

import typer

from cnnlab.cli.options import DEVICE_HELP


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
    device: str = typer.Option(None, "--device", help=DEVICE_HELP + " Default: the config's (auto)."),
) -> None:
    """Sweep the LR from 1e-6 to 1 over a few steps, plot the loss, and suggest an LR for --lr."""
    from rich.console import Console

    from cnnlab.report.plots import plot_lr_find
    from cnnlab.runtime.device import resolve_device
    from cnnlab.tasks.classify.config import RunConfig
    from cnnlab.tasks.classify.pipeline import lr_range_test
    from cnnlab.tasks.config import load_run_config

    overrides = {
        "data": {"source": data, "data_dir": data_dir, "img_size": img_size, "aug": aug},
        "model": {"name": model},
        "train": {"batch_size": batch_size, "optimizer": optimizer, "schedule": "constant", "device": device},
    }
    run_config = load_run_config(RunConfig, config, overrides)
    resolve_device(run_config.train.device)  # an absent device stops here, before the data is read
    result = lr_range_test(run_config, steps)
    plot_lr_find(result.lrs, result.losses, result.suggestion, out)
    suggestion = f"[bold]{result.suggestion:.2e}[/bold]"
    Console().print(f"Suggested learning rate: {suggestion} (inside the longest fall of the loss)")
    Console().print(f"Plot: {out}")
