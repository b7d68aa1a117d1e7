"""A segmentation run from settings to run folder: image/mask pairs -> U-Net -> held-out IoU/Dice.

``cnnlab train --task segment --data IMAGES --masks MASKS`` calls :func:`run_segmentation`; checkpoints
carry the class names, normalisation and model options that ``cnnlab predict`` needs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from cnnlab.core.config import replace, save_yaml, to_dict
from cnnlab.core.errors import ConfigError, DataError
from cnnlab.core.rundir import RunDir, atomic_write_text
from cnnlab.data.augment import Compose, Normalize, RandomCrop
from cnnlab.data.datasets import Dataset, load_segmentation
from cnnlab.data.elastic import ElasticDeform
from cnnlab.data.image_sizes import size_for_folder
from cnnlab.data.loader import TensorLoader
from cnnlab.data.presets import PRESETS
from cnnlab.tasks.base import resume_from, timed_fit
from cnnlab.tasks.config import channel_stats, eval_transform
from cnnlab.tasks.segment.config import SegmentRunConfig, class_names, model_options
from cnnlab.tasks.segment.figures import write_overlay_grid
from cnnlab.tasks.segment.losses import LOSSES
from cnnlab.tasks.segment.metrics import class_key, confusion, per_image_scores, scores_from_confusion
from cnnlab.tasks.segment.model import build_model
from cnnlab.tasks.segment.trainer import SegmentationTrainer
from cnnlab.train.callbacks import run_callbacks


def train_transform(
    config: SegmentRunConfig, crop: int | None, mean: tuple[float, ...], std: tuple[float, ...]
) -> Compose:
    """Random ``crop`` x ``crop`` patch, the augmentation preset, optional elastic warp, then normalisation."""
    steps = [RandomCrop(crop)] if crop else []
    preset = "segmentation" if config.data.aug == "auto" else config.data.aug  # auto: flips, small affine warps
    steps += PRESETS.get(preset)(None).transforms
    if config.segment.elastic > 0:
        steps.append(ElasticDeform(sigma=config.segment.elastic))
    return Compose([*steps, Normalize(mean, std)])


def load_pairs(config: SegmentRunConfig) -> tuple[Dataset, Dataset | None]:
    """Image/mask pairs split into ``(train, held_out)`` (seeded; no held-out set when val_fraction is 0)."""
    if not config.data.source or not config.segment.masks:
        raise ConfigError(
            "segmentation needs an image folder and a mask folder",
            where="--data / --masks",
            fix="cnnlab train --task segment --data IMAGES_DIR --masks MASKS_DIR",
        )
    data = load_segmentation(
        config.data.source,
        config.segment.masks,
        size=config.data.img_size,
        num_classes=config.segment.num_classes,
        classes=class_names(config.segment),
        strict=config.data.strict,
    )
    if len(data) < 2:
        raise DataError(f"found {len(data)} usable image/mask pairs", where=config.data.source, fix="add more pairs")
    if config.data.val_fraction <= 0:
        return data, None
    return data.split(config.data.val_fraction, seed=config.train.seed)


def run_segmentation(
    config: SegmentRunConfig,
    runs_dir: Path = Path("runs"),
    resume: Path | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Train (or resume) a segmentation model; returns held-out scores (also in ``results.json``).

    The held-out images are scored with the final model (its EMA copy when weight EMA is on, in eval
    mode) through :func:`predict_tiled` (the path ``cnnlab predict`` takes), and drawn into
    ``plots/heldout.png`` (image | truth | prediction | errors).
    """
    console = console or Console()
    config, sized = size_from_images(config)
    train, held = load_pairs(config)  # bad data stops here, before a run folder exists
    crop = patch_size(config.segment.crop, *train.images.shape[-2:])
    run = RunDir.open(resume) if resume is not None else RunDir.create(runs_dir, "segment", name_of(config))
    for line in sized:
        console.print(line)
        run.log(line)
    with run.lock():  # a second `--resume` of this run is refused while it trains
        return _train(config, run, resume is not None, train, held, crop, console)


LARGEST_SIDE = 512
"""The largest side :func:`size_from_images` chooses (patches, not whole images, are what trains)."""


def size_from_images(config: SegmentRunConfig) -> tuple[SegmentRunConfig, list[str]]:
    """``config`` with ``data.img_size`` chosen when the images differ in size and none was given (their median
    shorter side, a multiple of 8 within 16 .. :data:`LARGEST_SIDE`; images and masks are resized to it), and
    the log line that says so."""
    folder = Path(config.data.source or "")
    if config.data.img_size is not None or not config.data.source or not folder.is_dir():
        return config, []
    chosen = size_for_folder(folder, largest=LARGEST_SIDE)
    if chosen is None:
        return config, []
    side, note = chosen
    return replace(config, data=replace(config.data, img_size=side)), [note]


def name_of(config: SegmentRunConfig) -> str:
    """The run folder's name: ``--name``, else the model's."""
    return config.name or config.model.name


