"""A detection run from settings to run folder: boxes (VOC / YOLO / COCO) -> YOLO-style detector -> mAP.

``cnnlab train --task detect --data DATASET`` calls :func:`run_detection`. What the user does not set is
chosen from the data and said in the log: the input size (from the image sizes), the anchors (k-means of the
training boxes), the backbone's ImageNet weights (when the file is there), the epochs (from the number of
training images) and the augmentation. Checkpoints carry what ``cnnlab predict`` needs: classes, input size,
normalisation, anchors and model options.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.markup import escape

from cnnlab.core.config import save_yaml, to_dict
from cnnlab.core.errors import ConfigError, DataError, WeightsError, with_article
from cnnlab.core.rundir import RunDir, atomic_write_text
from cnnlab.data.augment import ColorJitter, Compose, HorizontalFlip, Normalize, RandomAffine, Rescale
from cnnlab.data.boxes import BoxDataset, read_boxes
from cnnlab.data.loader import TensorLoader
from cnnlab.data.presets import PRESETS
from cnnlab.models import create_model, model_entry
from cnnlab.models.detect.yolo import YoloDetector
from cnnlab.models.weights import resolve_weights
from cnnlab.report.html import write_report
from cnnlab.tasks.base import resume_from, timed_fit
from cnnlab.tasks.config import channel_stats, eval_transform
from cnnlab.tasks.detect.anchors import anchor_fit, describe_anchor_fit, kmeans_anchors
from cnnlab.tasks.detect.config import DetectRunConfig
from cnnlab.tasks.detect.report import write_detection_evaluation
from cnnlab.tasks.detect.splits import named_splits
from cnnlab.tasks.detect.trainer import DetectionTrainer
from cnnlab.train.callbacks import run_callbacks

BACKBONE_WEIGHTS = {"efficientnet_lite0": "efficientnet_lite0.imagenet"}
"""The ImageNet weights ``backbone_weights: auto`` loads per backbone, when the file is found."""

DEFAULT_SIDE = 416
"""The input's longer side when the images are at least this large (YOLOv2/v3's 416: platelets of BCCD,
~35 px at 640, keep ~23 px; 2 CPU cores train an EfficientNet-Lite0 detector at ~N images/s)."""


def input_size(data: BoxDataset, side: int | None) -> tuple[int, int]:
    """(height, width) the detector sees: the longer side ``side`` (default: :data:`DEFAULT_SIDE`, or the
    images' own when smaller), the shorter from the median aspect ratio; both multiples of 32.

    >>> from types import SimpleNamespace
    >>> input_size(SimpleNamespace(records=[SimpleNamespace(height=480, width=640)] * 3), None)
    (320, 416)
    """
    heights = sorted(r.height for r in data.records)
    widths = sorted(r.width for r in data.records)
    height, width = heights[len(heights) // 2], widths[len(widths) // 2]
    longer = side or min(DEFAULT_SIDE, max(height, width))
    longer = max(32, round(longer / 32) * 32)
    shorter = max(32, round(longer * min(height, width) / max(height, width) / 32) * 32)
    return (shorter, longer) if width >= height else (longer, shorter)


def default_epochs(train_images: int) -> int:
    """About 3,000 image presentations, 10..60 epochs (BCCD's 205 training images: 15 epochs).

    >>> default_epochs(205), default_epochs(20), default_epochs(5000)
    (15, 60, 10)
    """
    return int(min(60, max(10, round(3000 / max(train_images, 1)))))


def train_transform(config: DetectRunConfig, mean: tuple[float, ...], std: tuple[float, ...]) -> Compose:
    """``aug: auto``: mirror, zoom 0.75..1.25 and shift 10% (boxes move with the image), colour jitter."""
    if config.data.aug != "auto":
        steps = PRESETS.get(config.data.aug)(None).transforms
    else:
        steps = [
            HorizontalFlip(),
            RandomAffine(zoom=(0.75, 1.25), translate=(0.1, 0.1)),
            ColorJitter(brightness=0.2, contrast=0.2, saturation=0.3, hue=0.02),
        ]
    return Compose([*steps, Rescale(), Normalize(mean, std)])


def load_data(config: DetectRunConfig) -> tuple[BoxDataset, BoxDataset | None, str]:
    """``(train, validation, how they were split)``: the dataset's own splits when it names them, else a
    seeded random hold-out of ``val_fraction``."""
    source = config.data.source
    if not source:
        raise ConfigError(
            "detection needs a dataset",
            where="--data",
            fix="cnnlab train --task detect --data data.yaml (YOLO) | VOC folder | COCO .json",
        )
    det = config.detect
    splits = named_splits(Path(source))
    train_split = det.split or ("train" if "train" in splits else None)
    val_split = det.val_split or ("val" if "val" in splits and train_split == "train" else None)
    train = read_boxes(source, split=train_split, strict=config.data.strict)
    if len(train) < 2:
        raise DataError(f"found {len(train)} usable images with boxes", where=source, fix="add more images")
    if not train.class_names or not any(len(record.boxes) for record in train.records):
        raise DataError(
            f"none of the {len(train)} training images has a box",
            where=source,
            fix="label them: YOLO labels/<image>.txt with 'class cx cy w h' lines, VOC .xml beside the images or in "
            "annotations/, or a COCO .json",
        )
    if val_split is not None:
        held = read_boxes(source, split=val_split, strict=config.data.strict)
        return train, held, f"the dataset's '{train_split}' and '{val_split}' splits"
    sibling = coco_validation_file(Path(source))
    if sibling is not None and det.split is None:
        held = read_boxes(sibling, strict=config.data.strict)
        return train, held, f"{Path(source).name} and {sibling.name} beside it"
    if config.data.val_fraction <= 0:
        return train, None, f"split '{train_split or 'all'}', no validation"
    train, held = train.split(config.data.val_fraction, seed=config.train.seed)
    return train, held, f"a random {config.data.val_fraction:.0%} of '{train_split or 'all'}' held out (seeded)"


def coco_validation_file(path: Path) -> Path | None:
    """The validation file beside a COCO training file (``train.json`` -> ``val.json``,
    ``instances_train2017.json`` -> ``instances_val2017.json``), when there is one."""
    if path.suffix.lower() != ".json" or "train" not in path.name:
        return None
    sibling = path.with_name(path.name.replace("train", "val"))
    return sibling if sibling.is_file() else None


def choose_anchors(config: DetectRunConfig, wh: torch.Tensor, levels: int) -> torch.Tensor:
    """The run's anchors (pixels at the input size): the config's, else k-means of the training boxes'
    sizes ``wh`` (N, 2) at the input size."""
    if config.detect.anchors is not None:
        return torch.tensor(config.detect.anchors, dtype=torch.float32)
    k = levels * config.detect.anchors_per_level
    if len(wh) < k:
        raise DataError(f"{len(wh)} training boxes are too few for {k} anchors", fix="add images or give --anchors")
    return kmeans_anchors(wh, k, seed=config.train.seed)


def box_sizes(targets: torch.Tensor) -> torch.Tensor:
    """Width and height (N, 2) of every real box in padded targets (B, M, 5).

    >>> box_sizes(torch.tensor([[[0, 1.0, 2.0, 5.0, 4.0], [-1, 0, 0, 0, 0]]])).tolist()
    [[4.0, 2.0]]
    """
    rows = targets[targets[..., 0] >= 0]
    return rows[:, 3:5] - rows[:, 1:3]


def backbone_weights(config: DetectRunConfig, backbone: str) -> tuple[str | None, str]:
    """Pretrained backbone weights for ``auto`` (and why), or the configured ones."""
    chosen = config.detect.backbone_weights
    if chosen != "auto":
        return chosen, "as configured"
    spec = BACKBONE_WEIGHTS.get(backbone)
    if spec is None:
        return None, f"no ImageNet weights known for {backbone}: trained from scratch"
    try:
        resolve_weights(spec)
    except WeightsError:
        return None, f"{spec} not found: trained from scratch (put its folder in $CNNLAB_WEIGHTS)"
    return spec, f"{spec} (ImageNet)"


def backbone_of(name: str, options: dict[str, Any]) -> str | None:
    """The zoo backbone a registered detector is built on (``None``: its own)."""
    return options.get("backbone") or {"yolo_lite0": "efficientnet_lite0", "yolo": "efficientnet_lite0"}.get(name)


def run_detection(
    config: DetectRunConfig,
    runs_dir: Path = Path("runs"),
    resume: Path | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Train (or resume) a detector; returns the validation scores (also in ``results.json``)."""
    console = console or Console()
    if model_entry(config.model.name).task != "detect":
        raise ConfigError(
            f"'{config.model.name}' is {with_article(model_entry(config.model.name).task)} model",
            where="--model",
            fix="use a detector: cnnlab models --task detect",
        )
    train, held, how = load_data(config)  # bad data stops here, before a run folder exists
    run = (
        RunDir.open(resume)
        if resume is not None
        else RunDir.create(runs_dir, "detect", config.name or config.model.name)
    )
    with run.lock():
        return _train(config, run, resume is not None, train, held, how, console)


def _train(
    config: DetectRunConfig,
    run: RunDir,
    resume: bool,
    train: BoxDataset,
    held: BoxDataset | None,
    how: str,
    console: Console,
) -> dict[str, Any]:
    cfg, det = config.train, config.detect
    checkpoint = run.resume_checkpoint() if resume else None
    size = input_size(train, config.data.img_size)
    epochs = cfg.epochs or default_epochs(len(train))
    config = _with_epochs(config, epochs)
    save_yaml(config, run.config)
    for problem in [*train.problems, *(held.problems if held else [])]:
        run.log(f"{problem.path}: {problem.message}")
    names = train.class_names
    images, targets = train.to_tensors(size, fit=det.fit)
    mean, std = channel_stats(images)
    options: dict[str, Any] = {"width": det.width} if det.width else {}
    if det.backbone:
        options["backbone"] = det.backbone
    name = config.model.name
    probe = create_model(name, num_classes=len(names), in_chans=images.shape[1], **options)
    assert isinstance(probe, YoloDetector)
    levels = len(probe.strides)
    wh = box_sizes(targets)
    anchors = choose_anchors(config, wh, levels)
    options["anchors"] = [[round(v, 2) for v in pair] for pair in anchors.tolist()]
    backbone = backbone_of(name, options)
    weights, why = backbone_weights(config, backbone) if backbone else (None, "")
    torch.manual_seed(cfg.seed)
    model = create_model(
        name,
        num_classes=len(names),
        in_chans=images.shape[1],
        **options,
        **({"backbone_weights": weights} if weights else {}),
    )
    frozen_stride = det.freeze_stride if det.freeze_stride is not None else (4 if weights else 0)
    frozen = model.freeze_backbone(frozen_stride) if frozen_stride else 0
    fit = describe_anchor_fit(anchor_fit(wh, anchors))
    chosen = [
        f"input {size[0]}x{size[1]} (height x width"
        + (", chosen from the image sizes)" if not config.data.img_size else ")"),
        f"{len(anchors)} anchors {'from k-means of the training boxes' if det.anchors is None else 'as given'}: {fit}",
        f"{epochs} epochs{' (chosen from the number of training images)' if not cfg.epochs else ''}",
    ]
    if backbone:
        chosen.append(f"backbone {backbone}: {why}")
    if frozen:
        chosen.append(
            f"backbone layers up to stride {frozen_stride} frozen ({frozen:,} parameters; detect.freeze_stride)"
        )
    for line in chosen:
        run.log(line)
    meta = {
        "config": to_dict(config),
        "task": "detect",
        "classes": names,
        "mean": list(mean),
        "std": list(std),
        "input_size": [images.shape[1], *size],
        "model_name": name,
        "model_options": options,
        "fit": det.fit,
    }
    augment = train_transform(config, mean, std)
    loader = TensorLoader(images, targets, cfg.batch_size or 8, True, cfg.seed, augment, target_kind="boxes")
    val = None
    if held is not None:
        val_images, val_targets = held.to_tensors(size, fit=det.fit)
        val = TensorLoader(val_images, val_targets, cfg.eval_batch_size, transform=eval_transform(mean, std))
    trainer = DetectionTrainer(
        model,
        cfg,
        callbacks=run_callbacks(run, console, cfg.monitor, lambda: meta),
        class_names=names,
        score_threshold=det.score_threshold,
        iou_threshold=det.iou_threshold,
        max_detections=det.max_detections,
    )
    resume_from(trainer, checkpoint, run, console)
    console.print(
        f"Training [bold]{name}[/bold] on {len(train)} images ({train.summary()}); validation: "
        f"{len(held) if held else 0} images ({how})."
    )
    for line in chosen:
        console.print(f"  {escape(line)}")
    results: dict[str, Any] = timed_fit(trainer, loader, val, epochs, run, console)
    if results.get("interrupted"):
        return results
    if held is not None:
        from cnnlab.tasks.detect.predictor import Detector

        detector = Detector.from_trained(trainer.eval_model, meta)
        summary = write_detection_evaluation(run.path, detector, held, f"validation ({how})", console)
        results |= {f"val_{k}": v for k, v in summary.items()}
    atomic_write_text(run.path / "results.json", json.dumps(results, indent=2) + "\n")
    run.log("results: " + json.dumps(results))
    console.print(f"Report: {write_report(run.path)}")
    console.print(f"Run folder: {run.path}")
    return results


def _with_epochs(config: DetectRunConfig, epochs: int) -> DetectRunConfig:
    from cnnlab.core.config import replace

    return replace(config, train=replace(config.train, epochs=epochs))
