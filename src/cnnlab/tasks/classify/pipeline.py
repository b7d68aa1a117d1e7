"""A classification run from settings to run folder: data -> model -> Trainer -> results.

``cnnlab train`` (and ``cnnlab demo``) call :func:`run_classification`. The resolved
:class:`~cnnlab.tasks.classify.config.RunConfig` is written to ``config.yaml``; every checkpoint also
carries what a later ``predict``/``evaluate`` needs (class names, normalisation, input size), so it stands alone.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.markup import escape

from cnnlab.core.config import replace, save_yaml, to_dict
from cnnlab.core.errors import ConfigError
from cnnlab.core.rundir import RunDir, atomic_write_text, load_checkpoint
from cnnlab.data.augment import Compose, Normalize
from cnnlab.data.datasets import Dataset
from cnnlab.data.loader import TensorLoader
from cnnlab.models import WeightSpec, create_model, input_options
from cnnlab.report.artefacts import MODEL_SUMMARY_FILE, Plot, machine_info, write_evaluation
from cnnlab.report.html import write_report
from cnnlab.report.plots import plot_image_grid
from cnnlab.tasks.classify.config import RunConfig
from cnnlab.tasks.classify.data import SourceLoader, Splits, _for_weights, _loader, load_splits, train_transform
from cnnlab.tasks.classify.defaults import choose_defaults, image_size_from_files
from cnnlab.tasks.classify.evaluate import Member, check_tta, evaluate, worst_mistake_cams, write_run_evaluation
from cnnlab.tasks.config import ModelConfig, eval_transform
from cnnlab.train.callbacks import run_callbacks
from cnnlab.train.distributed import (
    DistributedTrainer,
    ShardedBatches,
    World,
    broadcast_from_main,
    process_group,
    world_from_env,
)
from cnnlab.train.lr_find import LRFinderResult, find_lr
from cnnlab.train.metrics import classification_summary
from cnnlab.train.trainer import Trainer
from cnnlab.transfer import (
    fit_transfer,
    head_classes,
    load_pretrained,
    pretrained_spec,
)


def build_model(config: RunConfig, splits: Splits) -> torch.nn.Module:
    """The configured zoo model for these classes, channels and image size (:func:`cnnlab.models.input_options`:
    small-input stems where they fit, a clear error for images too small for the net)."""
    _, channels, height, width = splits.train.images.shape
    return create_model(
        config.model.name,
        num_classes=len(splits.classes),
        in_chans=channels,
        **input_options(config.model.name, (channels, height, width)),
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
        with contextlib.ExitStack() as held:
            return _run_classification(config, runs_dir, resume, console, loader, None, held)
    if config.transfer.mode != "none":
        raise ConfigError("transfer runs train in one process", where="--nproc", fix="drop --nproc (or --transfer)")
    with process_group(world, config.distributed.timeout_s, config.train.device), contextlib.ExitStack() as held:
        return _run_classification(config, runs_dir, resume, console, loader, world, held)


def _run_classification(
    config: RunConfig,
    runs_dir: Path,
    resume: Path | None,
    console: Console | None,
    loader: SourceLoader | None,
    world: World | None,
    held: contextlib.ExitStack,
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
    if transfer and config.train.device != "cpu":  # cached features and their extraction are CPU tensors
        if config.train.device != "auto":
            raise ConfigError("transfer runs train on the CPU", where="--device", fix="pass --device cpu")
        config = replace(config, train=replace(config.train, device="cpu"))
    config, sized = image_size_from_files(config) if loader is None else (config, [])
    splits = load_splits(config.data, config.train.seed, loader)  # bad data stops here, before a run folder
    if spec is not None:  # the weights' channels, size and normalisation, not the data's
        splits = _for_weights(splits, spec.input_size, spec.mean, spec.std, config.transfer.fit)
    config, chosen = choose_defaults(config, len(splits.train), splits.train.images.shape[1], transfer)
    chosen = sized + chosen
    cfg = config.train
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
    run = _run_folder(config, runs_dir, resume, world)  # the run can start: now it gets a folder
    if main:
        held.enter_context(run.lock())  # a second `--resume` of this run is refused while it trains
        if resume is not None:
            run.resume_checkpoint()  # a missing last.pt is an error before config.yaml is touched, not a restart
        save_yaml(config, run.config)
        for note in chosen:
            console.print(f"Chosen from the data: {escape(note)}")
            run.log(f"chosen from the data: {note}")
        if world is not None:
            backend = torch.distributed.get_backend()
            run.log(f"distributed: {world.size} processes ({backend}) share each batch of {cfg.batch_size}")
        if splits.train.problems:
            console.print(
                f"[yellow]Skipped {len(splits.train.problems)} unreadable file(s)[/yellow]; see {run.log_file}"
            )
            for problem in splits.train.problems:
                run.log(f"skipped {problem.path}: {problem.message}")
        _describe_run(run, model, splits, train.transform)
    meta = {
        "config": to_dict(config),
        "classes": splits.classes,
        "mean": list(splits.mean),
        "std": list(splits.std),
        "input_size": [channels, height, width],
        "model_kwargs": {} if transfer else input_options(config.model.name, (channels, height, width)),  # rebuild
        "resize": resize,  # predict: shorter side to this, centre crop (None: decode like data.fit says)
        "fit": config.data.fit,
    }
    callbacks = run_callbacks(run, console, cfg.monitor, lambda: meta)
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
        if resume is not None:
            trainer.load_state_dict(load_checkpoint(run.resume_checkpoint()))
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
            member.model.cpu()  # the held-out pictures (Grad-CAM) take CPU inputs; a no-op on the CPU
            summary = _write_held_out(run, member, held, logits.float().softmax(dim=1), splits.classes, title)
        else:  # what `cnnlab evaluate RUN --tta MODE` writes: plain and with TTA, the TTA variant reported
            member.model.cpu()  # as above
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


def _run_folder(config: RunConfig, runs_dir: Path, resume: Path | None, world: World | None) -> RunDir:
    """Open (``resume``) or create the run folder; under torchrun only rank 0 touches it and tells the others."""
    if world is not None and not world.is_main:
        return RunDir(Path(broadcast_from_main("")))
    name = config.name or config.model.name
    run = RunDir.open(resume) if resume is not None else RunDir.create(runs_dir, "classify", name)
    if world is not None:
        broadcast_from_main(str(run.path))
    return run


def _weights_recipe(config: RunConfig, spec: WeightSpec | None) -> tuple[RunConfig, int | None]:
    """Transfer without ``--img-size``: images are read the way the weights were trained to see them
    (shorter side to ``spec.resize``, centre crop to the input size). Written into the run's config so
    ``evaluate`` reads the data the same way; also returns that ``resize`` (``None`` if not applied)."""
    if spec is None or config.data.img_size is not None:
        return config, None
    resize = spec.resize or spec.input_size[-1]
    data, transfer = replace(config.data, img_size=resize, fit="crop"), replace(config.transfer, fit="crop")
    return replace(config, data=to_dict(data), transfer=to_dict(transfer)), resize


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


def lr_range_test(config: RunConfig, steps: int = 100) -> LRFinderResult:
    """``cnnlab lr-find``: one training step per learning rate from 1e-6 to 1 on the configured data and model."""
    splits = load_splits(config.data, config.train.seed)
    config, _ = choose_defaults(config, len(splits.train), splits.train.images.shape[1])  # --aug/batch left open
    cfg = config.train
    trainer = Trainer(build_model(config, splits), cfg)
    transform = train_transform(config.data.aug, splits)
    loader = TensorLoader(splits.train.images, splits.train.targets, cfg.batch_size, True, cfg.seed, transform)
    return find_lr(trainer, loader, steps=steps)
