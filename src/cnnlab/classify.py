"""A classification run from settings to run folder: data -> model -> Trainer -> results.

``cnnlab train`` and ``cnnlab demo`` both call :func:`run_classification`. The resolved
:class:`RunConfig` is written to ``config.yaml``; every checkpoint also carries what a later
``predict``/``evaluate`` needs (class names, normalisation, input size), so it stands alone.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from rich.console import Console

from cnnlab.core.config import load_yaml, replace, save_yaml, to_dict
from cnnlab.core.errors import ConfigError, DataError
from cnnlab.core.rundir import RunDir, atomic_write_text, load_checkpoint
from cnnlab.data.augment import Compose, Normalize, Rescale
from cnnlab.data.datasets import Dataset, open_source
from cnnlab.data.images import Fit
from cnnlab.data.loader import TensorLoader
from cnnlab.data.named import resolve_source
from cnnlab.data.presets import PRESETS
from cnnlab.evaluate import Member, check_tta, evaluate, worst_mistake_cams, write_run_evaluation
from cnnlab.models import WeightSpec, create_model, model_entry
from cnnlab.report.artefacts import MODEL_SUMMARY_FILE, Plot, machine_info, write_evaluation
from cnnlab.report.html import write_report
from cnnlab.report.plots import plot_image_grid
from cnnlab.train.callbacks import Checkpointer, ProgressBar, RunLogger
from cnnlab.train.config import TrainConfig
from cnnlab.train.distributed import (
    DistributedConfig,
    DistributedTrainer,
    ShardedBatches,
    World,
    broadcast_from_main,
    process_group,
    world_from_env,
)
from cnnlab.train.metrics import classification_summary
from cnnlab.train.trainer import Trainer
from cnnlab.transfer import (
    TransferConfig,
    adapt_dataset,
    fit_transfer,
    head_classes,
    load_pretrained,
    pretrained_spec,
    with_normalisation,
)

SMALL_INPUT_MAX = 64  # images up to this height get a zoo model's small-input stem (no 7x7/2 + pool)


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how they are fed."""

    source: str = "fashion-mnist"  # a folder, .npz, .csv, or a named dataset (fashion-mnist, mnist)
    data_dir: str | None = None  # where named datasets live (default $CNNLAB_DATA or ~/.cnnlab/data)
    img_size: int | None = None  # resize images to img_size x img_size when decoding (None: keep)
    fit: Fit = "stretch"  # how other aspect ratios reach img_size: stretch | crop (centre) | pad (black borders)
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
    tta: str = "none"  # test-time augmentation of the final held-out score: none | flip | five_crop | ten_crop
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)  # reuse pretrained weights (cnnlab.transfer)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)  # under torchrun (--nproc N)


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
    sets = open_source(path, size=config.img_size, strict=config.strict, fit=config.fit)
    if classes is not None:
        for dataset in sets.values():
            dataset.classes = list(classes)
    return sets


def eval_transform(mean: tuple[float, ...], std: tuple[float, ...]) -> Compose:
    """uint8 batch -> normalised float batch, no randomness."""
    return Compose([Rescale(), Normalize(mean, std)])


def train_transform(preset: str, splits: Splits, weights_normalisation: bool = False) -> Compose:
    """The augmentation preset, then the training set's normalisation (unless the preset normalises).

    ``weights_normalisation``: ``splits.mean``/``std`` are pretrained weights' own and replace any the preset has.
    """
    pipeline = PRESETS.get(preset)(splits.train.images)
    if weights_normalisation:
        return with_normalisation(pipeline, splits.mean, splits.std)
    if not any(isinstance(t, Normalize) for t in pipeline.transforms):
        pipeline = Compose([*pipeline.transforms, Normalize(splits.mean, splits.std)])
    return pipeline


def build_model(config: RunConfig, splits: Splits) -> torch.nn.Module:
    """The configured zoo model for these classes and channels (small-input stem for small images)."""
    _, channels, height, _ = splits.train.images.shape
    return create_model(
        config.model.name,
        num_classes=len(splits.classes),
        in_chans=channels,
        **_small_input(config.model.name, height),
        **_weights(config.model),
    )


