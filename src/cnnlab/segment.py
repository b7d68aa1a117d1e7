"""Segmentation: losses, per-class metrics, a joint image/mask loader, a Trainer subclass, overlap-tile
inference, and the run pipeline behind ``cnnlab train --task segment``.

The counterpart of :mod:`cnnlab.classify`: the same run folder (``config.yaml``, ``metrics.csv``,
checkpoints carrying what ``cnnlab predict`` needs), the same callbacks. Targets are ``(N, H, W)``
class indices from :func:`~cnnlab.data.datasets.load_segmentation`; models return ``(B, K, H', W')``
logits (``H' < H`` for the paper's unpadded U-Net: targets are centre-cropped to fit).

>>> import torch
>>> logits = torch.tensor([[[[2.0, -1.0]], [[0.0, 3.0]]]])  # (B=1, K=2, H=1, W=2): predicts [0, 1]
>>> scores = scores_from_confusion(confusion(logits.argmax(1), torch.tensor([[[0, 0]]]), 2), ["bg", "fg"])
>>> scores["acc"], scores["dice_bg"], scores["iou_bg"]
(0.5, 0.6666666666666666, 0.5)
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from rich.console import Console
from torch import nn

from cnnlab.classify import DataConfig, ModelConfig
from cnnlab.core.config import from_dict, load_yaml, replace, save_yaml, to_dict
from cnnlab.core.errors import ConfigError, DataError
from cnnlab.core.registry import Registry
from cnnlab.core.rundir import RunDir, atomic_write_bytes, atomic_write_text, load_checkpoint, save_figure
from cnnlab.data.augment import Compose, Normalize, RandomCrop, Rescale
from cnnlab.data.datasets import Dataset, load_segmentation
from cnnlab.data.elastic import ElasticDeform
from cnnlab.data.images import read_image
from cnnlab.data.presets import PRESETS
from cnnlab.models import create_model
from cnnlab.train.callbacks import Checkpointer, ProgressBar, RunLogger
from cnnlab.train.config import TrainConfig
from cnnlab.train.metrics import confusion_matrix
from cnnlab.train.trainer import Batch, Callback, Logs, Trainer

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

LOSSES: Registry[LossFn] = Registry("segmentation loss")
"""Losses ``(logits (B, K, H, W), targets (B, H, W) int) -> scalar``; ``--loss`` choices come from here."""

_EPS = 1.0  # Dice smoothing: an empty class in a batch gives loss 0, not 0/0


# ----- losses ---------------------------------------------------------------------------------
@LOSSES.register("ce")
def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-pixel softmax cross-entropy (the U-Net paper's loss, without its border weight map)."""
    return F.cross_entropy(logits, targets.long())


@LOSSES.register("bce")
def binary_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Sigmoid BCE per class map against one-hot targets (for two classes: a binary mask per map).

    >>> round(binary_cross_entropy(torch.zeros(1, 2, 1, 1), torch.zeros(1, 1, 1)).item(), 4)  # log 2
    0.6931
    """
    one_hot = F.one_hot(targets.long(), logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)  # (B, K, H, W)
    return F.binary_cross_entropy_with_logits(logits, one_hot)


@LOSSES.register("dice")
def dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1 - soft Dice of the softmax probabilities, per class over the batch, averaged over classes.

    >>> perfect = torch.tensor([[[[9.0, -9.0]], [[-9.0, 9.0]]]])  # predicts [0, 1] confidently
    >>> dice_loss(perfect, torch.tensor([[[0, 1]]])).item() < 1e-3
    True
    """
    probs = logits.softmax(dim=1)  # (B, K, H, W)
    one_hot = F.one_hot(targets.long(), logits.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
    overlap = (probs * one_hot).sum(dim=(0, 2, 3))  # (K,)
    total = probs.sum(dim=(0, 2, 3)) + one_hot.sum(dim=(0, 2, 3))
    return 1 - ((2 * overlap + _EPS) / (total + _EPS)).mean()


@LOSSES.register("bce_dice")
def bce_dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """BCE + Dice: pixel-wise calibration plus a direct push on region overlap (thin classes)."""
    return binary_cross_entropy(logits, targets) + dice_loss(logits, targets)


@LOSSES.register("focal")
def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Focal loss (Lin et al. 2017): cross-entropy scaled by ``(1 - p_true) ** gamma``; ``gamma=0`` is CE.

    >>> x, y = torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4))
    >>> torch.allclose(focal_loss(x, y, gamma=0.0), cross_entropy(x, y))
    True
    """
    log_p = F.log_softmax(logits, dim=1).gather(1, targets.long()[:, None])[:, 0]  # (B, H, W) log p_true
    return (-((1 - log_p.exp()) ** gamma) * log_p).mean()


# ----- metrics --------------------------------------------------------------------------------
def confusion(preds: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Pixel counts ``cm[true, pred]`` over masks of any shape (int64 ``(K, K)``)."""
    return confusion_matrix(targets.reshape(-1), preds.reshape(-1), num_classes)


