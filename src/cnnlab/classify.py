"""A classification run from settings to run folder: data -> model -> Trainer -> results.

``cnnlab train`` and ``cnnlab demo`` both call :func:`run_classification`. The resolved
:class:`RunConfig` is written to ``config.yaml``; every checkpoint also carries what a later
``predict``/``evaluate`` needs (class names, normalisation, input size), so it stands alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from rich.console import Console

from cnnlab.core.config import load_yaml, replace, save_yaml, to_dict
from cnnlab.core.errors import ConfigError, DataError
from cnnlab.core.rundir import RunDir, atomic_write_text, load_checkpoint
from cnnlab.data.augment import Compose, Normalize, Rescale
from cnnlab.data.datasets import Dataset, open_source
from cnnlab.data.loader import TensorLoader
from cnnlab.data.named import resolve_source
from cnnlab.data.presets import PRESETS
from cnnlab.models import create_model
from cnnlab.report.plots import plot_confusion_matrix
from cnnlab.train.callbacks import Checkpointer, ProgressBar, RunLogger
from cnnlab.train.config import TrainConfig
from cnnlab.train.metrics import confusion_matrix
from cnnlab.train.trainer import Trainer


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how they are fed."""

    source: str = "fashion-mnist"  # a folder, .npz, .csv, or a named dataset (fashion-mnist, mnist)
    data_dir: str | None = None  # where named datasets live (default $CNNLAB_DATA or ~/.cnnlab/data)
    img_size: int | None = None  # resize images to img_size x img_size when decoding (None: keep)
    val_fraction: float = 0.1  # held out of the training split when the source has no validation split
    aug: str = "none"  # augmentation preset (cnnlab augment --help lists them)
    strict: bool = False  # fail on the first unreadable file instead of skipping it


@dataclass(frozen=True)
class ModelConfig:
    """Which network, and optional pretrained weights."""

    name: str = "cnn_small"
    weights: str | None = None


@dataclass(frozen=True)
class RunConfig:
    """Everything a classification run is made of (``--config run.yaml`` holds the same)."""

    task: Literal["classify"] = "classify"
    name: str | None = None  # run folder name (default: the model name)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class Splits:
    """Decoded train / validation / test sets and what is known about them."""

    train: Dataset
    val: Dataset | None
    test: Dataset | None
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]


# Loads the full dataset once per process: several runs in one test session share it.
SourceLoader = Callable[[DataConfig, int], dict[str, Dataset]]


def load_splits(config: DataConfig, seed: int, loader: SourceLoader | None = None) -> Splits:
    """Open the source and choose train / validation / test (stratified, seeded, when held out)."""
    sets = (loader or _open)(config, seed)
    train = _first(sets, "train", "all")
    if train is None:
        raise DataError(f"no training split found (splits: {', '.join(sets)})", where=config.source)
    if train.is_segmentation:
        raise DataError("this source has masks: it is a segmentation dataset", where=config.source)
    if len(train.classes) < 2:
        raise DataError(
            f"a classifier needs at least 2 classes; found {len(train.classes)}",
            where=config.source,
            fix="add a folder per class",
        )
    val = _first(sets, "val", "valid", "validation")
    if val is None and config.val_fraction > 0:
        train, val = train.split(config.val_fraction, seed=seed)
    images = train.images.float() / 255.0  # (N, C, H, W)
    mean = tuple(images.mean(dim=(0, 2, 3)).tolist())
    std = tuple(max(s, 1e-3) for s in images.std(dim=(0, 2, 3)).tolist())
    return Splits(train, val, sets.get("test"), list(train.classes), mean, std)


def _open(config: DataConfig, seed: int) -> dict[str, Dataset]:
    path, classes = resolve_source(config.source, config.data_dir)
    sets = open_source(path, size=config.img_size, strict=config.strict)
    if classes is not None:
        for dataset in sets.values():
            dataset.classes = list(classes)
    return sets


def eval_transform(mean: tuple[float, ...], std: tuple[float, ...]) -> Compose:
    """uint8 batch -> normalised float batch, no randomness."""
    return Compose([Rescale(), Normalize(mean, std)])


def train_transform(preset: str, splits: Splits) -> Compose:
    """The augmentation preset, then the training set's normalisation (unless the preset normalises)."""
    pipeline = PRESETS.get(preset)(splits.train.images)
    if not any(isinstance(t, Normalize) for t in pipeline.transforms):
        pipeline = Compose([*pipeline.transforms, Normalize(splits.mean, splits.std)])
    return pipeline