def run_classification(
    config: RunConfig,
    runs_dir: Path = Path("runs"),
    resume: Path | None = None,
    console: Console | None = None,
    loader: SourceLoader | None = None,
) -> dict[str, Any]:
    """Train (or resume) a classifier; returns the final metrics (also in ``results.json``).

    Under torchrun (``cnnlab train --nproc N``) every process calls it and they train one model together
    (DDP over shares of each global batch); rank 0 alone writes the run folder and prints.
    """
    world = world_from_env()
    if world is None:
        return _run_classification(config, runs_dir, resume, console, loader, None)
    if config.transfer.mode != "none":
        raise ConfigError("transfer runs train in one process", where="--nproc", fix="drop --nproc (or --transfer)")
    with process_group(world, config.distributed.timeout_s):
        return _run_classification(config, runs_dir, resume, console, loader, world)


def _run_classification(
    config: RunConfig,
    runs_dir: Path,
    resume: Path | None,
    console: Console | None,
    loader: SourceLoader | None,
    world: World | None,
) -> dict[str, Any]:
    main = world is None or world.is_main
    console = console or Console(quiet=not main)
    transfer = config.transfer.mode != "none"
    spec = pretrained_spec(config.model.weights) if transfer else None
    config, resize = _weights_recipe(config, spec)
    check_tta(config.tta)
    if transfer and config.tta != "none":
        raise ConfigError(
            "--tta is for runs trained from scratch",
            where="--tta",
            fix="score a transfer run with cnnlab evaluate --tta",
        )
    run = _run_folder(config, runs_dir, resume, world)
    if main:
        save_yaml(config, run.config)
    if world is not None and main:
        run.log(f"distributed: {world.size} processes (gloo) share each batch of {config.train.batch_size}")
    cfg = config.train
    splits = load_splits(config.data, cfg.seed, loader)
    if spec is not None:  # the weights' channels, size and normalisation, not the data's
        splits = _for_weights(splits, spec.input_size, spec.mean, spec.std, config.transfer.fit)
    problems = splits.train.problems
    if problems and main:
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
        transform=train_transform(config.data.aug, splits, weights_normalisation=spec is not None),
    )
    evaluation = eval_transform(splits.mean, splits.std)
    val = _loader(splits.val, cfg.eval_batch_size, evaluation)

    torch.manual_seed(cfg.seed)
    if transfer:
        classes = head_classes(config.transfer.num_classes, splits.classes)
        model, _ = load_pretrained(config.model.name, config.model.weights, classes, channels)  # type: ignore[arg-type]
    else:
        model = build_model(config, splits)
    if main:
        _describe_run(run, model, splits, train.transform)
    meta = {
        "config": to_dict(config),
        "classes": splits.classes,
        "mean": list(splits.mean),
        "std": list(splits.std),
        "input_size": [channels, height, width],
        "model_kwargs": {} if transfer else _small_input(config.model.name, height),  # to rebuild the same net
        "resize": resize,  # predict: shorter side to this, centre crop (None: decode like data.fit says)
        "fit": config.data.fit,
    }
    callbacks = [ProgressBar(console=console), RunLogger(run), Checkpointer(run, cfg.monitor, extra=lambda: meta)]
    callbacks = callbacks if main else []  # other ranks write nothing
    sizes = f"{len(splits.train):,} train" + (f", {len(splits.val):,} validation" if splits.val else "")
    started = time.perf_counter()
    if transfer:
        if resume is not None:
            raise ConfigError(
                "--resume is not supported for transfer runs", where=str(resume), fix="start the run again"
            )
        console.print(f"Transfer ({config.transfer.mode}): [bold]{config.model.name}[/bold] on {sizes} images.")
        held_data = (splits.val.images, splits.val.targets) if splits.val is not None else None
        trainer, predict_images = fit_transfer(
            model,
            config.transfer,
            cfg,
            (splits.train.images, splits.train.targets),
            held_data,
            train.transform,  # type: ignore[arg-type]
            evaluation,
            callbacks,
        )
    else:
        trainer = (
            Trainer(model, cfg, callbacks=callbacks)
            if world is None
            else DistributedTrainer(model, cfg, world=world, sync_bn=config.distributed.sync_bn, callbacks=callbacks)
        )
        if resume is not None and run.last_checkpoint.is_file():
            trainer.load_state_dict(load_checkpoint(run.last_checkpoint))
            console.print(f"Resuming {run.path} at epoch {trainer.epoch + 1}, step {trainer.step_in_epoch}")
        console.print(f"Training [bold]{config.model.name}[/bold] on {sizes} images ({channels}x{height}x{width}).")
        console.print("Speed plan: " + "; ".join(trainer.plan.reasons))
        if world is None:
            trainer.fit(train, val)
        else:
            val_shares = None if val is None else ShardedBatches(val, world, lockstep=False)
            trainer.fit(ShardedBatches(train, world), val_shares)
        predict_images = None
    seconds = time.perf_counter() - started
    if not main:
        return {"run_dir": str(run.path)}
    if trainer.stop_reason == "interrupted":
        console.print(f"[yellow]Interrupted.[/yellow] Checkpoint saved. Resume with --resume {run.path}")
        return {"interrupted": True, "run_dir": str(run.path)}

    held = splits.test if splits.test is not None else splits.val
    results: dict[str, Any] = {"run_dir": str(run.path), "fit_seconds": round(seconds, 1), "epochs": trainer.epoch}
    results["machine"] = machine_info()
    if held is not None:
        name = "test" if splits.test is not None else "held-out"
        key, title = name.replace("-", "_"), f"{name.capitalize()} set"
        member = _TrainedModel(trainer.eval_model, splits.mean, splits.std)
        if config.tta == "none":
            logits = (
                predict_images(held.images)
                if predict_images is not None
                else trainer.predict(_loader(held, cfg.eval_batch_size, evaluation))
            )
            summary = _write_held_out(run, member, held, logits.float().softmax(dim=1), splits.classes, title)
        else:  # what `cnnlab evaluate RUN --tta MODE` writes: plain and with TTA, the TTA variant reported
            result = evaluate([member], held.images, held.targets, splits.classes, tta=config.tta)
            extra = {"data": title, "checkpoints": ["trained model"]}
            write_run_evaluation(run.path, [member], held.images, result, f"{title}, {config.tta} TTA", extra)
            summary = result.summary
            results[f"{key}_acc_plain"] = result.variants[0]["accuracy"]
            console.print(f"{name.capitalize()} accuracy without TTA: {result.variants[0]['accuracy']:.2%}")
        results[f"{key}_acc"] = summary["accuracy"]
        results[f"{key}_images"] = len(held)
        with_tta = "" if config.tta == "none" else f" with {config.tta} TTA"
        console.print(
            f"{name.capitalize()} accuracy{with_tta}: [bold green]{results[f'{key}_acc']:.2%}[/bold green] "
            f"({len(held):,} images; training took {seconds:.0f} s)"
        )
        console.print(f"Confusion matrix: {run.plots / Plot.CONFUSION}")
    atomic_write_text(run.path / "results.json", json.dumps(results, indent=2) + "\n")
    run.log("results: " + json.dumps(results))
    console.print(f"Report: {write_report(run.path)}")
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