def class_key(name: str) -> str:
    """A class name as a metric-key suffix: ``"cell interior"`` -> ``"cell_interior"``."""
    return re.sub(r"\W+", "_", name.strip().lower()).strip("_") or "class"


def scores_from_confusion(counts: torch.Tensor | np.ndarray, class_names: Sequence[str]) -> dict[str, float]:
    """Pixel accuracy, IoU and Dice per class (``iou_<name>``, ``dice_<name>``) and their means.

    A class absent from both truth and prediction has no score (NaN) and is left out of the means.
    """
    cm = torch.as_tensor(counts, dtype=torch.float64)
    true, pred, hit = cm.sum(1), cm.sum(0), cm.diagonal()
    union = true + pred - hit
    iou = torch.where(union > 0, hit / union.clamp(min=1), torch.nan)
    dice = torch.where(true + pred > 0, 2 * hit / (true + pred).clamp(min=1), torch.nan)
    scores = {
        "acc": float(hit.sum() / cm.sum().clamp(min=1)),
        "iou": float(iou.nanmean()),
        "dice": float(dice.nanmean()),
    }
    for k, name in enumerate(class_names):
        scores[f"iou_{class_key(name)}"] = float(iou[k])
        scores[f"dice_{class_key(name)}"] = float(dice[k])
    return scores