def _train(
    config: SegmentRunConfig,
    run: RunDir,
    resume: bool,
    train: Dataset,
    held: Dataset | None,
    crop: int | None,
    console: Console,
) -> dict[str, Any]:
    cfg, seg = config.train, config.segment
    names = class_names(seg)
    _, channels, height, width = train.images.shape
    checkpoint = run.resume_checkpoint() if resume else None  # a missing last.pt is an error, not a restart
    save_yaml(config, run.config)
    if seg.crop is None:
        run.log(f"patch size {crop or 'whole images'}: chosen from the {height}x{width} images (--patch-size sets it)")
    for problem in train.problems:
        run.log(f"skipped {problem.path}: {problem.message}")
    if train.problems:
        console.print(f"[yellow]Skipped {len(train.problems)} file(s)[/yellow]; see {run.log_file}")
    mean, std = channel_stats(train.images)
    augment = train_transform(config, crop, mean, std)
    loader = TensorLoader(
        train.images, train.targets, cfg.batch_size, True, cfg.seed, augment, repeats=seg.repeats, target_kind="mask"
    )
    evaluation = eval_transform(mean, std)
    val = _masks_loader(held, cfg.eval_batch_size, evaluation) if held else None

    torch.manual_seed(cfg.seed)
    options = model_options(seg, config.model.name)
    pretrained = {"weights": config.model.weights} if config.model.weights else {}  # a whole segmentation model
    if seg.encoder_weights:
        pretrained["encoder_weights"] = seg.encoder_weights
    model = build_model(config.model.name, seg.num_classes, channels, options, **pretrained)
    unpadded = seg.padding == "valid"
    meta = {
        "config": to_dict(config),
        "task": "segment",
        "classes": names,
        "mean": list(mean),
        "std": list(std),
        "input_size": [channels, height, width],
        "model_name": config.model.name,
        "model_options": options,
    }
    trainer = SegmentationTrainer(
        model,
        cfg,
        loss_fn=LOSSES.get(seg.loss),
        callbacks=run_callbacks(run, console, cfg.monitor, lambda: meta),
        class_names=names,
        tile=seg.tile if unpadded else None,
        margin=seg.margin,
    )
    resume_from(trainer, checkpoint, run, console)
    sizes = f"{len(train)} train" + (f", {len(held)} held-out" if held else "")
    console.print(
        f"Training [bold]{config.model.name}[/bold] ({seg.loss} loss) on {sizes} image/mask pairs "
        f"({channels}x{height}x{width}), {f'{crop}-pixel patches' if crop else 'whole images'}"
        + (" (patch size chosen from the image size)." if seg.crop is None else ".")
    )
    results: dict[str, Any] = timed_fit(trainer, loader, val, None, run, console)
    if results.get("interrupted"):
        return results
    if held is not None:
        trainer.tile, trainer.margin = seg.tile, seg.margin  # the path `cnnlab predict` takes: overlap-tiles
        preds = trainer.predict(_masks_loader(held, cfg.eval_batch_size, evaluation)).argmax(1)  # (N, H, W), EMA
        scores = scores_from_confusion(confusion(preds, held.targets, seg.num_classes), names)
        stems = [Path(p).name for p in held.paths]
        results |= {f"held_out_{k}": v for k, v in scores.items()}
        results["held_out_images"] = stems
        results["per_image"] = per_image_scores(held.targets, preds, names, stems)
        grid = write_overlay_grid(held.images, held.targets, preds, run.plots / "heldout.png", names, stems)
        per_class = "  ".join(f"{n} {scores[f'dice_{class_key(n)}']:.3f}" for n in names)
        console.print(
            f"Held-out pixel accuracy [bold green]{scores['acc']:.2%}[/bold green], mean IoU {scores['iou']:.3f}, "
            f"Dice per class: {per_class} ({len(held)} images; training took {results['fit_seconds']:.0f} s)"
        )
        console.print(f"Image | truth | prediction | errors: {grid}")
    atomic_write_text(run.path / "results.json", json.dumps(results, indent=2) + "\n")
    run.log("results: " + json.dumps({k: v for k, v in results.items() if k != "per_image"}))
    console.print(f"Run folder: {run.path}")
    return results


def patch_size(crop: int | None, height: int, width: int) -> int | None:
    """The training patch side: ``crop`` when it fits the images, else an error that says which sizes do;
    ``None`` (the default) chooses from the images: 256 (the measured ISBI recipe) when they are larger,
    else the largest multiple of 16 that fits (U-Net's four poolings), else whole images.

    >>> patch_size(None, 512, 512), patch_size(None, 96, 96), patch_size(None, 150, 200), patch_size(None, 12, 40)
    (256, 96, 144, None)
    >>> patch_size(128, 96, 96)
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.ConfigError: patch size 128 is larger than the 96x96 images [--patch-size]. Fix: use 96 or less
    """
    side = min(height, width)
    if crop is not None:
        if crop > side:
            raise ConfigError(
                f"patch size {crop} is larger than the {height}x{width} images",
                where="--patch-size",
                fix=f"use {side} or less",
            )
        return crop
    if side >= 256:
        return 256
    return side // 16 * 16 or None


def _masks_loader(data: Dataset, batch_size: int, transform: Compose) -> TensorLoader:
    return TensorLoader(data.images, data.targets, batch_size, transform=transform, target_kind="mask")