def _run_folder(config: RunConfig, runs_dir: Path, resume: Path | None, world: World | None) -> RunDir:
    """Open (``resume``) or create the run folder; under torchrun only rank 0 touches it and tells the others."""
    if world is not None and not world.is_main:
        return RunDir(Path(broadcast_from_main("")))
    name = config.name or config.model.name
    run = RunDir.open(resume) if resume is not None else RunDir.create(runs_dir, "classify", name)
    if world is not None:
        broadcast_from_main(str(run.path))
    return run


def _first(sets: dict[str, Dataset], *names: str) -> Dataset | None:
    return next((sets[n] for n in names if n in sets), None)


def _loader(data: Dataset | None, batch_size: int, transform: Compose) -> TensorLoader | None:
    if data is None:
        return None
    return TensorLoader(data.images, data.targets, batch_size, transform=transform)


def _small_input(model_name: str, height: int) -> dict[str, bool]:
    """``small_input=True`` for 28x28/32x32-sized images where the builder has that stem option."""
    accepts = "small_input" in inspect.signature(model_entry(model_name).builder).parameters
    return {"small_input": True} if accepts and height <= SMALL_INPUT_MAX else {}


def _weights_recipe(config: RunConfig, spec: WeightSpec | None) -> tuple[RunConfig, int | None]:
    """Transfer without ``--img-size``: images are read the way the weights were trained to see them
    (shorter side to ``spec.resize``, centre crop to the input size). Written into the run's config so
    ``evaluate`` reads the data the same way; also returns that ``resize`` (``None`` if not applied)."""
    if spec is None or config.data.img_size is not None:
        return config, None
    resize = spec.resize or spec.input_size[-1]
    data, transfer = replace(config.data, img_size=resize, fit="crop"), replace(config.transfer, fit="crop")
    return replace(config, data=to_dict(data), transfer=to_dict(transfer)), resize