def per_image_scores(
    truth: torch.Tensor, preds: torch.Tensor, class_names: Sequence[str], names: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """One :func:`scores_from_confusion` dict per mask pair (``(N, H, W)`` each), with the image name.

    >>> rows = per_image_scores(torch.zeros(2, 2, 2), torch.zeros(2, 2, 2), ["bg", "fg"], ["a.png", "b.png"])
    >>> rows[0]["image"], rows[0]["acc"], rows[0]["dice_bg"], rows[0]["dice_fg"]  # no foreground anywhere: no score
    ('a.png', 1.0, 1.0, nan)
    """
    names = list(names) if names is not None else [str(i) for i in range(len(truth))]
    rows = []
    for name, t, p in zip(names, truth, preds, strict=True):
        rows.append({"image": name} | scores_from_confusion(confusion(p, t, len(class_names)), class_names))
    return rows


def fit_target(targets: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Centre-crop ``(B, H, W)`` targets to the logits' size (unpadded nets return smaller maps)."""
    height, width = logits.shape[-2:]
    top, left = (targets.shape[-2] - height) // 2, (targets.shape[-1] - width) // 2
    return targets[..., top : top + height, left : left + width]


# ----- loading --------------------------------------------------------------------------------
class SegmentationLoader:
    """``(images, masks)`` batches with joint augmentation: ``transform.pair`` moves image and mask together.

    The protocol of :class:`~cnnlab.data.loader.TensorLoader` (``batches(epoch, start)``, ``len``),
    seeded per ``(seed, epoch, batch)`` so a resumed run sees the same patches. ``repeats`` passes
    over the images make one epoch (several random patches per image on tiny datasets). Masks come
    out as int64; images as the transform leaves them (uint8 without one).

    >>> images, masks = torch.zeros(5, 1, 8, 8, dtype=torch.uint8), torch.ones(5, 8, 8, dtype=torch.uint8)
    >>> loader = SegmentationLoader(images, masks, batch_size=4, shuffle=True, repeats=2,
    ...                             transform=Compose([RandomCrop(4), Rescale()]))
    >>> len(loader), [tuple(x.shape) for x, _ in loader.batches()][-1], next(loader.batches())[1].dtype
    (3, (2, 1, 4, 4), torch.int64)
    """

    def __init__(
        self,
        images: torch.Tensor,
        masks: torch.Tensor,
        batch_size: int = 4,
        shuffle: bool = False,
        seed: int = 0,
        transform: Compose | None = None,
        repeats: int = 1,
    ) -> None:
        if len(images) != len(masks):
            raise DataError(f"images and masks differ in length: {len(images)} vs {len(masks)}", where="loader")
        if repeats < 1:
            raise ConfigError(f"repeats must be >= 1. Received: repeats={repeats}", where="SegmentationLoader")
        self.images, self.masks = images, masks
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.transform, self.repeats = transform, repeats

    def __len__(self) -> int:
        return -(-len(self.images) * self.repeats // self.batch_size)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of ``epoch`` from batch number ``start`` on (same patches every time)."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        n = len(self.images)
        order = torch.cat(
            [torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n) for _ in range(self.repeats)]
        )
        for i in range(start, len(self)):
            index = order[i * self.batch_size : (i + 1) * self.batch_size]
            x, y = self.images[index], self.masks[index]  # (b, C, H, W), (b, H, W)
            if self.transform is not None:
                x, y = self.transform.pair(
                    x, y, torch.Generator().manual_seed(hash((self.seed, epoch, i)) & 0x7FFFFFFF)
                )
            yield x, y.long()


# ----- inference ------------------------------------------------------------------------------
def predict_tiled(
    model: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    tile: int = 256,
    margin: int = 32,
    pad_mode: Literal["reflect", "constant"] = "reflect",
) -> torch.Tensor:
    """Overlap-tile inference (U-Net paper, Fig. 2): logits ``(B, K, H, W)`` for images of any size.

    The image is mirrored by ``margin`` at its borders and cut into ``tile`` x ``tile`` windows
    overlapping by ``2 * margin``; each window contributes only its centre, where the network saw
    ``margin`` pixels of context on every side. An unpadded ("valid") net returns a smaller map per
    tile; its trim is then the margin (when larger). For a 'same'-padded net keep ``tile`` and
    ``margin`` multiples of ``2**depth`` so every window sits on the pooling grid.

    >>> from cnnlab.models import create_model
    >>> net = create_model("unet", num_classes=2, in_chans=1, depth=2, base_width=4, padding="same").eval()
    >>> predict_tiled(net, torch.rand(1, 1, 50, 70), tile=32, margin=8).shape  # 50x70 fits no 2**depth grid
    torch.Size([1, 2, 50, 70])
    """
    height, width = images.shape[-2:]
    probe = model(images.new_zeros(1, images.shape[1], tile, tile))  # (1, K, tile - 2 trim, ...): the trim
    out_size = probe.shape[-1]
    trim = (tile - out_size) // 2
    keep = max(margin, trim)
    core = tile - 2 * keep
    if core < 1:
        raise ConfigError(
            f"tile {tile} leaves no centre with margin {keep}", where="predict_tiled", fix="use a larger tile"
        )
    rows, cols = -(-height // core), -(-width // core)
    padded = _pad(images, keep, rows * core + keep - height, keep, cols * core + keep - width, pad_mode)
    out = torch.empty(len(images), probe.shape[1], rows * core, cols * core, dtype=probe.dtype)
    for r in range(rows):
        for c in range(cols):
            window = padded[..., r * core : r * core + tile, c * core : c * core + tile]
            logits = model(window)  # (B, K, tile - 2 trim, ...)
            out[..., r * core : (r + 1) * core, c * core : (c + 1) * core] = logits[
                ..., keep - trim : keep - trim + core, keep - trim : keep - trim + core
            ]
    return out[..., :height, :width]


def _pad(
    x: torch.Tensor, top: int, bottom: int, left: int, right: int, mode: Literal["reflect", "constant"] = "reflect"
) -> torch.Tensor:
    """Pad ``(B, C, H, W)``; mirroring repeats itself where the pad exceeds the image (tiny images)."""
    if mode == "constant":
        return F.pad(x, (left, right, top, bottom))
    while top or bottom or left or right:
        height, width = x.shape[-2:]
        if height < 2 or width < 2:  # nothing to mirror
            return F.pad(x, (left, right, top, bottom), mode="replicate")
        step = (min(left, width - 1), min(right, width - 1), min(top, height - 1), min(bottom, height - 1))
        x = F.pad(x, step, mode="reflect")
        left, right, top, bottom = left - step[0], right - step[1], top - step[2], bottom - step[3]
    return x


# ----- trainer --------------------------------------------------------------------------------
class SegmentationTrainer(Trainer):
    """The :class:`~cnnlab.train.trainer.Trainer` with per-pixel steps.

    Logs ``loss``, ``acc`` (pixel accuracy, so the progress bar shows it) and ``dice`` (mean over
    classes) per training batch; :meth:`evaluate` accumulates one confusion matrix and returns
    exact pixel accuracy, IoU and Dice per class and their means. ``tile`` switches validation and
    prediction to :func:`predict_tiled` (needed for unpadded nets).

    >>> from cnnlab.models import create_model
    >>> net = create_model("unet", num_classes=2, in_chans=1, depth=1, base_width=4, padding="same")
    >>> x, y = torch.rand(4, 1, 8, 8), (torch.rand(4, 8, 8) > 0.5).long()
    >>> trainer = SegmentationTrainer(net, TrainConfig(epochs=1, batch_size=2), class_names=["bg", "fg"])
    >>> sorted(trainer.fit(SegmentationLoader(x, y, batch_size=2))[0])
    ['acc', 'dice', 'epoch', 'loss', 'lr', 'time_s']
    >>> sorted(trainer.evaluate(SegmentationLoader(x, y, batch_size=2)))
    ['acc', 'dice', 'dice_bg', 'dice_fg', 'iou', 'iou_bg', 'iou_fg', 'loss']
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig | None = None,
        *,
        loss_fn: LossFn | None = None,
        callbacks: Sequence[Callback] = (),
        class_names: Sequence[str] = ("background", "foreground"),
        tile: int | None = None,
        margin: int = 32,
    ) -> None:
        super().__init__(model, config, loss_fn=loss_fn or cross_entropy, callbacks=callbacks)
        self.class_names = list(class_names)
        self.tile, self.margin = tile, margin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Float32 logits for a float image batch (channels_last and bf16 as planned)."""
        x, _ = self.prepare((x, x))
        with self.autocast():
            return self.model(x).float()

    def segment(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for whole images: one pass, or overlap-tiles when ``tile`` is set."""
        return self.forward(x) if self.tile is None else predict_tiled(self.forward, x, self.tile, self.margin)

    def train_step(self, batch: Batch) -> Logs:
        logits = self.forward(batch[0])  # (B, K, H', W')
        y = fit_target(batch[1], logits)
        loss = self.loss_fn(logits, y)
        self.optimise(loss)
        counts = confusion(logits.detach().argmax(1), y, logits.shape[1])
        hit, true, pred = counts.diagonal(), counts.sum(1), counts.sum(0)
        present = (true + pred) > 0
        dice = (2 * hit[present] / (true + pred)[present]).mean()
        return {"loss": loss.detach(), "acc": hit.sum() / counts.sum(), "dice": dice}

    def eval_step(self, batch: Batch) -> Logs:
        """Loss and the batch's confusion matrix (summed by :meth:`evaluate`)."""
        logits = self.segment(batch[0])
        y = fit_target(batch[1], logits)
        return {"loss": self.loss_fn(logits, y), "confusion": confusion(logits.argmax(1), y, logits.shape[1])}

    def predict_step(self, batch: Batch) -> torch.Tensor:
        return self.segment(batch[0])

    def evaluate(self, data: Any) -> dict[str, float]:
        """Exact pixel accuracy, IoU and Dice (per class and mean) over ``data``, and the mean loss."""
        was_training = self.model.training
        self.model.eval()
        counts = torch.zeros(len(self.class_names), len(self.class_names), dtype=torch.int64)
        loss, seen = 0.0, 0
        with torch.inference_mode():
            for batch in data.batches():
                logs = self.eval_step(batch)
                counts += logs["confusion"]
                loss += logs["loss"].item() * len(batch[0])
                seen += len(batch[0])
        self.model.train(was_training)
        return {"loss": loss / max(seen, 1)} | scores_from_confusion(counts, self.class_names)


# ----- figures --------------------------------------------------------------------------------
def write_overlay_grid(
    images: torch.Tensor,
    truth: torch.Tensor,
    preds: torch.Tensor,
    path: str | Path,
    class_names: Sequence[str],
    titles: Sequence[str] | None = None,
) -> Path:
    """A PNG with one row per image: image | truth | prediction | error overlay (errors in red).

    ``images`` uint8 ``(N, C, H, W)``; ``truth`` and ``preds`` class indices ``(N, H, W)``. Each row is
    titled with ``titles[i]`` and the image's pixel accuracy and mean Dice.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "grid.png"
    >>> masks = torch.zeros(2, 16, 16, dtype=torch.long); masks[:, 4:12, 4:12] = 1
    >>> write_overlay_grid(torch.zeros(2, 1, 16, 16, dtype=torch.uint8), masks, 1 - masks, out, ["bg", "fg"]).is_file()
    True
    """

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    scores = per_image_scores(truth, preds, class_names, titles)
    k = max(len(class_names) - 1, 1)
    fig, axes = plt.subplots(len(images), 4, figsize=(10, 2.7 * len(images)), squeeze=False)
    for row, (image, t, p, score) in enumerate(zip(images, truth, preds, scores, strict=True)):
        gray = image.float().mean(0).numpy() / 255  # (H, W)
        error = np.stack([gray] * 3, axis=-1)
        wrong = (t != p).numpy()
        error[wrong] = 0.4 * error[wrong] + 0.6 * np.array([1.0, 0.0, 0.0])
        panels = [(gray, "gray", 1.0), (t.numpy(), "viridis", k), (p.numpy(), "viridis", k), (error, None, 1.0)]
        for ax, (picture, cmap, top), label in zip(
            axes[row], panels, ("image", "truth", "prediction", "errors (red)"), strict=True
        ):
            ax.imshow(picture, cmap=cmap, vmin=0, vmax=top, interpolation="nearest")
            ax.set_axis_off()
            ax.set_title(label, fontsize=8)
        axes[row][0].set_title(f"{score['image']}  acc {score['acc']:.3f}  Dice {score['dice']:.3f}", fontsize=8)
    return save_figure(fig, path, dpi=90)


# ----- the run --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SegmentConfig:
    """What makes a segmentation run different from a classification run."""

    masks: str | None = None  # mask folder, paired with data.source by file stem
    num_classes: int = 2  # binary masks may hold {0, 1} or {0, 255}; more classes: indices 0..K-1
    classes: tuple[str, ...] | None = None  # class names (default background/foreground, or 0..K-1)
    loss: str = "bce_dice"  # ce | bce | dice | bce_dice | focal (BCE + Dice: thin structures such as membranes)
    crop: int | None = 256  # training patch side (None: whole images)
    repeats: int = 2  # random patches per image per epoch
    elastic: float = 0.0  # elastic deformation: displacement std in pixels (the paper: 10; 0: off)
    depth: int | None = None  # model options passed to the builder when set (unet: depth, base_width, padding)
    base_width: int | None = None  # None: the builder's default (unet in a segment run: UNET_RECIPE's 16)
    padding: Literal["same", "valid"] | None = "same"
    batch_norm: bool | None = None  # unet: BatchNorm after every 3x3 conv (None: UNET_RECIPE's, on)
    tile: int = 256  # overlap-tile inference window for predict (and validation of unpadded nets)
    margin: int = 32  # context each tile keeps on every side
    encoder_weights: str | None = None  # pretrained encoder (unet_lite0: efficientnet_lite0.imagenet or a path)


def _default_data() -> DataConfig:
    return DataConfig(source="", aug="segmentation", val_fraction=0.2)


def _default_train() -> TrainConfig:
    return TrainConfig(epochs=40, batch_size=4, eval_batch_size=2, lr=3e-3, monitor="val_dice")


@dataclass(frozen=True)
class SegmentRunConfig:
    """Everything a segmentation run is made of (``--config run.yaml`` holds the same, with ``task: segment``)."""

    task: Literal["segment"] = "segment"
    name: str | None = None
    data: DataConfig = field(default_factory=_default_data)
    model: ModelConfig = field(default_factory=lambda: ModelConfig(name="unet"))
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    train: TrainConfig = field(default_factory=_default_train)


def is_segment_config(path: str | Path) -> bool:
    """Whether a run YAML says ``task: segment`` (so ``--resume`` and ``--config`` pick the pipeline)."""
    try:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return False  # the loader reports a missing or broken file with its own message
    return isinstance(values, dict) and values.get("task") == "segment"


def load_segment_config(path: Path | None, overrides: dict[str, dict[str, Any]]) -> SegmentRunConfig:
    """A :class:`SegmentRunConfig` from YAML (else defaults) with per-section overrides (``None`` ignored).

    >>> load_segment_config(None, {"segment": {"loss": "dice"}, "train": {"epochs": 2}}).segment.loss
    'dice'
    """
    config = load_yaml(SegmentRunConfig, path) if path is not None else SegmentRunConfig()
    for section, values in overrides.items():
        if section == "run":
            config = replace(config, **values)
        elif section in ("data", "model", "segment", "train"):
            config = replace(config, **{section: replace(getattr(config, section), **values)})
    return config


def class_names(config: SegmentConfig) -> list[str]:
    """The configured class names, checked against ``num_classes``."""
    if config.classes is not None:
        if len(config.classes) != config.num_classes:
            raise ConfigError(
                f"{len(config.classes)} class names for {config.num_classes} classes",
                where="segment.classes",
                fix="give one name per class, in index order",
            )
        return list(config.classes)
    return ["background", "foreground"] if config.num_classes == 2 else [str(i) for i in range(config.num_classes)]


UNET_RECIPE: dict[str, Any] = {"base_width": 16, "batch_norm": True}
"""What a segmentation run's ``unet`` gets where the config is silent: the measured ISBI recipe
(docs/segmentation.md). ``create_model("unet")`` on its own stays the 2015 paper's network."""


def model_options(config: SegmentConfig, model_name: str) -> dict[str, Any]:
    """Builder keyword arguments: what the config sets (``depth``, ``base_width``, ``padding``,
    ``batch_norm``), over :data:`UNET_RECIPE` for ``unet``.

    >>> model_options(SegmentConfig(base_width=8), "unet")
    {'base_width': 8, 'batch_norm': True, 'padding': 'same'}
    """
    options = {
        "depth": config.depth,
        "base_width": config.base_width,
        "padding": config.padding,
        "batch_norm": config.batch_norm,
    }
    chosen = {k: v for k, v in options.items() if v is not None}
    return UNET_RECIPE | chosen if model_name == "unet" else chosen


def build_model(name: str, num_classes: int, in_chans: int, options: dict[str, Any], **extra: Any) -> nn.Module:
    """A registered segmentation model; an option its builder does not take is a :class:`ConfigError`.

    ``extra`` holds what only training needs (``weights=``, ``encoder_weights=``); a checkpoint is
    rebuilt from ``options`` alone and then loaded.
    """
    from cnnlab.models import model_entry

    if model_entry(name).task != "segment":
        raise ConfigError(
            f"'{name}' is a {model_entry(name).task} model", where="--model", fix="use unet or unet_lite0"
        )
    try:
        return create_model(name, num_classes=num_classes, in_chans=in_chans, **extra, **options)
    except TypeError as exc:
        where = "segment (depth/base_width/padding/batch_norm)"
        raise ConfigError(f"bad model option for '{name}': {exc}", where=where) from None


def train_transform(config: SegmentRunConfig, mean: Sequence[float], std: Sequence[float]) -> Compose:
    """Random patch, the augmentation preset, optional elastic warp, then normalisation (image only)."""
    steps = [RandomCrop(config.segment.crop)] if config.segment.crop else []
    steps += PRESETS.get(config.data.aug)(None).transforms
    if config.segment.elastic > 0:
        steps.append(ElasticDeform(sigma=config.segment.elastic))
    return Compose([*steps, Normalize(mean, std)])


def eval_transform(mean: Sequence[float], std: Sequence[float]) -> Compose:
    """uint8 -> normalised float; nothing random."""
    return Compose([Rescale(), Normalize(mean, std)])


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

    The held-out images are scored with the final model through :func:`predict_tiled` (the path
    ``cnnlab predict`` takes), and drawn into ``plots/heldout.png`` (image | truth | prediction | errors).
    """
    console = console or Console()
    run = (
        RunDir.open(resume)
        if resume is not None
        else RunDir.create(runs_dir, "segment", config.name or config.model.name)
    )
    save_yaml(config, run.config)
    cfg, seg = config.train, config.segment
    names = class_names(seg)
    train, held = load_pairs(config)
    for problem in train.problems:
        run.log(f"skipped {problem.path}: {problem.message}")
    if train.problems:
        console.print(f"[yellow]Skipped {len(train.problems)} file(s)[/yellow]; see {run.log_file}")
    _, channels, height, width = train.images.shape
    pixels = train.images.float() / 255.0  # (N, C, H, W)
    mean = tuple(pixels.mean(dim=(0, 2, 3)).tolist())
    std = tuple(max(s, 1e-3) for s in pixels.std(dim=(0, 2, 3)).tolist())
    loader = SegmentationLoader(
        train.images, train.targets, cfg.batch_size, True, cfg.seed, train_transform(config, mean, std), seg.repeats
    )
    evaluation = eval_transform(mean, std)
    val = SegmentationLoader(held.images, held.targets, cfg.eval_batch_size, transform=evaluation) if held else None

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
        callbacks=[ProgressBar(console=console), RunLogger(run), Checkpointer(run, cfg.monitor, extra=lambda: meta)],
        class_names=names,
        tile=seg.tile if unpadded else None,
        margin=seg.margin,
    )
    if resume is not None and run.last_checkpoint.is_file():
        trainer.load_state_dict(load_checkpoint(run.last_checkpoint))
        console.print(f"Resuming {run.path} at epoch {trainer.epoch + 1}, step {trainer.step_in_epoch}")
    sizes = f"{len(train)} train" + (f", {len(held)} held-out" if held else "")
    console.print(
        f"Training [bold]{config.model.name}[/bold] ({seg.loss} loss) on {sizes} image/mask pairs "
        f"({channels}x{height}x{width}), {seg.crop or 'whole'}-pixel patches."
    )
    console.print("Speed plan: " + "; ".join(trainer.plan.reasons))
    started = time.perf_counter()
    trainer.fit(loader, val)
    seconds = time.perf_counter() - started
    if trainer.stop_reason == "interrupted":
        console.print(f"[yellow]Interrupted.[/yellow] Checkpoint saved. Resume with --resume {run.path}")
        return {"interrupted": True, "run_dir": str(run.path)}
    results: dict[str, Any] = {"run_dir": str(run.path), "fit_seconds": round(seconds, 1), "epochs": trainer.epoch}
    if held is not None:
        tiler = SegmentationTrainer(model, cfg, class_names=names, tile=seg.tile, margin=seg.margin)
        tiled = SegmentationLoader(held.images, held.targets, cfg.eval_batch_size, transform=evaluation)
        preds = tiler.predict(tiled).argmax(1)  # (N, H, W)
        scores = scores_from_confusion(confusion(preds, held.targets, seg.num_classes), names)
        stems = [Path(p).name for p in held.paths]
        results |= {f"held_out_{k}": v for k, v in scores.items()}
        results["held_out_images"] = stems
        results["per_image"] = per_image_scores(held.targets, preds, names, stems)
        grid = write_overlay_grid(held.images, held.targets, preds, run.plots / "heldout.png", names, stems)
        per_class = "  ".join(f"{n} {scores[f'dice_{class_key(n)}']:.3f}" for n in names)
        console.print(
            f"Held-out pixel accuracy [bold green]{scores['acc']:.2%}[/bold green], mean IoU {scores['iou']:.3f}, "
            f"Dice per class: {per_class} ({len(held)} images; training took {seconds:.0f} s)"
        )
        console.print(f"Image | truth | prediction | errors: {grid}")
    atomic_write_text(run.path / "results.json", json.dumps(results, indent=2) + "\n")
    run.log("results: " + json.dumps({k: v for k, v in results.items() if k != "per_image"}))
    console.print(f"Run folder: {run.path}")
    return results


# ----- prediction from a checkpoint -----------------------------------------------------------
@dataclass
class SegmentationModel:
    """A trained segmentation model and what its checkpoint says about inputs and classes."""

    model: nn.Module
    classes: list[str]
    mean: list[float]
    std: list[float]
    channels: int
    tile: int
    margin: int

    @classmethod
    def load(cls, checkpoint: str | Path) -> SegmentationModel:
        """Rebuild the network from a ``cnnlab train --task segment`` checkpoint (``best.pt``/``last.pt``)."""
        state = load_checkpoint(checkpoint)
        if state.get("task") != "segment":
            raise ConfigError(
                "not a segmentation checkpoint",
                where=str(checkpoint),
                fix="pass checkpoints/best.pt of a `cnnlab train --task segment` run, or use --model/--weights",
            )
        seg = from_dict(SegmentConfig, state["config"]["segment"])
        channels = state["input_size"][0]
        model = build_model(state["model_name"], len(state["classes"]), channels, state["model_options"])
        model.load_state_dict(state["model"])
        return cls(model.eval(), state["classes"], state["mean"], state["std"], channels, seg.tile, seg.margin)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K, H, W)`` for uint8 images ``(B, C, H, W)`` of any size (overlap-tile)."""
        x = eval_transform(self.mean, self.std)(images)
        with torch.inference_mode():
            return predict_tiled(self.model, x, self.tile, self.margin)


def segmentation_checkpoint(path: str | Path) -> Path | None:
    """The checkpoint to use when ``path`` (a run folder or a ``.pt`` file) is a segmentation run, else None.

    A run folder gives its ``checkpoints/best.pt``; a checkpoint inside a run folder is judged by the
    run's ``config.yaml``; a lone ``.pt`` file by the ``task`` it stores.
    """
    path = Path(path)
    if path.is_dir():
        return path / "checkpoints" / "best.pt" if is_segment_config(path / "config.yaml") else None
    if path.suffix != ".pt" or not path.is_file():
        return None
    run_config = path.parent.parent / "config.yaml"
    if run_config.is_file():
        return path if is_segment_config(run_config) else None
    return path if load_checkpoint(path).get("task") == "segment" else None


def predict_masks(checkpoint: str | Path, images: Sequence[str | Path], out: str | Path) -> list[dict[str, Any]]:
    """Segment image files; writes ``<stem>_mask.png`` and ``<stem>_overlay.png`` into ``out``.

    Binary masks are written as 0/255, others as class indices. Returns per image the mask and
    overlay paths and the share of pixels per class.
    """
    from PIL import Image

    segmenter = SegmentationModel.load(checkpoint)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    colours = np.array([[0, 114, 178], [230, 159, 0], [0, 158, 115], [204, 121, 167], [213, 94, 0], [86, 180, 233]])
    results = []
    for path in map(Path, images):
        pixels = read_image(path, channels=segmenter.channels).copy()  # (H, W, C) uint8, writable for torch
        mask = segmenter(torch.from_numpy(pixels).permute(2, 0, 1)[None])[0].argmax(0).numpy().astype(np.uint8)
        scale = 255 if len(segmenter.classes) == 2 else 1
        mask_path, overlay_path = out / f"{path.stem}_mask.png", out / f"{path.stem}_overlay.png"
        _save_png(Image.fromarray(mask * scale), mask_path)
        rgb = np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels
        tint = colours[mask % len(colours)]  # (H, W, 3)
        _save_png(Image.fromarray((0.6 * rgb + 0.4 * tint).astype(np.uint8)), overlay_path)
        counts = np.bincount(mask.reshape(-1), minlength=len(segmenter.classes)) / mask.size
        shares = {name: round(float(c), 4) for name, c in zip(segmenter.classes, counts, strict=True)}
        results.append({"image": str(path), "mask": str(mask_path), "overlay": str(overlay_path), "shares": shares})
    return results


def _save_png(image: Any, path: Path) -> None:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
