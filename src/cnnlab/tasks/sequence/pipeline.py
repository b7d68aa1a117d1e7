"""A sequence run from settings to run folder: series, recordings, clips or volumes -> a Conv1D or Conv3D net
-> a test score in ``results.json``, the confusion matrix and the class activation over time in the report.

``cnnlab train --data ECG200 --data-dir UCR`` (or a folder of WAVs, clips or volumes; ``--task sequence`` for
``.npz``/``.csv`` arrays) calls :func:`run_sequence`. What the user does not set is chosen from the data and said
in the log: the model, epochs, batch size, normalisation, augmentation and the test split.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.markup import escape

from cnnlab.core.config import replace, save_yaml, to_dict
from cnnlab.core.errors import ConfigError
from cnnlab.core.rundir import RunDir, atomic_write_text
from cnnlab.data.loader import TensorLoader
from cnnlab.layers.summary import summary as model_summary
from cnnlab.models import create_model, input_options
from cnnlab.report.artefacts import MODEL_SUMMARY_FILE, Plot
from cnnlab.report.html import write_report
from cnnlab.tasks.base import resume_from, timed_fit
from cnnlab.tasks.sequence import defaults
from cnnlab.tasks.sequence.config import SequenceRunConfig
from cnnlab.tasks.sequence.evaluate import write_sequence_evaluation
from cnnlab.tasks.sequence.figures import plot_signal_samples
from cnnlab.tasks.sequence.predictor import SequenceModel
from cnnlab.tasks.sequence.sources import Splits, load_splits, source_kind
from cnnlab.train.callbacks import run_callbacks
from cnnlab.train.ensemble import EnsembleTrainer, MemberEnsemble
from cnnlab.train.trainer import Trainer

PRECISE_BN_WHY = (
    "BatchNorm statistics: those of the training set under the final weights, not the running averages of the "
    "last batches (precise BN; train.precise_bn in --config)"
)


@dataclass(frozen=True)
class Plan:
    """What a run will do, resolved from the config and the data before any folder exists."""

    config: SequenceRunConfig  # with the chosen model, epochs and batch size written in
    kind: str  # series | audio | waveform | clip | volume
    model_options: dict[str, Any]
    normalise: str
    chosen: list[str]


def plan_run(config: SequenceRunConfig, splits: Splits) -> Plan:
    """Choose what the user left open and check the model takes the data (errors before any run folder)."""
    train = splits.train
    audio = train.meta.get("audio")
    kind = defaults.data_kind(train.kind, audio.get("representation") if isinstance(audio, dict) else None)
    name, options, model_why = defaults.choose_model(kind, config.model.name)
    defaults.check_model(name, train.rank)
    options |= input_options(name, tuple(int(n) for n in train.sample_shape))  # too short a series stops here
    batch, batch_why = defaults.choose_batch_size(kind, len(train), config.train.batch_size)
    epochs, epochs_why = defaults.choose_epochs(kind, len(train), batch, config.train.epochs)
    precision, precision_why = defaults.choose_precision(kind, config.train.precision)
    mode, norm_why = defaults.choose_normalise(kind, config.sequence.normalise)
    _, _, aug_why = defaults.augmentation(kind, config.data.aug, config.sequence.mixup, len(train.classes))
    resolved = replace(
        config,
        model=replace(config.model, name=name),
        train=replace(config.train, epochs=epochs, batch_size=batch, precision=precision),
    )
    lr_why = f"AdamW, one-cycle learning rate peaking at {config.train.lr:g} (--lr sets it)"
    chosen = [*splits.chosen, model_why, f"{batch_why}; {epochs_why}", lr_why, precision_why, norm_why, aug_why]
    if config.train.precise_bn:
        chosen.append(PRECISE_BN_WHY)
    return Plan(resolved, kind, options, mode, chosen)


def run_sequence(
    config: SequenceRunConfig,
    runs_dir: Path = Path("runs"),
    resume: Path | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Train (or resume) a sequence classifier; returns the test scores (also in ``results.json``). A folder of
    a scan with its tissue maps trains a 3D U-Net instead (:func:`run_tissue_segmentation`)."""
    console = console or Console()
    if source_kind(config.data.source, config.data.data_dir) == "tissue":
        return run_tissue_segmentation(config, runs_dir, resume, console)
    splits = load_splits(config)  # bad data stops here, before a run folder exists
    plan = plan_run(config, splits)
    name = config.name or plan.config.model.name
    run = RunDir.open(resume) if resume is not None else RunDir.create(runs_dir, "sequence", name)
    with run.lock():
        return _train(plan, run, resume is not None, splits, console)


