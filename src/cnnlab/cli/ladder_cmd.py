"""``cnnlab ladder STEP``: the course's detection ladder, steps 1-3, each into ``runs/ladder/<step>-<n>/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cnnlab.tasks.detect.ladder import STEPS, LadderSettings, run_ladder, summary_line
from cnnlab.train.trainer import Callback, Trainer

_DEFAULTS = LadderSettings()


class _EpochLine(Callback):
    """One line per epoch: the training and validation loss (and accuracy where there is one)."""

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        shown = ("loss", "val_loss", "val_acc", "time_s")
        typer.echo(f"epoch {logs['epoch']}: " + ", ".join(f"{k} {logs[k]:.4g}" for k in shown if k in logs))


def ladder(
    step: str = typer.Argument(..., help=" | ".join(STEPS) + "."),
    image: Path = typer.Option(None, "--image", help="pnet: the photo to search for faces."),
    weights: Path = typer.Option(
        None, "--weights", help="pnet: MTCNN's pnet.pt (default: pnet.pt in $CNNLAB_WEIGHTS or ~/.cache/cnnlab)."
    ),
    canvas: int = typer.Option(_DEFAULTS.canvas, "--canvas", help="Side of the square digit canvases (pixels)."),
    train_images: int = typer.Option(_DEFAULTS.train_images, "--train-images", help="Training canvases."),
    val_images: int = typer.Option(_DEFAULTS.val_images, "--val-images", help="Validation canvases."),
    epochs: int = typer.Option(_DEFAULTS.epochs, "--epochs", min=1),
    batch_size: int = typer.Option(_DEFAULTS.batch_size, "--batch-size", min=1),
    lr: float = typer.Option(_DEFAULTS.learning_rate, "--lr", help="Peak learning rate (Adam, one-cycle)."),
    backbone: str = typer.Option(_DEFAULTS.backbone, "--backbone", help="localise, landmarks: any zoo model."),
    width: int = typer.Option(_DEFAULTS.width, "--width", help="cnn_small's first-stage channels."),
    mnist: Path = typer.Option(None, "--mnist", help="An MNIST folder (IDX files) instead of scikit-learn's digits."),
    seed: int = typer.Option(_DEFAULTS.seed, "--seed"),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where run folders are created."),
) -> None:
    """Run one step of the detection ladder: `cnnlab ladder localise`, `landmarks`, `sliding`, or
    `cnnlab ladder pnet --image PHOTO --weights pnet.pt`. Writes metrics.json and pictures (plots/)."""
    settings = LadderSettings(
        canvas=canvas,
        train_images=train_images,
        val_images=val_images,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=lr,
        backbone=backbone,
        width=width,
        glyphs=None if mnist is None else str(mnist),
        seed=seed,
    )
    metrics = run_ladder(step, settings, runs_dir, image=image, weights=weights, callbacks=[_EpochLine()])
    typer.echo(summary_line(metrics))
    typer.echo(f"Run: {metrics['run']} (metrics.json, plots/)")
