"""The course's detection ladder, steps 1-3, runnable end to end on a laptop CPU.

1. ``localise``: classification with localisation on one-digit canvases; the course's loss
   (:func:`localisation_loss`); scored by box IoU and class accuracy on canvases of unseen handwriting.
2. ``landmarks``: regress five points of each digit that can be computed exactly from its pixels
   (:func:`digit_landmarks`: the topmost, rightmost, bottommost and leftmost ink and the ink's centre).
3. ``sliding``: a window classifier (:class:`~cnnlab.models.detect.sliding.SlidingWindowNet`, digit or
   background) run crop by crop over a canvas and as the same net turned fully convolutional: the same map,
   timed both ways.
   ``pnet``: MTCNN's P-Net, a real pretrained fully convolutional face classifier, over a photo.

:func:`run_ladder` runs one step into ``runs/ladder/<step>-<n>/`` (``config.yaml``, ``metrics.json``,
pictures in ``plots/``); ``cnnlab ladder STEP`` calls it. Digits come from scikit-learn's 8x8 set (offline,
no download; glyphs 0..1399 for training, 1400..1796 for validation, so validation handwriting is unseen)
or from MNIST IDX files (``glyphs=<folder>``: its train and test splits).

>>> settings = LadderSettings(train_images=64, val_images=16, epochs=1)
>>> result = train_localiser(settings)
>>> sorted(result.metrics)
['baseline_iou', 'class_accuracy', 'mean_iou', 'p_c_accuracy', 'val_images']
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from PIL import Image
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.core.rundir import RunDir, atomic_write_text
from cnnlab.data.images import read_image
from cnnlab.data.loader import TensorLoader
from cnnlab.data.synthetic_boxes import (
    BoxTensors,
    digit_canvases,
    localisation_targets,
    mnist_glyphs,
    single_digit_canvases,
    sklearn_glyphs,
)
from cnnlab.models.detect.landmarks import create_landmark_net, to_fractions, to_pixels
from cnnlab.models.detect.localise import create_localiser, decode_localisation
from cnnlab.models.detect.pnet import STRIDE, WINDOW, face_probability_map, load_pnet, strongest_face_window
from cnnlab.models.detect.pnet import to_pnet_input as pnet_input
from cnnlab.models.detect.sliding import SlidingWindowNet, sliding_window_scores, to_fully_convolutional
from cnnlab.tasks.detect import ladder_figures as figures
from cnnlab.tasks.detect.boxes import box_iou
from cnnlab.train.config import TrainConfig
from cnnlab.train.trainer import Batch, Callback, Logs, Trainer

Step = Literal["localise", "landmarks", "sliding", "pnet"]
STEPS: tuple[str, ...] = get_args(Step)

DEFAULT_BACKBONE = "cnn_small"
SKLEARN_TRAIN_GLYPHS = 1400
"""scikit-learn's digits 0..1399 draw the training canvases, 1400..1796 (397 others) the validation ones."""
BOX_WEIGHT = 5.0
"""Weight of the box term against the two classification terms: YOLOv1's lambda_coord (Redmon et al. 2016)."""
LANDMARK_NAMES = ("top", "right", "bottom", "left", "centre")
WINDOW_CLASSES = (*(str(d) for d in range(10)), "background")
"""The window classifier's classes: the ten digits, then background (index 10)."""