def run_tissue_segmentation(
    config: SequenceRunConfig, runs_dir: Path, resume: Path | None, console: Console
) -> dict[str, Any]:
    """``cnnlab train --data mni152-volumes``: a 3D U-Net on patches of the training slabs of the T1 scan,
    Dice of grey and white matter on the held-out slab (:mod:`cnnlab.tasks.sequence.volume_segment`)."""
    from cnnlab.tasks.sequence.volume_segment import VolumeSegmentConfig, load_tissue_volume, train_volume_segmentation

    if resume is not None:
        raise ConfigError("volume-segmentation runs do not resume", where="--resume", fix="start the run again")
    t1, labels, info = load_tissue_volume(config.data.source)
    epochs = {"epochs": config.train.epochs} if config.train.epochs else {}
    settings = VolumeSegmentConfig(seed=config.train.seed, **epochs)
    console.print(
        f"Segmenting grey and white matter of {info['paths']['t1']} ({'x'.join(map(str, t1.shape))} voxels) with a "
        f"3D U-Net on {settings.patch}^3 patches; slices of axis {settings.axis} held out: {settings.held_fraction:.0%}"
    )
    return train_volume_segmentation(t1, labels, settings, runs_dir, console, name=config.name or "unet3d")


def _train(plan: Plan, run: RunDir, resume: bool, splits: Splits, console: Console) -> dict[str, Any]:
    config = plan.config
    cfg = config.train
    checkpoint = run.resume_checkpoint() if resume else None
    save_yaml(config, run.config)
    train = splits.train
    for problem in train.meta.get("skipped", []) or []:
        run.log(f"skipped {problem}")
    for line in plan.chosen:
        run.log(line)
    mean, std = defaults.channel_moments(train.x) if plan.normalise == "dataset" else (None, None)

    def prepare(x: torch.Tensor) -> torch.Tensor:
        return defaults.normalise(x, plan.normalise, mean, std)

    augment, mix, _ = defaults.augmentation(plan.kind, config.data.aug, config.sequence.mixup, len(train.classes))
    loader = TensorLoader(prepare(train.x), train.y, cfg.batch_size or 16, True, cfg.seed, augment, mix=mix)
    val = splits.val
    val_loader = TensorLoader(prepare(val.x), val.y, cfg.eval_batch_size) if val is not None else None
    torch.manual_seed(cfg.seed)
    channels = int(train.sample_shape[0])
    model = create_model(config.model.name, num_classes=len(train.classes), in_chans=channels, **plan.model_options)
    meta = {
        "config": to_dict(config),
        "task": "sequence",
        "kind": train.kind,
        "classes": train.classes,
        "input_size": list(train.sample_shape),
        "model_name": config.model.name,
        "model_options": plan.model_options,
        "normalise": {"mode": plan.normalise, "mean": mean, "std": std},
        "audio": train.meta.get("audio"),
    }
    trainer_type = EnsembleTrainer if isinstance(model, MemberEnsemble) else Trainer  # a loss per member
    trainer = trainer_type(
        model,
        cfg,
        callbacks=run_callbacks(run, console, cfg.monitor, lambda: meta),
    )
    resume_from(trainer, checkpoint, run, console)
    _write_overview(run, model, train, prepare, plan)
    console.print(
        f"Training [bold]{config.model.name}[/bold] on {len(train)} {train.kind} samples of shape "
        f"{tuple(train.sample_shape)}, {len(train.classes)} classes, from {config.data.source}."
    )
    for line in plan.chosen:
        console.print(f"  {escape(line)}")
    results: dict[str, Any] = timed_fit(trainer, loader, val_loader, cfg.epochs, run, console)
    if results.get("interrupted"):
        return results
    if splits.test is not None:
        scored = SequenceModel(trainer.eval_model.eval().cpu(), meta, str(run.path))  # it takes CPU inputs
        title = f"test split of {config.data.source}"
        summary = write_sequence_evaluation(run.path, scored, splits.test, title)
        results |= {"test_acc": summary["accuracy"], "test_samples": len(splits.test), "test_loss": summary["loss"]}
        console.print(
            f"Test accuracy [bold green]{summary['accuracy']:.2%}[/bold green] on {len(splits.test)} samples "
            f"(training took {results['fit_seconds']:.0f} s)"
        )
    atomic_write_text(run.path / "results.json", json.dumps(results, indent=2) + "\n")
    run.log("results: " + json.dumps(results))
    console.print(f"Report: {write_report(run.path)}")
    console.print(f"Run folder: {run.path}")
    return results


def _write_overview(run: RunDir, model: torch.nn.Module, train: Any, prepare: Any, plan: Plan) -> None:
    """The model summary (layers, shapes, MACs) and, for signals, a few training samples as the model sees them."""
    text = str(model_summary(model, tuple(int(n) for n in train.sample_shape)))
    atomic_write_text(run.path / MODEL_SUMMARY_FILE, text + "\n")
    if train.rank != 1:
        return
    index = torch.cat([(train.y == c).nonzero().flatten()[:2] for c in range(len(train.classes))])[:8]
    captions = [f"{train.names[int(i)]}: {train.classes[int(train.y[i])]}" for i in index]
    spectrogram = plan.kind == "audio"
    samples = prepare(train.x[index]).numpy()
    plot_signal_samples(samples, captions, run.plots / Plot.SAMPLES, "Training samples (normalised)", spectrogram)