def run_classification(
    config: RunConfig,
    runs_dir: Path = Path("runs"),
    resume: Path | None = None,
    console: Console | None = None,
    loader: SourceLoader | None = None,
) -> dict[str, Any]:
    """Train (or resume) a classifier; returns the final metrics (also in ``results.json``)."""
    console = console or Console()
    run = (
        RunDir.open(resume)
        if resume is not None
        else RunDir.create(runs_dir, "classify", config.name or config.model.name)
    )
    save_yaml(config, run.config)
    cfg = config.train
    splits = load_splits(config.data, cfg.seed, loader)
    problems = splits.train.problems
    if problems:
        console.print(f"[yellow]Skipped {len(problems)} unreadable file(s)[/yellow]; see {run.log_file}")
        for problem in problems:
            run.log(f"skipped {problem.path}: {problem.message}")
    _, channels, height, width = splits.train.images.shape
    train = TensorLoader(
        splits.train.images,
        splits.train.targets,
        cfg.batch_size,
        shuffle=True,
        seed=cfg.seed,
        transform=train_transform(config.data.aug, splits),
    )
    evaluation = eval_transform(splits.mean, splits.std)
    val = _loader(splits.val, cfg.eval_batch_size, evaluation)

    torch.manual_seed(cfg.seed)
    model = create_model(
        config.model.name, num_classes=len(splits.classes), in_chans=channels, **_weights(config.model)
    )
    meta = {
        "config": to_dict(config),
        "classes": splits.classes,
        "mean": list(splits.mean),
        "std": list(splits.std),
        "input_size": [channels, height, width],
    }
    trainer = Trainer(
        model,
        cfg,
        callbacks=[ProgressBar(console=console), RunLogger(run), Checkpointer(run, cfg.monitor, extra=lambda: meta)],
    )
    if resume is not None and run.last_checkpoint.is_file():
        trainer.load_state_dict(load_checkpoint(run.last_checkpoint))
        console.print(f"Resuming {run.path} at epoch {trainer.epoch + 1}, step {trainer.step_in_epoch}")
    sizes = f"{len(splits.train):,} train" + (f", {len(splits.val):,} validation" if splits.val else "")
    console.print(f"Training [bold]{config.model.name}[/bold] on {sizes} images ({channels}x{height}x{width}).")
    console.print("Speed plan: " + "; ".join(trainer.plan.reasons))
    started = time.perf_counter()
    trainer.fit(train, val)
    seconds = time.perf_counter() - started
    if trainer.stop_reason == "interrupted":
        console.print(f"[yellow]Interrupted.[/yellow] Checkpoint saved. Resume with --resume {run.path}")
        return {"interrupted": True, "run_dir": str(run.path)}

    held = splits.test if splits.test is not None else splits.val
    results: dict[str, Any] = {"run_dir": str(run.path), "fit_seconds": round(seconds, 1), "epochs": trainer.epoch}
    if held is not None:
        name = "test" if splits.test is not None else "held-out"
        logits = trainer.predict(_loader(held, cfg.eval_batch_size, evaluation))
        counts = confusion_matrix(held.targets, logits.argmax(1), len(splits.classes)).numpy()
        key = name.replace("-", "_")
        results[f"{key}_acc"] = float(np.trace(counts) / counts.sum())
        results[f"{key}_images"] = len(held)
        plot = plot_confusion_matrix(
            counts, splits.classes, run.plots / "confusion_matrix.png", f"{name.capitalize()} set"
        )
        console.print(
            f"{name.capitalize()} accuracy: [bold green]{results[f'{key}_acc']:.2%}[/bold green] "
            f"({len(held):,} images; training took {seconds:.0f} s)"
        )
        console.print(f"Confusion matrix: {plot}")
    atomic_write_text(run.path / "results.json", json.dumps(results, indent=2) + "\n")
    run.log("results: " + json.dumps(results))
    console.print(f"Run folder: {run.path}")
    return results


def load_run_config(
    path: Path | None, overrides: dict[str, dict[str, Any]], base: RunConfig | None = None
) -> RunConfig:
    """A ``RunConfig`` from YAML (else ``base``) with per-section overrides (``None`` values ignored)."""
    config = load_yaml(RunConfig, path) if path is not None else (base or RunConfig())
    for section, values in overrides.items():
        if section == "run":
            config = replace(config, **values)
        else:
            config = replace(config, **{section: replace(getattr(config, section), **values)})
    return config


def _first(sets: dict[str, Dataset], *names: str) -> Dataset | None:
    return next((sets[n] for n in names if n in sets), None)


def _loader(data: Dataset | None, batch_size: int, transform: Compose) -> TensorLoader | None:
    if data is None:
        return None
    return TensorLoader(data.images, data.targets, batch_size, transform=transform)


def _weights(model: ModelConfig) -> dict[str, Any]:
    if model.weights is None:
        return {}
    if not Path(model.weights).is_file():
        raise ConfigError("weights file not found", where=model.weights, fix="pass the path of a .pth/.pt file")
    return {"weights": model.weights}
