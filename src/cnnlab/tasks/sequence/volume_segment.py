"""Grey/white-matter segmentation of one 3-D scan with a 3D U-Net trained on patches, scored on held-out slabs.

One subject (the MNI152 T1 template and its grey/white-matter probability maps) is all there is, so the
split is spatial: :func:`~cnnlab.data.volumes.slab_split` holds out the middle block of slices along
``config.axis`` (axis 2, inferior to superior in the RAS-oriented MNI arrays: a stack of axial slices),
training patches come only from the two outer slabs (:class:`PatchSource`), and the held-out slab is
segmented on its own by :func:`segment_volume` (overlapping tiles, logits averaged) and scored with Dice
per class (:func:`confusion_matrix`, :func:`dice_scores`). Labels are 0 other, 1 grey matter, 2 white
matter (:func:`~cnnlab.data.volumes.tissue_labels`).

:func:`load_tissue_volume` reads the T1 / GM / WM files; :func:`train_volume_segmentation` makes the run
folder ``runs/sequence/unet3d-<n>`` (``config.yaml``, ``metrics.csv``, ``log.txt``, checkpoints,
``results.json`` and ``plots/heldout_slices.png``). The loss is cross-entropy plus soft Dice
(:func:`dice_ce_loss`).

>>> logits = torch.tensor([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0]]).T.reshape(1, 2, 3, 1, 1)
>>> target = torch.tensor([0, 1, 1]).reshape(1, 3, 1, 1)
>>> dice_scores(confusion_matrix(logits.argmax(1), target, 2)).tolist()
[0.6666666666666666, 0.6666666666666666]
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from torch import nn

from cnnlab.core.config import save_yaml, to_dict
from cnnlab.core.errors import ConfigError, DataError
from cnnlab.core.rundir import RunDir, atomic_write_text
from cnnlab.data.augment import Compose
from cnnlab.data.volume_augment import Flip3D, Intensity
from cnnlab.data.volumes import (
    VOLUME_SUFFIXES,
    Slabs,
    check_same_grid,
    random_patches,
    read_volume,
    slab_split,
    tissue_labels,
)
from cnnlab.models import create_model
from cnnlab.report.figures import save_figure, subplots
from cnnlab.train.callbacks import run_callbacks
from cnnlab.train.config import TrainConfig
from cnnlab.train.trainer import Batch, Callback, Logs, Trainer

CLASSES = ("other", "grey matter", "white matter")
"""Label names of :func:`~cnnlab.data.volumes.tissue_labels` (0, 1, 2)."""

HELDOUT_FIGURE = "heldout_slices.png"
"""The figure under ``plots/``: T1 | truth | prediction for three slices of the held-out slab."""

_PATTERNS = {"t1": "_t1_", "gm": "_gm_", "wm": "_wm_"}


@dataclass(frozen=True)
class VolumeSegmentConfig:
    """Settings of one volume-segmentation run (written into the run folder as ``config.yaml``).

    ``patch``: side of the cubic training patches and inference tiles (a multiple of ``2**depth``);
    ``overlap``: voxels shared by neighbouring inference tiles (half of it is dropped from each inner tile
    side, see :func:`segment_volume`; None: a quarter of ``patch``); ``foreground``: share of patches centred
    on a tissue voxel; ``threshold``: what :func:`~cnnlab.data.volumes.tissue_labels` needs to call a voxel
    tissue; ``batch_norm``: BatchNorm in the U-Net; ``augment``: a left-right flip and a small intensity change
    of each patch; ``ema_decay``: the held-out slab is segmented with an exponential moving average of the
    weights (None: the last weights).

    The defaults are a CPU budget: 640 patches of 32^3 (40 epochs x 16, AdamW at a constant ``lr``) through a
    depth-3, width-8 net without BatchNorm (1.19 M parameters). BatchNorm is off because over batches of 4
    patches (some nearly all air) the statistics it trains with are far from the running ones it segments with:
    with it, held-out Dice on the MNI152 template ranged from 0.47 to 0.93 (GM) between runs and even the
    training slabs were segmented badly in eval mode; without it the score rose steadily (0.93 GM, 0.96 WM after
    640 patches). Width 16 and 48^3 patches cost 2-3x as much per patch and scored no better for the same
    patches; a one-cycle schedule peaking at 3e-3 scored far lower.

    >>> VolumeSegmentConfig(patch=20)
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.ConfigError: patch must be a multiple of 8 (2**depth). Received: patch=20 \
[VolumeSegmentConfig]. Fix: use patch=16 or 24
    """

    patch: int = 32
    patches_per_epoch: int = 16
    epochs: int = 40
    batch_size: int = 4
    lr: float = 1e-3
    base_width: int = 8
    depth: int = 3
    held_fraction: float = 0.25
    axis: int = 2
    seed: int = 0
    threshold: float = 0.5
    overlap: int | None = None  # None: patch // 4
    foreground: float = 2 / 3
    batch_norm: bool = False
    augment: bool = True
    ema_decay: float | None = 0.95

    def __post_init__(self) -> None:
        where = "VolumeSegmentConfig"
        for name in ("patch", "patches_per_epoch", "epochs", "batch_size", "base_width", "depth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a whole number >= 1. Received: {name}={value!r}", where=where)
        multiple = 2**self.depth
        if self.patch % multiple:
            lower = max(multiple, self.patch // multiple * multiple)
            raise ConfigError(
                f"patch must be a multiple of {multiple} (2**depth). Received: patch={self.patch}",
                where=where,
                fix=f"use patch={lower} or {lower + multiple}",
            )
        if self.overlap is not None and not 0 <= self.overlap < self.patch:
            raise ConfigError(f"overlap must be in [0, patch). Received: overlap={self.overlap}", where=where)
        if self.axis not in (0, 1, 2):
            raise ConfigError(f"axis must be 0, 1 or 2. Received: axis={self.axis}", where=where)
        for name, low, high in (("held_fraction", 0.0, 1.0), ("threshold", 0.0, 1.0), ("foreground", 0.0, 1.0)):
            value = getattr(self, name)
            if not low <= value <= high or (name == "held_fraction" and value in (low, high)):
                raise ConfigError(f"{name} must be between {low} and {high}. Received: {value}", where=where)
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be > 0. Received: lr={self.lr}", where=where, fix="try 1e-3")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ConfigError(f"ema_decay must be in (0, 1) or None. Received: {self.ema_decay}", where=where)

    @property
    def tile_overlap(self) -> int:
        """``overlap``, or a quarter of the patch when it is None."""
        return self.patch // 4 if self.overlap is None else self.overlap


# ----- data ------------------------------------------------------------------------------------------


def _find(folder: Path, key: str) -> Path:
    pattern = _PATTERNS[key]
    found = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and pattern in p.name.lower() and p.name.lower().endswith(VOLUME_SUFFIXES)
    )
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        raise DataError(
            f"{what} {key.upper()} volume files with '{pattern}' in the name"
            + (f" ({', '.join(p.name for p in found)})" if found else ""),
            where=str(folder),
            fix=f"put one .nii/.nii.gz/.npy file named like *{pattern}* there, or pass {key}=<path>",
        )
    return found[0]


def load_tissue_volume(
    folder: str | Path | None = None,
    *,
    t1: str | Path | None = None,
    gm: str | Path | None = None,
    wm: str | Path | None = None,
    threshold: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The T1 scan (float32 ``(D, H, W)``, z-scored), its tissue labels (int64: 0 other, 1 GM, 2 WM) and ``info``.

    Files come from ``folder`` (the one whose name holds ``_t1_``, ``_gm_`` and ``_wm_``, as in
    ``shared/data/mni152-volumes``) or from explicit ``t1``/``gm``/``wm`` paths (these win). All three must lie
    on one grid (:func:`~cnnlab.data.volumes.check_same_grid`). The T1 is z-scored with the mean and standard
    deviation of its non-zero voxels (the MNI T1 is brain-extracted: zero outside the brain; a scan with no
    zeros uses all voxels), so the statistics need no labels and the air stays one value. ``info`` holds the
    paths, grid, orientation, the normalisation and the voxel count per class.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> grid = np.zeros((4, 4, 4), dtype=np.float32)
    >>> np.save(folder / "s_t1_.npy", grid + np.arange(4.0)[:, None, None])
    >>> np.save(folder / "s_gm_.npy", grid + 0.8 * (np.arange(4) == 1)[:, None, None])
    >>> np.save(folder / "s_wm_.npy", grid + 0.9 * (np.arange(4) >= 2)[:, None, None])
    >>> t1, labels, info = load_tissue_volume(folder)
    >>> labels[:, 0, 0].tolist(), info["counts"], round(float(t1[1:].mean()), 6)
    ([0, 1, 2, 2], [16, 16, 32], 0.0)
    """
    explicit = {"t1": t1, "gm": gm, "wm": wm}
    if folder is not None:
        root = Path(folder)
        if not root.is_dir():
            raise DataError(
                "volume folder not found", where=str(root), fix="pass the folder holding the T1/GM/WM files"
            )
    paths: dict[str, Path] = {}
    for key, given in explicit.items():
        if given is not None:
            paths[key] = Path(given)
        elif folder is None:
            raise ConfigError(
                f"no {key.upper()} file given", where="load_tissue_volume", fix="pass folder= or t1/gm/wm"
            )
        else:
            paths[key] = _find(root, key)
    volumes, infos = {}, {}
    for key, path in paths.items():
        volumes[key], infos[key] = read_volume(path)  # a missing or unreadable file: DataError naming it
    check_same_grid([str(p) for p in paths.values()], list(infos.values()))
    labels = tissue_labels(volumes["gm"], volumes["wm"], threshold)
    scan = volumes["t1"]
    inside = scan != 0
    inside = inside if inside.any() else np.ones_like(inside)
    mean, std = float(scan[inside].mean()), float(scan[inside].std())
    scan = ((scan - mean) / (std if std > 0 else 1.0)).astype(np.float32)
    info = {
        "paths": {k: str(p) for k, p in paths.items()},
        "shape": infos["t1"]["shape"],
        "zooms": infos["t1"]["zooms"],
        "orientation": infos["t1"]["orientation"],
        "normalise": {"mean": mean, "std": std, "voxels": "non-zero T1 voxels", "count": int(inside.sum())},
        "threshold": threshold,
        "classes": list(CLASSES),
        "counts": np.bincount(labels.ravel(), minlength=len(CLASSES)).tolist(),
    }
    return scan, labels, info