@dataclass(frozen=True)
class LadderSettings:
    """What one ladder step trains on and how.

    ``canvas``: side of the square canvases; ``scale``: digit size range (times the glyph's ink size);
    ``empty``: share of localisation canvases with no digit (the course's p_c = 0). ``backbone``: any zoo
    model; ``width`` is cnn_small's first-stage channels (8: the few-second nets of the tests) and is
    passed to that backbone only. ``glyphs``: None for scikit-learn's digits, or an MNIST folder.
    """

    canvas: int = 32
    scale: tuple[float, float] = (0.8, 1.4)
    empty: float = 0.1
    train_images: int = 3000
    val_images: int = 400
    epochs: int = 8
    batch_size: int = 32
    learning_rate: float = 1e-2
    backbone: str = DEFAULT_BACKBONE
    width: int = 8
    glyphs: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("canvas", "train_images", "val_images", "epochs", "batch_size", "width"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1. Received: {name}={getattr(self, name)}", where="ladder")
        if self.canvas < 16:
            raise ConfigError(f"canvas must be >= 16 pixels. Received: canvas={self.canvas}", where="ladder")
        if not 0 <= self.empty < 1:
            raise ConfigError(f"empty must be a fraction in [0, 1). Received: empty={self.empty}", where="ladder")


# ----- data --------------------------------------------------------------------------------------------------
def _glyphs(settings: LadderSettings, split: str, side: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Digit glyphs ``side`` pixels square (scikit-learn's upsampled, or MNIST's 28-pixel ones resized), so the
    canvas sizes and scales suit both sources."""
    if settings.glyphs is None:
        glyphs, labels = sklearn_glyphs(side)
        part = slice(None, SKLEARN_TRAIN_GLYPHS) if split == "train" else slice(SKLEARN_TRAIN_GLYPHS, None)
        return glyphs[part], labels[part]
    glyphs, labels = mnist_glyphs(settings.glyphs, "train" if split == "train" else "test")
    resized = [np.asarray(Image.fromarray(g).resize((side, side), Image.Resampling.BILINEAR)) for g in glyphs]
    return np.stack(resized), labels


def ladder_canvases(settings: LadderSettings, split: str, empty: float | None = None) -> BoxTensors:
    """The one-digit canvases of ``split`` (``train`` or ``val``): uint8 images (N, 1, S, S), targets (N, 1, 5).

    >>> ladder_canvases(LadderSettings(train_images=3), "train").images.shape
    torch.Size([3, 1, 32, 32])
    """
    glyphs, labels = _glyphs(settings, split)
    count = settings.train_images if split == "train" else settings.val_images
    size = (settings.canvas, settings.canvas)
    empty = settings.empty if empty is None else empty
    seed = settings.seed + (0 if split == "train" else 1)
    return single_digit_canvases(glyphs, labels, count, size, settings.scale, empty=empty, seed=seed)


def _inputs(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255  # (N, C, H, W) in 0..1


def digit_landmarks(images: torch.Tensor) -> torch.Tensor:
    """Five landmarks per one-digit image (N, C, H, W) (ink = nonzero pixels of channel 0), in pixels
    ``(x, y)`` (N, 5, 2), in :data:`LANDMARK_NAMES` order: the topmost ink (mean column of the top ink row, on
    the box's top edge), the rightmost, the bottommost and the leftmost likewise, and the ink's centre of
    mass (intensity-weighted mean of pixel centres).

    >>> image = torch.zeros(1, 1, 6, 6, dtype=torch.uint8)
    >>> image[0, 0, 1, 2:4] = 255; image[0, 0, 2:5, 3] = 255  # a T-shaped stroke
    >>> [[round(v, 2) for v in point] for point in digit_landmarks(image)[0].tolist()]  # centre: 16.5/5, 13.5/5
    [[3.0, 1.0], [4.0, 3.0], [3.5, 5.0], [2.0, 1.5], [3.3, 2.7]]
    """
    ink = images[:, 0] > 0  # (N, H, W)
    if not bool(ink.flatten(1).any(1).all()):
        raise ConfigError("an image has no ink: landmarks need one digit per image", where="digit_landmarks")
    n, height, width = ink.shape
    rows, cols = torch.arange(height).float(), torch.arange(width).float()
    index = torch.arange(n)

    def first(mask: torch.Tensor) -> torch.Tensor:  # the first True along axis 1 (argmax returns the first max)
        return mask.float().argmax(1)

    def centre(line: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:  # mean pixel centre of a line's ink
        return (line.float() * (positions + 0.5)).sum(1) / line.sum(1)

    any_row, any_col = ink.any(2), ink.any(1)  # (N, H), (N, W)
    top, left = first(any_row), first(any_col)
    bottom, right = height - 1 - first(any_row.flip(1)), width - 1 - first(any_col.flip(1))
    points = [
        (centre(ink[index, top], cols), top.float()),
        (right.float() + 1, centre(ink[index, :, right], rows)),
        (centre(ink[index, bottom], cols), bottom.float() + 1),
        (left.float(), centre(ink[index, :, left], rows)),
    ]
    weight = images[:, 0].float()
    mass = weight.sum((1, 2))
    points.append((((weight.sum(1)) * (cols + 0.5)).sum(1) / mass, ((weight.sum(2)) * (rows + 0.5)).sum(1) / mass))
    return torch.stack([torch.stack(p, -1) for p in points], 1)


# ----- losses and metrics ------------------------------------------------------------------------------------
def localisation_loss(y_pred: torch.Tensor, y_true: torch.Tensor, box_weight: float = BOX_WEIGHT) -> dict[str, Any]:
    """The course's loss for y = [p_c, b_x, b_y, b_h, b_w, c_1..c_K]: logistic loss on ``p_c`` for every image;
    for the images with an object (``p_c = 1``) only, the squared error of the four box numbers (summed) and
    the cross-entropy of the classes; when ``p_c = 0`` the rest of y is "don't care". Returns the total
    ``loss`` (``p_c`` + ``box_weight`` x ``box`` + ``class``, each a mean over its images) and the parts.

    ``y_pred`` holds ``p_c`` and the classes as logits and the box as fractions
    (:class:`~cnnlab.models.detect.localise.LocalisationNet`'s output).

    >>> y_true = torch.tensor([[1.0, 0.5, 0.5, 0.2, 0.2, 0.0, 1.0], [0.0, 0, 0, 0, 0, 0, 0]])
    >>> y_pred = torch.tensor([[0.0, 0.6, 0.5, 0.2, 0.2, 0.0, 0.0], [0.0, 0.9, 0.9, 0.9, 0.9, 5.0, 0.0]])
    >>> {k: round(float(v), 4) for k, v in localisation_loss(y_pred, y_true).items()}
    {'loss': 1.4363, 'p_c': 0.6931, 'box': 0.01, 'class': 0.6931}
    """
    present = y_true[:, 0] > 0.5
    p_c = F.binary_cross_entropy_with_logits(y_pred[:, 0], y_true[:, 0])
    if bool(present.any()):
        box = (y_pred[present, 1:5] - y_true[present, 1:5]).pow(2).sum(1).mean()
        label = F.cross_entropy(y_pred[present, 5:], y_true[present, 5:].argmax(1))
    else:  # no object in the batch: only p_c is learned
        box = label = y_pred.sum() * 0.0
    return {"loss": p_c + box_weight * box + label, "p_c": p_c, "box": box, "class": label}


def landmark_error(pred: torch.Tensor, true: torch.Tensor) -> float:
    """Mean Euclidean distance in pixels between predicted and true points (..., 2).

    >>> landmark_error(torch.tensor([[[0.0, 0.0], [3.0, 4.0]]]), torch.zeros(1, 2, 2))
    2.5
    """
    return float((pred - true).norm(dim=-1).mean())


@torch.no_grad()
def evaluate_localiser(model: nn.Module, data: BoxTensors, train_boxes: torch.Tensor | None = None) -> dict[str, float]:
    """``mean_iou`` (predicted vs true box) and ``class_accuracy`` over the images with a digit,
    ``p_c_accuracy`` (object or not, at 0.5) over all; with ``train_boxes`` (K, 4) also ``baseline_iou``: the IoU
    of always answering their mean box (what a net that ignores the image scores)."""
    model.eval()
    height, width = data.images.shape[-2:]
    decoded = decode_localisation(model(_inputs(data.images)), (height, width))
    truth = data.targets[:, 0]  # (N, 5)
    present = truth[:, 0] >= 0
    boxes = truth[present, 1:]
    metrics = {
        "mean_iou": float(box_iou(decoded.boxes[present], boxes).diagonal().mean()),
        "class_accuracy": float((decoded.labels[present] == truth[present, 0].long()).float().mean()),
        "p_c_accuracy": float(((decoded.probability > 0.5) == present).float().mean()),
        "val_images": len(data),
    }
    if train_boxes is not None:
        metrics["baseline_iou"] = float(box_iou(train_boxes.mean(0, keepdim=True), boxes).mean())
    return metrics


# ----- training ----------------------------------------------------------------------------------------------
class _RegressionTrainer(Trainer):
    """The house Trainer with a loss that returns named parts (logged per epoch) and no accuracy column."""

    def __init__(self, model: nn.Module, config: TrainConfig, parts: Callable[..., dict[str, Any]], **kw: Any) -> None:
        super().__init__(model, config, loss_fn=lambda out, y: parts(out, y)["loss"], **kw)
        self.parts = parts

    def train_step(self, batch: Batch) -> Logs:
        x, y = self.prepare(batch)
        logs = self.parts(self.logits(self.model, x).float(), y)
        self.optimise(logs["loss"])
        return {k: v.detach() for k, v in logs.items()}

    def eval_step(self, batch: Batch) -> Logs:
        x, y = self.prepare(batch)
        return self.parts(self.logits(self.eval_model, x).float(), y)


def _train_config(settings: LadderSettings) -> TrainConfig:
    # fp32 and no channels_last: these nets are a few thousand multiply-adds per pixel, where bf16 casts
    # and layout changes cost more than they save, and fp32 keeps the numbers exactly reproducible.
    return TrainConfig(
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        optimizer="adam",
        lr=settings.learning_rate,
        weight_decay=0.0,
        schedule="onecycle",
        precision="fp32",
        channels_last=False,
        seed=settings.seed,
        monitor="val_loss",
    )


def _backbone_options(settings: LadderSettings) -> dict[str, object]:
    """cnn_small's ``width``; other zoo backbones are built with their own defaults for the canvas size."""
    return {"width": settings.width} if settings.backbone == DEFAULT_BACKBONE else {}


@dataclass
class LadderResult:
    """A trained ladder net, its per-epoch history, its validation data and the final metrics."""

    model: nn.Module
    history: list[dict[str, Any]]
    val: BoxTensors
    metrics: dict[str, float]


def train_localiser(settings: LadderSettings, callbacks: Sequence[Callback] = ()) -> LadderResult:
    """Step 1: train a :class:`~cnnlab.models.detect.localise.LocalisationNet` with :func:`localisation_loss` on
    one-digit canvases and score it on the validation canvases (:func:`evaluate_localiser`)."""
    torch.manual_seed(settings.seed)
    train, val = ladder_canvases(settings, "train"), ladder_canvases(settings, "val")
    size = (1, settings.canvas, settings.canvas)
    model = create_localiser(
        settings.backbone, len(train.class_names), 1, input_size=size, **_backbone_options(settings)
    )
    trainer = _RegressionTrainer(model, _train_config(settings), localisation_loss, callbacks=callbacks)
    batches = dict(batch_size=settings.batch_size, seed=settings.seed)
    history = trainer.fit(
        TensorLoader(_inputs(train.images), localisation_targets(train), shuffle=True, **batches),
        TensorLoader(_inputs(val.images), localisation_targets(val), **batches),
    )
    present = train.targets[:, 0, 0] >= 0
    metrics = evaluate_localiser(model, val, train_boxes=train.targets[present, 0, 1:])
    return LadderResult(model, history, val, metrics)


def _landmark_parts(pred: torch.Tensor, true: torch.Tensor) -> dict[str, Any]:
    return {"loss": F.mse_loss(pred, true)}


def train_landmark_net(settings: LadderSettings, callbacks: Sequence[Callback] = ()) -> LadderResult:
    """Step 2: train a :class:`~cnnlab.models.detect.landmarks.LandmarkNet` (mean squared error on the points as
    fractions of the canvas) to find :func:`digit_landmarks`; metrics in pixels: ``landmark_error`` (mean
    distance), per landmark, and ``baseline_error`` (always answering the training set's mean points)."""
    torch.manual_seed(settings.seed)
    train, val = ladder_canvases(settings, "train", empty=0.0), ladder_canvases(settings, "val", empty=0.0)
    size = (settings.canvas, settings.canvas)
    true_train, true_val = digit_landmarks(train.images), digit_landmarks(val.images)
    model = create_landmark_net(
        settings.backbone, len(LANDMARK_NAMES), 1, input_size=(1, *size), **_backbone_options(settings)
    )
    trainer = _RegressionTrainer(model, _train_config(settings), _landmark_parts, callbacks=callbacks)
    batches = dict(batch_size=settings.batch_size, seed=settings.seed)
    history = trainer.fit(
        TensorLoader(_inputs(train.images), to_fractions(true_train, size), shuffle=True, **batches),
        TensorLoader(_inputs(val.images), to_fractions(true_val, size), **batches),
    )
    model.eval()
    with torch.no_grad():
        pred = to_pixels(model(_inputs(val.images)), size)
    per_point = (pred - true_val).norm(dim=-1).mean(0)
    metrics = {
        "landmark_error": landmark_error(pred, true_val),
        "baseline_error": landmark_error(true_train.mean(0, keepdim=True).expand_as(true_val), true_val),
        **{f"error_{name}": float(e) for name, e in zip(LANDMARK_NAMES, per_point, strict=True)},
        "canvas": settings.canvas,
        "val_images": len(val),
    }
    return LadderResult(model, history, val, metrics)


def window_crops(data: BoxTensors, count: int, window: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` training crops ``window x window`` (uint8 (count, C, w, w)) from multi-digit canvases and their
    classes: the digit whose box lies wholly inside the crop (the largest, if several), else background
    (index 10). Half the crops are placed at random, half so that a random digit lies inside (positives are
    rare among random places).

    >>> data = BoxTensors(torch.zeros(1, 1, 20, 20, dtype=torch.uint8), torch.tensor([[[7.0, 2, 2, 8, 9]]]), [])
    >>> crops, labels = window_crops(data, 6, 14)
    >>> crops.shape, sorted(set(labels.tolist())) <= [7, 10]
    (torch.Size([6, 1, 14, 14]), True)
    """
    rng = np.random.default_rng(seed)
    height, width = data.images.shape[-2:]
    crops, labels = [], []
    for k in range(count):
        n = int(rng.integers(len(data)))
        rows = data.targets[n][data.targets[n, :, 0] >= 0]
        left, top = int(rng.integers(width - window + 1)), int(rng.integers(height - window + 1))
        if k % 2 and len(rows):  # around a digit: any top-left corner that keeps its box inside the window
            x1, y1, x2, y2 = rows[int(rng.integers(len(rows))), 1:].tolist()
            lefts = (max(0, int(np.ceil(x2)) - window), min(int(x1), width - window))
            tops = (max(0, int(np.ceil(y2)) - window), min(int(y1), height - window))
            if lefts[0] <= lefts[1] and tops[0] <= tops[1]:  # else the digit is larger than a window: stay random
                left, top = int(rng.integers(lefts[0], lefts[1] + 1)), int(rng.integers(tops[0], tops[1] + 1))
        inside = (
            (rows[:, 1] >= left) & (rows[:, 2] >= top) & (rows[:, 3] <= left + window) & (rows[:, 4] <= top + window)
        )
        area = ((rows[:, 3] - rows[:, 1]) * (rows[:, 4] - rows[:, 2])).where(inside, torch.tensor(-1.0))
        labels.append(int(rows[int(area.argmax()), 0]) if bool(inside.any()) else len(WINDOW_CLASSES) - 1)
        crops.append(data.images[n, :, top : top + window, left : left + window])
    return torch.stack(crops), torch.tensor(labels)


def _sliding_canvases(settings: LadderSettings, split: str, count: int, side: int) -> BoxTensors:
    glyphs, labels = _glyphs(settings, split, side=12)  # 12-pixel glyphs: a digit fits a 14x14 window
    seed = settings.seed + (0 if split == "train" else 1)
    return digit_canvases(glyphs, labels, count, (side, side), per_image=(2, 5), scale=(0.7, 1.0), seed=seed)


def train_window_classifier(
    settings: LadderSettings, callbacks: Sequence[Callback] = ()
) -> tuple[SlidingWindowNet, list[dict[str, Any]]]:
    """Step 3's classifier: the course's :class:`SlidingWindowNet` (14x14 grey windows, 11 classes: ten digits
    and background) trained with cross-entropy on :func:`window_crops` of multi-digit 48x48 canvases: four
    crops for each of ``train_images`` (and ``val_images``)."""
    torch.manual_seed(settings.seed)
    train_scenes = _sliding_canvases(settings, "train", max(1, settings.train_images // 2), 48)
    val_scenes = _sliding_canvases(settings, "val", max(1, settings.val_images // 2), 48)
    crops, labels = window_crops(train_scenes, 4 * settings.train_images, 14, settings.seed)
    val_crops, val_labels = window_crops(val_scenes, 4 * settings.val_images, 14, settings.seed + 1)
    net = SlidingWindowNet(num_classes=len(WINDOW_CLASSES), in_chans=1)
    trainer = Trainer(net, _train_config(settings), callbacks=callbacks)
    batches = dict(batch_size=settings.batch_size, seed=settings.seed)
    history = trainer.fit(
        TensorLoader(_inputs(crops), labels, shuffle=True, **batches),
        TensorLoader(_inputs(val_crops), val_labels, **batches),
    )
    return net.eval(), history


def _best_seconds(run: Callable[[], object], repeats: int = 3) -> float:
    """The fastest of ``repeats`` timed calls (after one untimed warm-up): the least disturbed by other work."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def compare_sliding(
    model: Callable[[torch.Tensor], torch.Tensor],
    fully_convolutional: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    window: int,
    stride: int,
    repeats: int = 3,
) -> dict[str, Any]:
    """Score every window of ``image`` (C, H, W) crop by crop with ``model`` (in batches of 256, and one crop at
    a time) and in one pass of ``fully_convolutional``; returns both maps (K, rows, cols), the largest absolute
    difference, the largest score (for scale) and the best-of-``repeats`` times in seconds."""
    with torch.no_grad():
        slow = sliding_window_scores(model, image, window, stride)
        fast = fully_convolutional(image[None])[0][:, : slow.shape[1], : slow.shape[2]]
        t_slow = _best_seconds(lambda: sliding_window_scores(model, image, window, stride), repeats)
        t_single = _best_seconds(lambda: sliding_window_scores(model, image, window, stride, batch_size=1), 1)
        t_fast = _best_seconds(lambda: fully_convolutional(image[None]), repeats)
    return {
        "slow": slow,
        "fast": fast,
        "max_abs_difference": float((slow - fast).abs().max()),
        "largest_score": float(slow.abs().max()),  # float32 sums in another order: differences scale with this
        "windows": int(slow.shape[1] * slow.shape[2]),
        "seconds_crops_batched": t_slow,
        "seconds_crops_one_by_one": t_single,
        "seconds_fully_convolutional": t_fast,
        "speedup_vs_batched": t_slow / t_fast,
        "speedup_vs_one_by_one": t_single / t_fast,
    }


# ----- run folders -------------------------------------------------------------------------------------------
def _history_row(logs: dict[str, Any]) -> dict[str, float]:
    return {k: round(float(v), 5) for k, v in logs.items()}


def _run_localise(settings: LadderSettings, run: RunDir, callbacks: Sequence[Callback]) -> dict[str, Any]:
    result = train_localiser(settings, callbacks)
    show = result.val.targets[:, 0, 0] >= 0
    images, truth = result.val.images[show][:16], result.val.targets[show][:16, 0]
    with torch.no_grad():
        decoded = decode_localisation(result.model(_inputs(images)), images.shape[-2:])
    ious = box_iou(decoded.boxes, truth[:, 1:]).diagonal()
    captions = [
        f"{int(t)}->{int(p)} IoU {iou:.2f}" for t, p, iou in zip(truth[:, 0], decoded.labels, ious, strict=True)
    ]
    figures.plot_localisation_grid(
        [im[0].numpy() for im in images],
        truth[:, 1:].numpy(),
        decoded.boxes.numpy(),
        captions,
        run.plots / "localisation.png",
        title=f"true (green) vs predicted (red) box, true->predicted digit; mean IoU {result.metrics['mean_iou']:.2f}",
    )
    return {**result.metrics, "history": [_history_row(h) for h in result.history]}


def _run_landmarks(settings: LadderSettings, run: RunDir, callbacks: Sequence[Callback]) -> dict[str, Any]:
    result = train_landmark_net(settings, callbacks)
    images = result.val.images[:16]
    with torch.no_grad():
        pred = to_pixels(result.model(_inputs(images)), images.shape[-2:])
    figures.plot_landmarks(
        [im[0].numpy() for im in images],
        digit_landmarks(images).numpy(),
        pred.numpy(),
        run.plots / "landmarks.png",
        title=f"true (o) vs predicted (x): top, right, bottom, left ink and centre; "
        f"mean error {result.metrics['landmark_error']:.2f} px",
    )
    return {**result.metrics, "history": [_history_row(h) for h in result.history]}


def _run_sliding(settings: LadderSettings, run: RunDir, callbacks: Sequence[Callback]) -> dict[str, Any]:
    net, history = train_window_classifier(settings, callbacks)
    fcn = to_fully_convolutional(net).eval()
    scene = _sliding_canvases(settings, "val", 1, 64)
    image = _inputs(scene.images)[0]  # (1, 64, 64)
    comparison = compare_sliding(net, fcn, image, 14, net.stride)
    digit = 1 - torch.softmax(comparison["slow"], 0)[-1]  # p(some digit) per window: 1 - p(background)
    digit_fast = 1 - torch.softmax(comparison["fast"], 0)[-1]
    figures.plot_sliding_maps(
        scene.images[0, 0].numpy(),
        digit.numpy(),
        digit_fast.numpy(),
        14,
        net.stride,
        run.plots / "sliding.png",
        times=(comparison["seconds_crops_batched"], comparison["seconds_fully_convolutional"]),
        label="p(digit in window)",
    )
    big = _inputs(_sliding_canvases(settings, "val", 1, 256).images)[0]  # the speed-up grows with the image
    timing = compare_sliding(net, fcn, big, 14, net.stride)
    return {
        "window": 14,
        "stride": net.stride,
        "val_accuracy": round(float(history[-1]["val_acc"]), 4),
        "canvas_64": {k: v for k, v in comparison.items() if k not in ("slow", "fast")},
        "canvas_256": {k: v for k, v in timing.items() if k not in ("slow", "fast")},
        "threads": torch.get_num_threads(),
        "history": [_history_row(h) for h in history],
    }


def _run_pnet(image_path: Path, weights: str | Path | None, run: RunDir) -> dict[str, Any]:
    net = load_pnet(weights)
    image = read_image(image_path, channels=3)
    best = strongest_face_window(net, image)
    probabilities = face_probability_map(net, image, best.scale)
    figures.plot_face_map(image, probabilities.numpy(), best.box, best.probability, best.scale, run.plots / "pnet.png")
    # Crop by crop is slow on a whole photo (a 512x512 one has 63,001 windows): compare on a quarter-size copy.
    x = F.interpolate(pnet_input(image), scale_factor=0.25, mode="area")[0]
    comparison = compare_sliding(lambda crops: net(crops)[0], lambda batch: net(batch)[0], x, WINDOW, STRIDE)
    return {
        "image": str(image_path),
        "strongest_window": [round(v, 1) for v in best.box],
        "probability": best.probability,
        "scale": best.scale,
        **{k: v for k, v in comparison.items() if k not in ("slow", "fast")},
        "threads": torch.get_num_threads(),
    }


def run_ladder(
    step: str,
    settings: LadderSettings,
    runs_dir: str | Path = "runs",
    image: str | Path | None = None,
    weights: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
) -> dict[str, Any]:
    """Run one ladder ``step`` into a new ``runs_dir/ladder/<step>-<n>/``: ``config.yaml`` (the settings),
    ``metrics.json`` (the numbers, with ``run``: the folder) and the pictures in ``plots/``. ``pnet`` needs
    ``image`` (a photo) and finds P-Net's ``weights`` (``pnet.pt``) as :func:`load_pnet` does."""
    if step not in STEPS:
        raise ConfigError(f"unknown ladder step {step!r}", where="cnnlab ladder", fix=f"use one of {', '.join(STEPS)}")
    if step == "pnet" and image is None:
        raise ConfigError(
            "the pnet step needs a photo", where="cnnlab ladder pnet", fix="pass --image PHOTO (e.g. a portrait)"
        )
    if step == "pnet":
        load_pnet(weights)  # fail before the run folder is made
    run = RunDir.create(runs_dir, "ladder", step)
    config = {"step": step, **dataclasses.asdict(settings), "image": image and str(image), "weights": weights}
    atomic_write_text(run.config, yaml.safe_dump(json.loads(json.dumps(config, default=str)), sort_keys=False))
    started = time.perf_counter()
    if step == "localise":
        metrics = _run_localise(settings, run, callbacks)
    elif step == "landmarks":
        metrics = _run_landmarks(settings, run, callbacks)
    elif step == "sliding":
        metrics = _run_sliding(settings, run, callbacks)
    else:
        metrics = _run_pnet(Path(image), weights, run)
    metrics = {"step": step, **metrics, "seconds": round(time.perf_counter() - started, 2), "run": str(run.path)}
    atomic_write_text(run.path / "metrics.json", json.dumps(metrics, indent=2))
    return metrics


_SUMMARY = {
    "localise": ("mean_iou", "baseline_iou", "class_accuracy", "p_c_accuracy"),
    "landmarks": ("landmark_error", "baseline_error"),
    "sliding": ("val_accuracy",),
    "pnet": ("probability", "max_abs_difference", "speedup_vs_batched", "speedup_vs_one_by_one"),
}


def summary_line(metrics: dict[str, Any]) -> str:
    """The headline numbers of a :func:`run_ladder` result as one line (the CLI prints it).

    >>> summary_line({"step": "landmarks", "landmark_error": 1.234, "baseline_error": 6.5})
    'landmark_error 1.234, baseline_error 6.5'
    """
    line = ", ".join(f"{key} {metrics[key]:.4g}" for key in _SUMMARY[metrics["step"]])
    if metrics["step"] == "sliding":
        speed = metrics["canvas_256"]
        line += (
            f"; FC -> conv on 256x256: largest difference {speed['max_abs_difference']:.1e}, "
            f"{speed['speedup_vs_batched']:.1f}x faster than batched crops, "
            f"{speed['speedup_vs_one_by_one']:.0f}x faster than one crop at a time"
        )
    return line