def _for_weights(
    splits: Splits, size: tuple[int, int, int], mean: tuple[float, ...], std: tuple[float, ...], fit: str
) -> Splits:
    """Every split at the weights' input size and channels, with the weights' normalisation."""

    def adapt(data: Dataset | None) -> Dataset | None:
        return adapt_dataset(data, size, fit) if data is not None else None  # type: ignore[arg-type]

    train = adapt_dataset(splits.train, size, fit)  # type: ignore[arg-type]
    return Splits(train, adapt(splits.val), adapt(splits.test), splits.classes, mean, std)


def _describe_run(run: RunDir, model: torch.nn.Module, splits: Splits, transform: Compose) -> None:
    """Sample training images, the same after augmentation, and the model's layers, for the report."""
    data = splits.train
    per_class = max(1, 16 // len(data.classes))
    index = torch.cat([(data.targets == c).nonzero().flatten()[:per_class] for c in range(len(data.classes))])[:16]
    images = data.images[index]  # (n, C, H, W) uint8
    plain = Compose([t for t in transform.transforms if not isinstance(t, Normalize)])  # what the model sees, in 0..1
    augmented = plain(images, torch.Generator().manual_seed(0))
    if augmented.is_floating_point():
        augmented = (augmented * 255).round().clamp(0, 255).to(torch.uint8)
    captions = [data.classes[int(t)] for t in data.targets[index]]
    plot_image_grid(
        list(images.permute(0, 2, 3, 1).numpy()), captions, run.plots / Plot.SAMPLES, title="Training images"
    )
    plot_image_grid(
        list(augmented.permute(0, 2, 3, 1).numpy()), captions, run.plots / Plot.AUGMENTED, title="After augmentation"
    )
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    text = f"{type(model).__name__}: {params:,} parameters ({trainable:,} trainable)\n\n{model}\n"
    atomic_write_text(run.path / MODEL_SUMMARY_FILE, text)


def _write_held_out(
    run: RunDir, member: Member, held: Dataset, probs: torch.Tensor, classes: list[str], title: str
) -> dict:
    """The held-out evaluation of ``cnnlab evaluate`` (metrics, confusion, calibration, worst mistakes
    with Grad-CAM) written into the run folder for the report; returns the summary."""
    summary = classification_summary(probs, held.targets, classes)
    mistakes = worst_mistake_cams(member, held.images, summary) if summary["worst"] else None
    write_evaluation(run.path, summary, title, mistakes, {"data": title, "checkpoints": ["trained model"]})
    return summary


@dataclass(frozen=True)
class _TrainedModel:
    """A just-trained model as an evaluation member (model + the normalisation of its inputs)."""

    model: torch.nn.Module
    mean: tuple[float, ...]
    std: tuple[float, ...]


def _weights(model: ModelConfig) -> dict[str, Any]:
    if model.weights is None:
        return {}
    if not Path(model.weights).is_file():
        raise ConfigError("weights file not found", where=model.weights, fix="pass the path of a .pth/.pt file")
    return {"weights": model.weights}
