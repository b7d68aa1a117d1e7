"""An embedding run from settings to run folder: a folder of people -> an embedder trained with a mined
triplet loss -> verification and identification scores, a calibrated threshold stored with the model.

``cnnlab train --task embed --data PEOPLE`` (``PEOPLE/<person>/<image>``) calls :func:`run_embedding`. The
split is by person for verification (``data.val_fraction`` of the people are never trained on: the ROC,
EER and threshold come from their pairs) and by image for identification (``embed.probe_fraction`` of each
training person's images are held out and identified against the rest). What the user does not set is
chosen and said in the log: the model (dlib's pretrained face embedder, fine-tuned, when its weights are found
locally; else resnet20 from scratch), the input size, the epochs, the learning rate, the augmentation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import torch
from rich.console import Console
from rich.markup import escape

from cnnlab.core.config import from_dict, replace, save_yaml, to_dict
from cnnlab.core.errors import ConfigError, DataError, WeightsError, with_article
from cnnlab.core.rundir import RunDir, atomic_write_text, load_checkpoint, save_checkpoint
from cnnlab.data.augment import ColorJitter, Compose, HorizontalFlip, Normalize, RandomAffine, Rescale
from cnnlab.data.datasets import Dataset
from cnnlab.data.image_sizes import choose_image_size, header_sizes
from cnnlab.data.images import Fit
from cnnlab.data.loader import TensorLoader
from cnnlab.data.presets import PRESETS
from cnnlab.models import create_model, input_options, model_entry
from cnnlab.models.embed import dlib_resnet
from cnnlab.models.embed.head import EmbeddingNet, UnitEmbedding
from cnnlab.models.weights import face_weight_folders
from cnnlab.report.html import write_report
from cnnlab.tasks.base import resume_from, timed_fit
from cnnlab.tasks.config import channel_stats, eval_transform
from cnnlab.tasks.embed.config import DEFAULT_SIDE, FINE_TUNE_LR, SCRATCH_LR, EmbedRunConfig
from cnnlab.tasks.embed.embedder import Embedder
from cnnlab.tasks.embed.evaluate import write_embedding_evaluation
from cnnlab.tasks.embed.face_folder import load_people_folder
from cnnlab.tasks.embed.people import PeopleSplit, split_people
from cnnlab.tasks.embed.sampler import PeopleBatches, trainable_people
from cnnlab.tasks.embed.trainer import EmbeddingTrainer
from cnnlab.train.callbacks import run_callbacks

PRESENTATIONS = 6000
"""Image presentations a default run from scratch aims at (ORL's 150 training images: 40 epochs)."""
FINE_TUNE_PRESENTATIONS = 3000
"""Image presentations when fine-tuning a pretrained embedder (ORL: 20 epochs, about a minute on 2 cores)."""
SCRATCH_BACKBONE = "resnet20"
"""``model: auto`` without the pretrained embedder's weights: He et al.'s CIFAR ResNet-20, trained from scratch."""


def default_epochs(train_images: int, presentations: int = PRESENTATIONS) -> int:
    """About ``presentations`` images seen, 10..60 epochs.

    >>> default_epochs(150), default_epochs(20), default_epochs(10_000), default_epochs(150, FINE_TUNE_PRESENTATIONS)
    (40, 60, 10, 20)
    """
    return int(min(60, max(10, round(presentations / max(train_images, 1)))))


def is_pretrained_embedder(name: str) -> bool:
    """Whether ``name`` is a zoo embedder with its own pretrained weights (fine-tuned, not given a head).

    >>> is_pretrained_embedder("dlib_resnet29"), is_pretrained_embedder("resnet20")
    (True, False)
    """
    return model_entry(name).task == "embed"


def choose_model(config: EmbedRunConfig) -> tuple[EmbedRunConfig, list[str]]:
    """``model: auto`` made concrete, with the learning rate that goes with it, and the log lines saying why.

    ``auto`` is dlib's pretrained ResNet-29 face embedder, fine-tuned, when its weights are found locally
    (:func:`~cnnlab.models.weights.face_weight_folders`; on five draws of ORL's 10 unseen people a mean EER of
    4.4% against 8.9% for resnet20 trained from scratch, docs/faces.md), else :data:`SCRATCH_BACKBONE`. A pretrained
    embedder fine-tunes at :data:`~cnnlab.tasks.embed.config.FINE_TUNE_LR` unless ``train.lr`` was changed.

    >>> from cnnlab.tasks.config import ModelConfig
    >>> config, lines = choose_model(EmbedRunConfig(model=ModelConfig(name="resnet20")))
    >>> config.model.name, config.train.lr, lines
    ('resnet20', 0.003, ['model resnet20 (--model)'])
    """
    name, lines = config.model.name, []
    if name == "auto":
        try:
            found = str(dlib_resnet.find_weights())
            name = "dlib_resnet29"
            lines.append(f"model dlib_resnet29: dlib's pretrained face embedder ({found}), fine-tuned")
        except WeightsError:
            name = SCRATCH_BACKBONE
            lines.append(
                f"model {name} from scratch: dlib's face embedder ({dlib_resnet.FILE_NAME}) was not found in "
                f"{', '.join(str(f) for f in face_weight_folders())}; with it the default fine-tunes dlib_resnet29"
            )
    else:
        lines.append(f"model {name} (--model)")
    config = replace(config, model=replace(config.model, name=name))
    if not is_pretrained_embedder(name):
        return config, lines
    if config.embed.dim != dlib_resnet.EMBEDDING_SIZE:
        raise ConfigError(
            f"{name} embeds in {dlib_resnet.EMBEDDING_SIZE} dimensions. Received: embed.dim={config.embed.dim}",
            where="--embedding-dim",
            fix=f"drop --embedding-dim, or train a zoo backbone (--model {SCRATCH_BACKBONE})",
        )
    if config.train.lr == SCRATCH_LR:
        config = replace(config, train=replace(config.train, lr=FINE_TUNE_LR))
        lines.append(f"lr {FINE_TUNE_LR:g}: fine-tuning a pretrained embedder (--lr sets it)")
    return config, lines


class ChipInput(NamedTuple):
    """A pretrained embedder's input: the side, the normalisation of 0..1 pixels, how pictures are fitted, why."""

    side: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    fit: Fit
    why: str


def pretrained_input(name: str, given: int | None) -> ChipInput:
    """dlib's chips: RGB, the picture padded to a square with black, 150 x 150, ``pixel - MEAN_RGB`` over 255.

    >>> chip = pretrained_input("dlib_resnet29", None)
    >>> chip.side, chip.fit, chip.std
    (150, 'pad', (1.0, 1.0, 1.0))
    """
    side = given or dlib_resnet.INPUT_SIZE
    mean = tuple(v / 255 for v in dlib_resnet.MEAN_RGB)
    why = f"input {side}x{side} RGB, padded to a square with black: {name}'s face chips" + (
        " (--img-size)" if given else ""
    )
    return ChipInput(side, mean, (1.0, 1.0, 1.0), "pad", why)


def input_side(source: Path, given: int | None) -> tuple[int, str]:
    """The square input side and why: ``given``, else the images' median shorter side (read from up to 200
    file headers) capped at :data:`DEFAULT_SIDE`, a multiple of 8."""
    if given:
        return given, f"input {given}x{given} (--img-size)"
    sides = [min(size) for size in header_sizes(source, most=200)] or [DEFAULT_SIDE]
    median = sorted(sides)[len(sides) // 2]
    side = choose_image_size(sides, largest=DEFAULT_SIDE)
    return side, f"input {side}x{side}: the faces' median shorter side is {median} px, capped at {DEFAULT_SIDE}"


def load_people(config: EmbedRunConfig | dict[str, Any]) -> tuple[Dataset, PeopleSplit, list[str]]:
    """The people folder decoded at the run's input size, its split, and the log lines saying what was chosen."""
    if isinstance(config, dict):
        config = from_dict(EmbedRunConfig, config)
    if config.model.name == "auto":  # a run has chosen already; a config of one's own may leave it to us
        config = choose_model(config)[0]
    source = Path(config.data.source) if config.data.source else None
    if source is None or not source.is_dir():
        raise ConfigError(
            "an embedder trains on a folder of people" + (f": {source} is not a folder" if source else ""),
            where="--data",
            fix="cnnlab train --task embed --data PEOPLE, where PEOPLE/<person>/ holds that person's images",
        )
    if is_pretrained_embedder(config.model.name):
        chip = pretrained_input(config.model.name, config.data.img_size)
        side, channels, fit, why = chip.side, 3, chip.fit, chip.why
    else:
        side, why = input_side(source, config.data.img_size)
        channels, fit = None, config.data.fit
    data, faces = load_people_folder(source, side, channels, fit, config.embed.faces, config.data.strict)
    why += f"; {faces}" if faces else ""
    split = split_people(data.targets, config.data.val_fraction, config.embed.probe_fraction, config.train.seed)
    return data, split, [why, split.describe(data.classes)]


def train_transform(config: EmbedRunConfig, mean: tuple[float, ...], std: tuple[float, ...]) -> Compose:
    """``aug: auto``: mirror, rotate up to 10 degrees, zoom 0.9..1.1, shift 5%, brightness/contrast 0.2."""
    if config.data.aug != "auto":
        steps = PRESETS.get(config.data.aug)(None).transforms
    else:
        steps = [
            HorizontalFlip(),
            RandomAffine(degrees=10, zoom=(0.9, 1.1), translate=(0.05, 0.05)),
            ColorJitter(brightness=0.2, contrast=0.2),
        ]
    return Compose([*steps, Rescale(), Normalize(mean, std)])


def check_backbone(name: str) -> None:
    """Refuse a model that can neither be an embedding backbone nor be fine-tuned as an embedder (before any data
    is read or folder made)."""
    entry = model_entry(name)
    if entry.task not in ("classify", "embed"):
        raise ConfigError(
            f"'{name}' is {with_article(entry.task)} model",
            where="--model",
            fix="use a classifier backbone or a pretrained embedder: cnnlab models",
        )


def build_model(config: EmbedRunConfig, input_size: tuple[int, int, int]) -> tuple[EmbeddingNet, dict[str, Any]]:
    """The embedding net on the configured zoo backbone (or the pretrained embedder with its weights, its output
    L2-normalised), and the options that rebuild it from a checkpoint."""
    name = config.model.name
    check_backbone(name)
    if is_pretrained_embedder(name):
        return UnitEmbedding(create_model(name, pretrained=config.model.weights or "auto")), {}
    options: dict[str, Any] = dict(input_options(name, input_size))
    backbone = create_model(name, num_classes=2, in_chans=input_size[0], weights=config.model.weights, **options)
    net = EmbeddingNet(backbone, dim=config.embed.dim, dropout=config.embed.dropout)
    return net, options | {"dim": config.embed.dim, "dropout": config.embed.dropout}


def run_embedding(
    config: EmbedRunConfig,
    runs_dir: Path = Path("runs"),
    resume: Path | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Train (or resume) an embedder; returns the held-out scores (also in ``results.json``)."""
    console = console or Console()
    if config.model.name != "auto":
        check_backbone(config.model.name)
    config, model_lines = choose_model(config)
    if is_pretrained_embedder(config.model.name) and config.model.weights is None:
        dlib_resnet.find_weights()  # fine-tuning random weights is not what was asked: say where it looked
    data, split, chosen = load_people(config)  # bad data stops here, before a run folder exists
    chosen = model_lines + chosen
    input_options(config.model.name, tuple(data.images.shape[1:]))  # a size the backbone cannot take stops here
    usable, lone = trainable_people(data.targets[split.train])
    if int(usable.sum()) < 4 or len(torch.unique(data.targets[split.train][usable])) < 2:
        raise DataError(
            "too few training people with 2+ images for triplet training",
            where=config.data.source,
            fix="add people (at least 2 training people with 2 images each besides the held-out ones), "
            "or hold out fewer with --val-fraction",
        )
    run = (
        RunDir.open(resume)
        if resume is not None
        else RunDir.create(runs_dir, "embed", config.name or config.model.name)
    )
    with run.lock():
        return _train(config, run, resume is not None, data, split, chosen, lone, console)


def _train(
    config: EmbedRunConfig,
    run: RunDir,
    resume: bool,
    data: Dataset,
    split: PeopleSplit,
    chosen: list[str],
    lone: list[int],
    console: Console,
) -> dict[str, Any]:
    cfg, emb = config.train, config.embed
    checkpoint = run.resume_checkpoint() if resume else None
    train_rows = split.train[trainable_people(data.targets[split.train])[0]]
    pretrained = is_pretrained_embedder(config.model.name)
    epochs = cfg.epochs or default_epochs(len(train_rows), FINE_TUNE_PRESENTATIONS if pretrained else PRESENTATIONS)
    config = replace(config, train=replace(cfg, epochs=epochs))
    save_yaml(config, run.config)
    for problem in data.problems:
        run.log(f"{problem.path}: {problem.message}")
    for person in lone:
        run.log(f"warning: {data.classes[person]} has one training image: left out of triplet mining")
    images = data.images[train_rows]
    input_size = (images.shape[1], images.shape[2], images.shape[3])
    chip = pretrained_input(config.model.name, None) if pretrained else None
    mean, std = (chip.mean, chip.std) if chip else channel_stats(images)
    torch.manual_seed(cfg.seed)
    model, options = build_model(config, input_size)
    chosen += [
        f"{epochs} epochs{' (chosen from the number of training images)' if not cfg.epochs else ''}",
        f"{emb.mining} mining" + ("" if emb.mining == "batch_hard_soft" else f", margin {emb.margin}")
        + f", batches of {emb.people_per_batch} people x "
        f"{emb.images_per_person} images, {emb.dim}-D L2-normalised embedding "
        + ("of " if pretrained else "on ") + config.model.name,
        "augmentation: " + ("mirror, rotate 10 deg, zoom 0.9-1.1, shift 5%, brightness/contrast 0.2"
                            if config.data.aug == "auto" else config.data.aug),
    ]  # fmt: skip
    for line in chosen:
        run.log(line)
    meta = {
        "config": to_dict(config),
        "task": "embed",
        "classes": data.classes,
        "mean": list(mean),
        "std": list(std),
        "input_size": list(input_size),
        "model_name": config.model.name,
        "model_options": options,
        "fit": chip.fit if chip else config.data.fit,
        "held_people": [data.classes[p] for p in split.held_people],
        "tta": "flip" if config.data.aug == "auto" else "none",  # trained on mirrored faces: embed both views
    }
    loader = PeopleBatches(
        images,
        data.targets[train_rows],
        emb.people_per_batch,
        emb.images_per_person,
        cfg.seed,
        train_transform(config, mean, std),
    )
    val = None
    if len(split.held_people) >= 2:
        held = data.images[split.held]
        val = TensorLoader(held, data.targets[split.held], cfg.eval_batch_size, transform=eval_transform(mean, std))
    trainer = EmbeddingTrainer(
        model,
        cfg,
        callbacks=run_callbacks(run, console, cfg.monitor, lambda: meta),
        mining=emb.mining,
        margin=emb.margin,
    )
    resume_from(trainer, checkpoint, run, console)
    console.print(
        f"Training an embedder on {len(train_rows)} images of {len(torch.unique(data.targets[train_rows]))} people "
        f"from {config.data.source}."
    )
    for line in chosen:
        console.print(f"  {escape(line)}")
    results: dict[str, Any] = timed_fit(trainer, loader, val, epochs, run, console)
    if results.get("interrupted"):
        return results
    embedder = Embedder.from_meta(trainer.eval_model.eval().cpu(), meta)  # it takes CPU inputs
    title = f"{len(split.held_people)} held-out people of {config.data.source}"
    scored = write_embedding_evaluation(run.path, embedder, data, title, split, emb.threshold_rule, console)
    if val is not None:
        store_threshold(run, scored.threshold)
    else:
        run.log("no held-out people: no verification score; verify uses the course's threshold 0.7 (--threshold)")
    results |= {f"test_{k}": v for k, v in scored.summary.items()}
    atomic_write_text(run.path / "results.json", json.dumps(results, indent=2) + "\n")
    run.log("results: " + json.dumps(results))
    console.print(f"Report: {write_report(run.path)}")
    console.print(f"Run folder: {run.path}")
    return results


def store_threshold(run: RunDir, threshold: float) -> None:
    """Write the calibrated verification threshold into the run's checkpoints (``cnnlab verify`` reads it)."""
    for path in (run.best_checkpoint, run.last_checkpoint):
        if path.is_file():
            state = load_checkpoint(path)
            state["threshold"] = threshold
            save_checkpoint(path, state)
    run.log(f"verification threshold {threshold:.4f} stored in the checkpoints")
