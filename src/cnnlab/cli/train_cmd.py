"""``cnnlab train``: train a classifier on a dataset folder or a named dataset into a run folder."""

from __future__ import annotations

from pathlib import Path

import typer


def train(
    data: str = typer.Option(None, "--data", help="Folder of class folders, .npz, .csv, or fashion-mnist / mnist."),
    model: str = typer.Option(None, "--model", help="Model name (cnnlab models lists them)."),
    epochs: int = typer.Option(None, help="Training epochs."),
    batch_size: int = typer.Option(None, "--batch-size", help="Images per training step."),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate."),
    aug: str = typer.Option(None, "--aug", help="Augmentation preset (cnnlab augment --help lists them)."),
    img_size: int = typer.Option(None, "--img-size", help="Resize images to SxS when decoding."),
    optimizer: str = typer.Option(None, help="sgd | adam | adamw."),
    precision: str = typer.Option(None, help="auto | fp32 | bf16 (auto: bf16 where the CPU has it natively)."),
    seed: int = typer.Option(None, help="Random seed (split, init, shuffling, augmentation)."),
    val_fraction: float = typer.Option(None, "--val-fraction", help="Share of train held out for validation."),
    weights: str = typer.Option(None, "--weights", help="Pretrained weights file for the model."),
    name: str = typer.Option(None, "--name", help="Run folder name (default: the model name)."),
    config: Path = typer.Option(None, "--config", help="run.yaml with the same settings; options override it."),
    data_dir: str = typer.Option(None, "--data-dir", help="Where named datasets live (default $CNNLAB_DATA)."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where run folders are created."),
    resume: Path = typer.Option(None, "--resume", help="Continue the run in this folder from its last checkpoint."),
    strict: bool = typer.Option(False, "--strict", help="Fail on the first unreadable image instead of skipping it."),
) -> None:
    """Train a classifier; writes config, metrics, checkpoints and plots to runs/classify/<name>-<n>/."""
    from cnnlab.classify import load_run_config, run_classification

    source = resume / "config.yaml" if resume is not None else config
    overrides = {
        "run": {"name": name},
        "data": {"source": data, "data_dir": data_dir, "img_size": img_size, "aug": aug, "val_fraction": val_fraction},
        "model": {"name": model, "weights": weights},
        "train": {
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "optimizer": optimizer,
            "precision": precision,
            "seed": seed,
        },
    }
    if strict:
        overrides["data"]["strict"] = True
    run_classification(load_run_config(source, overrides), runs_dir=runs_dir, resume=resume)