def _along(axis: int, index: slice | int) -> tuple[slice | int, ...]:
    """An index picking ``index`` along spatial ``axis`` of a (D, H, W) array and everything on the others."""
    parts: list[slice | int] = [slice(None)] * 3
    parts[axis] = index
    return tuple(parts)


class PatchSource:
    """Training batches of random patches from the training slabs only: ``(x (B, 1, p, p, p), y (B, p, p, p))``.

    Every epoch draws ``config.patches_per_epoch`` fresh patches (seeded by ``config.seed`` and the epoch, so a
    run repeats) with :func:`~cnnlab.data.volumes.random_patches` inside ``within`` (the training slabs along
    ``config.axis``), then augments them (a left-right flip of axis 0 and an intensity change) when
    ``config.augment`` is on.

    >>> volume, labels = np.zeros((8, 8, 20), np.float32), np.ones((8, 8, 20), np.int64)
    >>> source = PatchSource(volume, labels, VolumeSegmentConfig(patch=8, patches_per_epoch=6, batch_size=4), \
slab_split(20).train)
    >>> [tuple(x.shape) for x, y in source.batches(epoch=0)], len(source)
    ([(4, 1, 8, 8, 8), (2, 1, 8, 8, 8)], 2)
    """

    def __init__(
        self, volume: np.ndarray, labels: np.ndarray, config: VolumeSegmentConfig, within: Sequence[range]
    ) -> None:
        self.volume, self.labels = torch.as_tensor(volume), torch.as_tensor(labels)
        self.config, self.within = config, list(within)
        # axis 0 of the RAS MNI arrays is left-right: the one mirror that keeps anatomy plausible
        self.augment = Compose([Flip3D(axes=(2,)), Intensity()]) if config.augment else None

    def __len__(self) -> int:
        return math.ceil(self.config.patches_per_epoch / self.config.batch_size)

    def draw(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """All of ``epoch``'s patches, label patches and corners (``(n, 3)``, before augmentation)."""
        c = self.config
        generator = torch.Generator().manual_seed(c.seed * 1_000_003 + epoch)
        x, y, corners = random_patches(
            self.volume, self.labels, c.patch, c.patches_per_epoch, generator, self.within, c.axis, c.foreground
        )
        if self.augment is not None:
            x, y = self.augment.pair(x, y, generator)
        return x, y, corners

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[Batch]:
        x, y, _ = self.draw(epoch)
        b = self.config.batch_size
        for i in range(start, len(self)):
            yield x[i * b : (i + 1) * b], y[i * b : (i + 1) * b]


# ----- loss and scores ---------------------------------------------------------------------------------


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """``1 -`` the mean over classes of the soft Dice ``(2 sum(p t) + smooth) / (sum p + sum t + smooth)``, with
    ``p`` the softmax of ``logits`` ``(B, K, ...)`` and ``t`` the one-hot ``target`` ``(B, ...)``, summed over
    the whole batch (a class absent from the batch and not predicted scores about 1).

    >>> target = torch.tensor([[0, 1, 1]])  # (B, T): any number of spatial axes
    >>> round(float(soft_dice_loss(20.0 * F.one_hot(target, 2).movedim(-1, 1), target)), 4)
    0.0
    """
    classes = logits.shape[1]
    p = logits.float().softmax(1)
    t = F.one_hot(target.long(), classes).movedim(-1, 1).to(p.dtype)
    dims = [0, *range(2, p.ndim)]
    dice = (2 * (p * t).sum(dims) + smooth) / (p.sum(dims) + t.sum(dims) + smooth)
    return 1 - dice.mean()


def dice_ce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (mean over voxels) plus :func:`soft_dice_loss`: cross-entropy gives every voxel a
    gradient, soft Dice keeps the smaller tissue classes from drowning in background.

    >>> logits = torch.zeros(1, 3, 2, 2, 2)
    >>> round(float(dice_ce_loss(logits, torch.zeros(1, 2, 2, 2, dtype=torch.long))), 4)  # ln 3 + 1 - mean Dice
    1.7358
    """
    return F.cross_entropy(logits.float(), target.long()) + soft_dice_loss(logits, target)


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(K, K)`` int64 counts: row = true class, column = predicted class (over all voxels given).

    >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), 2).tolist()
    [[1, 1], [0, 1]]
    """
    index = target.reshape(-1).long() * num_classes + pred.reshape(-1).long()
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def dice_scores(counts: torch.Tensor) -> torch.Tensor:
    """Dice per class from a confusion matrix: ``2 TP / (true + predicted)`` (the F1 score of each class);
    NaN for a class neither present nor predicted.

    >>> dice_scores(torch.tensor([[1, 1], [0, 1]])).tolist()
    [0.6666666666666666, 0.6666666666666666]
    """
    counts = counts.double()
    hits, total = counts.diagonal(), counts.sum(0) + counts.sum(1)
    return torch.where(total > 0, 2 * hits / total.clamp(min=1), torch.full_like(hits, float("nan")))


# ----- inference -----------------------------------------------------------------------------------------


def _tile_starts(extent: int, patch: int, overlap: int) -> list[int]:
    """Tile starts along one axis: every ``patch - overlap`` voxels, the last one flush with the end."""
    stride = patch - overlap
    starts = list(range(0, max(extent - patch, 0) + 1, stride))
    if starts[-1] + patch < extent:
        starts.append(extent - patch)
    return starts


def _kept(start: int, patch: int, extent: int, margin: int) -> slice:
    """The part of a tile whose logits count: all but ``margin`` voxels at each side inside the volume."""
    low = margin if start > 0 else 0
    high = patch - margin if start + patch < extent else patch
    return slice(low, high)


@torch.inference_mode()
def segment_volume(
    model: nn.Module, volume: np.ndarray | torch.Tensor, patch: int, overlap: int, batch_size: int = 8
) -> torch.Tensor:
    """Float32 logits ``(K, D, H, W)`` of ``model`` over a ``(D, H, W)`` or ``(C, D, H, W)`` volume, tile by tile.

    Cubic tiles of ``patch`` step by ``patch - overlap`` along each axis (the last one flush with the end, so
    every voxel is covered). Each tile keeps its logits except ``overlap // 2`` voxels at each side that lies
    inside the volume (there a 'same'-padded net sees the tile's zero padding instead of the neighbouring
    voxels); where kept parts overlap (next to the last tile of an axis) the logits are averaged. For a net
    whose receptive field reaches at most ``overlap // 2`` voxels the result equals one pass over the whole
    volume. A side shorter than ``patch`` is padded by repeating its edge voxels and cropped back. The model
    runs in eval mode (its mode is restored) on batches of ``batch_size`` tiles; ``.argmax(0)`` gives labels.

    >>> net = nn.Conv3d(1, 2, 3, padding=1)
    >>> volume = torch.randn(9, 10, 11)
    >>> tiled = segment_volume(net, volume, patch=6, overlap=2)
    >>> torch.allclose(tiled, net(volume[None, None])[0], atol=1e-5), tuple(tiled.shape)
    (True, (2, 9, 10, 11))
    """
    x = torch.as_tensor(volume, dtype=torch.float32)
    x = x[None] if x.ndim == 3 else x
    shape = tuple(x.shape[1:])
    short = [max(patch - n, 0) for n in shape]
    if any(short):
        pad = [v for n in reversed(short) for v in (0, n)]  # F.pad wants (W, H, D) pairs
        x = F.pad(x[None], pad, mode="replicate")[0]
    extents = tuple(x.shape[1:])
    margin = overlap // 2
    corners = [
        (d, h, w)
        for d in _tile_starts(extents[0], patch, overlap)
        for h in _tile_starts(extents[1], patch, overlap)
        for w in _tile_starts(extents[2], patch, overlap)
    ]
    was_training = model.training
    model.eval()
    sums = torch.zeros(0)  # (K, D, H, W) once the first batch says K
    counts = torch.zeros(extents)
    try:
        for i in range(0, len(corners), batch_size):
            chunk = corners[i : i + batch_size]
            tiles = torch.stack([x[:, d : d + patch, h : h + patch, w : w + patch] for d, h, w in chunk])
            out = model(tiles).float()
            if i == 0:
                sums = torch.zeros(out.shape[1], *extents)
            for logits, (d, h, w) in zip(out, chunk, strict=True):
                keep = [_kept(s, patch, n, margin) for s, n in zip((d, h, w), extents, strict=True)]
                box = tuple(slice(s + k.start, s + k.stop) for s, k in zip((d, h, w), keep, strict=True))
                sums[(slice(None), *box)] += logits[(slice(None), *keep)]
                counts[box] += 1
    finally:
        model.train(was_training)
    crop = tuple(slice(0, n) for n in shape)
    return (sums / counts)[(slice(None), *crop)]


# ----- training ------------------------------------------------------------------------------------------


class VolumeSegmentTrainer(Trainer):
    """The :class:`~cnnlab.train.trainer.Trainer` with per-voxel steps: :func:`dice_ce_loss`, and per batch
    ``acc`` (voxel accuracy) and ``dice`` (hard Dice, mean over the classes present or predicted). The model
    and batches use the ``channels_last_3d`` layout (oneDNN's faster 3-D convs on CPUs: about 2x for the
    3D U-Net's training step on the dev machine)."""

    def __init__(self, model: nn.Module, config: TrainConfig, *, callbacks: Sequence[Callback] = ()) -> None:
        super().__init__(
            model.to(memory_format=torch.channels_last_3d), config, loss_fn=dice_ce_loss, callbacks=callbacks
        )

    def prepare(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.to_device(batch[0]), self.to_device(batch[1])  # unchanged on the CPU
        return x.contiguous(memory_format=torch.channels_last_3d), y

    def train_step(self, batch: Batch) -> Logs:
        x, y = self.prepare(batch)
        logits = self.logits(self.model, x).float()
        loss = self.loss_fn(logits, y)
        self.optimise(loss)
        counts = confusion_matrix(logits.detach().argmax(1), y, logits.shape[1])
        dice = dice_scores(counts)
        return {"loss": loss.detach(), "acc": counts.diagonal().sum() / counts.sum(), "dice": dice.nanmean().float()}


def training_source(t1: np.ndarray, labels: np.ndarray, config: VolumeSegmentConfig) -> tuple[PatchSource, Slabs]:
    """The :class:`PatchSource` over the training slabs and the :class:`~cnnlab.data.volumes.Slabs` split."""
    if t1.shape != labels.shape or t1.ndim != 3:
        raise DataError(
            f"need a (D, H, W) scan and labels of the same shape, got {t1.shape} and {labels.shape}",
            where="train_volume_segmentation",
        )
    split = slab_split(t1.shape[config.axis], config.held_fraction)
    if max(len(r) for r in split.train) < config.patch:
        raise ConfigError(
            f"the training slabs ({len(split.train[0])} and {len(split.train[1])} slices along axis {config.axis}) "
            f"are thinner than a {config.patch}-voxel patch",
            where="VolumeSegmentConfig",
            fix="use a smaller patch or held_fraction",
        )
    return PatchSource(t1, labels, config, split.train), split


def plot_heldout(t1: np.ndarray, truth: np.ndarray, pred: np.ndarray, axis: int, offset: int, path: str | Path) -> Path:
    """T1 | truth | prediction for three slices (at 1/4, 1/2, 3/4) of a held-out slab along ``axis``; ``offset``:
    the slab's first slice in the whole volume (for the titles). Slices are drawn transposed with the origin
    at the bottom (for an axial RAS slice: right of the subject to the right, anterior up)."""
    from matplotlib.colors import ListedColormap

    depth = t1.shape[axis]
    picks = sorted({min(depth - 1, round(depth * f)) for f in (0.25, 0.5, 0.75)})
    colours = ListedColormap(["black", "#8c8c8c", "white"])
    fig, axes = subplots(len(picks), 3, figsize=(9, 3.0 * len(picks)), squeeze=False)
    for row, k in zip(axes, picks, strict=True):
        image, true, guess = (a[_along(axis, k)].T for a in (t1, truth, pred))
        hit = (true == guess)[true > 0].mean() if (true > 0).any() else float("nan")
        row[0].imshow(image, cmap="gray", origin="lower")
        row[1].imshow(true, cmap=colours, vmin=0, vmax=len(CLASSES) - 1, origin="lower", interpolation="nearest")
        row[2].imshow(guess, cmap=colours, vmin=0, vmax=len(CLASSES) - 1, origin="lower", interpolation="nearest")
        row[0].set_title(f"T1, slice {offset + k}")
        row[1].set_title("truth (grey = GM, white = WM)")
        row[2].set_title(f"prediction ({hit:.0%} of tissue right)")
        for ax in row:
            ax.axis("off")
    return save_figure(fig, path)


def train_volume_segmentation(
    t1: np.ndarray,
    labels: np.ndarray,
    config: VolumeSegmentConfig | None = None,
    runs_dir: str | Path = "runs",
    console: Console | None = None,
    name: str = "unet3d",
) -> dict[str, Any]:
    """Train a 3D U-Net on patches of the training slabs, segment the held-out slab, return and save the scores.

    ``t1`` and ``labels`` are ``(D, H, W)`` (as :func:`load_tissue_volume` gives them). The run folder is
    ``runs_dir/sequence/<name>-<n>``. No held-out voxel is in any training patch; the held-out slab is
    segmented on its own (the net sees no training slice at test time). Returns what ``results.json`` holds:
    Dice per class on the held-out slab (``dice_gm``, ``dice_wm``, ``dice_mean`` = their mean), voxel
    accuracy, ``fit_seconds``, ``inference_seconds``, the slabs and the run folder.

    >>> import tempfile
    >>> t1, labels = np.random.rand(8, 8, 24).astype(np.float32), np.random.randint(0, 3, (8, 8, 24))
    >>> config = VolumeSegmentConfig(patch=8, depth=1, base_width=2, epochs=1, patches_per_epoch=2)
    >>> out = train_volume_segmentation(t1, labels, config, tempfile.mkdtemp(), Console(quiet=True))
    >>> out["held_slices"], sorted(out["dice"])
    ([9, 15], ['grey matter', 'other', 'white matter'])
    """
    config = config or VolumeSegmentConfig()
    console = console or Console()
    t1 = np.asarray(t1, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    source, split = training_source(t1, labels, config)
    if labels.min() < 0 or labels.max() >= len(CLASSES):
        raise DataError(f"labels must be 0..{len(CLASSES) - 1}, got {labels.min()}..{labels.max()}", where=name)
    run = RunDir.create(runs_dir, "sequence", name)
    with run.lock():
        save_yaml(config, run.config)
        train_cfg = TrainConfig(
            epochs=config.epochs,
            batch_size=config.batch_size,
            lr=config.lr,
            schedule="constant",
            ema_decay=config.ema_decay,
            seed=config.seed,
            monitor="loss",
        )
        torch.manual_seed(config.seed)
        model = create_model(
            "unet3d",
            num_classes=len(CLASSES),
            in_chans=1,
            depth=config.depth,
            base_width=config.base_width,
            batch_norm=config.batch_norm,
        )
        meta = {"config": to_dict(config), "task": "sequence", "kind": "volume-segmentation", "classes": list(CLASSES)}
        callbacks = run_callbacks(run, console, "loss", lambda: meta)
        trainer = VolumeSegmentTrainer(model, train_cfg, callbacks=callbacks)
        held = split.held
        ranges = [[r.start, r.stop] for r in split.train]
        run.log(f"training slabs {ranges} and held-out slab [{held.start}, {held.stop}) along axis {config.axis}")
        console.print(
            f"Training a 3D U-Net (depth {config.depth}, width {config.base_width}, "
            f"{sum(p.numel() for p in model.parameters()):,} parameters) on {config.patches_per_epoch} "
            f"{config.patch}^3 patches per epoch from slices {ranges} along axis {config.axis}; "
            f"held out: [{held.start}, {held.stop})."
        )
        started = time.perf_counter()
        trainer.fit(source)
        fit_seconds = time.perf_counter() - started
        if trainer.stop_reason == "interrupted":
            console.print(f"[yellow]Interrupted.[/yellow] Checkpoint saved in {run.path}")
            return {"interrupted": True, "run_dir": str(run.path)}
        started = time.perf_counter()
        crop = _along(config.axis, slice(held.start, held.stop))
        logits = segment_volume(trainer.eval_model, t1[crop], config.patch, config.tile_overlap)
        pred = logits.argmax(0)
        inference_seconds = time.perf_counter() - started
        counts = confusion_matrix(pred, torch.from_numpy(labels[crop]), len(CLASSES))
        dice = dice_scores(counts).tolist()
        results: dict[str, Any] = {
            "run_dir": str(run.path),
            "fit_seconds": round(fit_seconds, 1),
            "inference_seconds": round(inference_seconds, 1),
            "epochs": trainer.epoch,
            "patches_seen": trainer.epoch * config.patches_per_epoch,
            "parameters": sum(p.numel() for p in model.parameters()),
            "axis": config.axis,
            "train_slices": ranges,
            "held_slices": [held.start, held.stop],
            "held_voxels": int(counts.sum()),
            "dice": dict(zip(CLASSES, dice, strict=True)),
            "dice_gm": dice[1],
            "dice_wm": dice[2],
            "dice_mean": float(np.nanmean(dice[1:])),
            "voxel_accuracy": float(counts.diagonal().sum() / counts.sum()),
            "confusion": counts.tolist(),
            "final_train_loss": trainer.history[-1]["loss"] if trainer.history else None,
        }
        plot_heldout(t1[crop], labels[crop], pred.numpy(), config.axis, held.start, run.plots / HELDOUT_FIGURE)
        atomic_write_text(run.path / "results.json", json.dumps(results, indent=2) + "\n")
        run.log("results: " + json.dumps({k: v for k, v in results.items() if k != "confusion"}))
    console.print(
        f"Held-out Dice: grey matter [bold]{dice[1]:.3f}[/bold], white matter [bold]{dice[2]:.3f}[/bold] "
        f"(training {fit_seconds:.0f} s, inference {inference_seconds:.1f} s). Run folder: {run.path}"
    )
    return results
