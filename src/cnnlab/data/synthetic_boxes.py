"""A synthetic detection set: handwritten digits pasted on a black canvas, each with its tight box.

Fast to make, known exactly, and learnable on a laptop CPU in seconds, so detector tests and the
course's ladder demos need no download. Glyphs come from scikit-learn's bundled 8x8 digits
(:func:`sklearn_glyphs`, offline) or from MNIST IDX files (:func:`mnist_glyphs`). Every digit is cut
to its ink, scaled, and pasted where its box overlaps no earlier box by IoU 0.3 or more; its box is
the tight box of its own nonzero pixels after scaling. :func:`single_digit_canvases` puts exactly
one digit in each image (classification with localisation); :func:`write_synthetic` writes a set to
disk in a format :func:`~cnnlab.data.boxes.read_boxes` (and ``cnnlab train --task detect``) reads.

>>> glyphs, labels = sklearn_glyphs()
>>> data = digit_canvases(glyphs, labels, count=4, size=(64, 64), per_image=(1, 3), seed=0)
>>> data.images.shape, data.images.dtype, data.targets.shape[-1], data.class_names[:3]
(torch.Size([4, 1, 64, 64]), torch.uint8, 5, ['0', '1', '2'])
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.data.box_writers import write_coco, write_voc, write_yolo
from cnnlab.data.boxes import BoxDataset, BoxRecord, pad_targets
from cnnlab.data.datasets import load_mnist

DIGIT_NAMES = [str(d) for d in range(10)]
"""Class names of the digit sets: class index i is the digit i."""

MAX_IOU = 0.3
"""A digit is placed only where its box overlaps every earlier box of the image by IoU below this."""

PLACEMENT_TRIES = 100
"""Random positions tried for one digit before it is left out (then the whole image is drawn again)."""

IMAGE_TRIES = 50
"""Draws of one image before the canvas is declared too small for the digits asked for."""


@dataclass
class BoxTensors:
    """A detection set in memory: ``images`` uint8 (N, C, H, W), ``targets`` float32 (N, M, 5) rows
    ``[class, x1, y1, x2, y2]`` in pixels, padded with class -1 (what ``BoxDataset.to_tensors`` gives)."""

    images: torch.Tensor
    targets: torch.Tensor
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.images)


SKLEARN_DIGITS = Path("datasets") / "data" / "digits.csv.gz"
"""The file ``sklearn.datasets.load_digits`` reads, inside the installed scikit-learn package: 1,797 rows of
64 pixel values 0..16 and the digit. Read directly, because importing ``sklearn.datasets`` (scipy and all)
takes 2-6 s on the project's 2-core machines and the file takes 25 ms."""


def sklearn_glyphs(side: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 bundled 8x8 digits (no download), scaled to 0..255 and upsampled (bilinear) to
    ``side`` x ``side``: ``(glyphs uint8 (1797, side, side), labels int64 (1797,))``.

    >>> glyphs, labels = sklearn_glyphs(24)
    >>> glyphs.shape, glyphs.dtype, int(glyphs.max()), sorted(set(labels.tolist())) == list(range(10))
    ((1797, 24, 24), dtype('uint8'), 255, True)
    """
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    path = Path(spec.origin).parent / SKLEARN_DIGITS if spec is not None and spec.origin else None
    if path is None or not path.is_file():
        raise DataError(
            "scikit-learn's bundled digits were not found",
            where=str(path or "sklearn"),
            fix="pip install scikit-learn (a dev dependency), or use mnist_glyphs with MNIST IDX files",
        )
    table = np.loadtxt(path, delimiter=",")  # (1797, 65): 8x8 pixels then the label
    small = np.rint(table[:, :64].reshape(-1, 8, 8) * (255 / 16)).astype(np.uint8)  # 0..16 -> 0..255
    glyphs = np.stack([np.asarray(Image.fromarray(g).resize((side, side), Image.Resampling.BILINEAR)) for g in small])
    return glyphs, table[:, 64].astype(np.int64)


def mnist_glyphs(root: str | Path, split: str = "train", limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST digits from IDX files in ``root`` (see :func:`~cnnlab.data.datasets.load_mnist`): ``(glyphs uint8
    (N, 28, 28), labels int64 (N,))``, the first ``limit`` of them when given."""
    data = load_mnist(root, split)
    end = len(data) if limit is None else limit
    return data.images[:end, 0].numpy(), data.targets[:end].numpy().astype(np.int64)


def _ink_crop(glyph: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(glyph)
    return glyph[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def _scaled(glyph: np.ndarray, factor: float, size: tuple[int, int]) -> np.ndarray:
    """The glyph cut to its ink and resized by ``factor`` (shrunk further if it would not fit the canvas)."""
    ink = _ink_crop(glyph)
    factor = min(factor, size[0] / ink.shape[0], size[1] / ink.shape[1])
    out_h, out_w = max(1, round(ink.shape[0] * factor)), max(1, round(ink.shape[1] * factor))
    scaled = np.asarray(Image.fromarray(ink).resize((out_w, out_h), Image.Resampling.BILINEAR))
    if not scaled.any():
        raise ConfigError(
            f"a digit scaled by {factor:.3g} to {out_w}x{out_h} pixels has no ink left",
            where="digit_canvases",
            fix="use a larger scale",
        )
    return scaled


def _iou(box: np.ndarray, others: list[np.ndarray]) -> float:
    if not others:
        return 0.0
    rest = np.stack(others)  # (K, 4)
    low, high = np.maximum(box[:2], rest[:, :2]), np.minimum(box[2:], rest[:, 2:])
    inter = np.clip(high - low, 0, None).prod(1)
    area = (box[2:] - box[:2]).prod() + (rest[:, 2:] - rest[:, :2]).prod(1) - inter
    return float((inter / area).max())


def _one_canvas(
    glyphs: np.ndarray,
    labels: np.ndarray,
    count: int,
    size: tuple[int, int],
    scale: tuple[float, float],
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[list[float]]] | None:
    """One canvas with ``count`` digits, or None when some digit found no free place."""
    canvas = np.zeros(size, np.uint8)
    boxes: list[np.ndarray] = []
    rows: list[list[float]] = []
    for _ in range(count):
        pick = int(rng.integers(len(glyphs)))
        digit = _scaled(glyphs[pick], float(rng.uniform(*scale)), size)
        ink_rows, ink_cols = np.nonzero(digit)
        for _ in range(PLACEMENT_TRIES):
            top = int(rng.integers(size[0] - digit.shape[0] + 1))
            left = int(rng.integers(size[1] - digit.shape[1] + 1))
            box = np.array(
                [left + ink_cols.min(), top + ink_rows.min(), left + ink_cols.max() + 1, top + ink_rows.max() + 1],
                dtype=np.float64,
            )
            if _iou(box, boxes) < MAX_IOU:
                break
        else:
            return None
        region = canvas[top : top + digit.shape[0], left : left + digit.shape[1]]
        np.maximum(region, digit, out=region)  # overlapping strokes keep the brighter ink
        boxes.append(box)
        rows.append([float(labels[pick]), *box.tolist()])
    return canvas, rows


def digit_canvases(
    glyphs: np.ndarray,
    glyph_labels: np.ndarray,
    count: int,
    size: tuple[int, int] = (128, 128),
    per_image: tuple[int, int] = (1, 4),
    scale: tuple[float, float] = (1.0, 2.5),
    seed: int = 0,
    channels: int = 1,
) -> BoxTensors:
    """``count`` canvases of ``size`` (height, width), each with ``per_image`` (inclusive range) digits drawn
    from ``glyphs`` (uint8 (N, h, w), ink nonzero) at ``scale`` times their ink size, at random places where
    boxes overlap below IoU :data:`MAX_IOU`. ``channels=3`` repeats the gray image. Seeded: the same
    arguments give the same set.

    >>> glyphs, labels = sklearn_glyphs()
    >>> data = digit_canvases(glyphs, labels, count=2, size=(48, 48), per_image=(2, 2), seed=1)
    >>> ((data.targets[..., 0] >= 0).sum(1)).tolist()  # two digits in each image
    [2, 2]
    """
    low, high = per_image
    if not 0 <= low <= high or count < 0 or min(scale) <= 0 or channels not in (1, 3):
        raise ConfigError(
            f"need 0 <= per_image[0] <= per_image[1], count >= 0, scale > 0 and 1 or 3 channels. Received: "
            f"per_image={per_image}, count={count}, scale={scale}, channels={channels}",
            where="digit_canvases",
        )
    blank = np.flatnonzero(glyphs.reshape(len(glyphs), -1).max(1) == 0) if len(glyphs) else np.array([0])
    if len(blank):
        raise ConfigError(
            f"glyph {int(blank[0])} has no ink (of {len(glyphs)} glyphs)",
            where="digit_canvases",
            fix="pass uint8 glyphs with the digit nonzero on a zero background, at least one",
        )
    rng = np.random.default_rng(seed)
    images = np.zeros((count, *size), np.uint8)
    targets = []
    for i in range(count):
        wanted = int(rng.integers(low, high + 1))
        for _ in range(IMAGE_TRIES):
            made = _one_canvas(glyphs, glyph_labels, wanted, size, scale, rng)
            if made is not None:
                break
        else:
            raise ConfigError(
                f"could not place {wanted} digits on a {size[1]}x{size[0]} canvas with box IoU below {MAX_IOU}",
                where="digit_canvases",
                fix="use a larger size, fewer digits per image or a smaller scale",
            )
        images[i], rows = made
        targets.append(torch.tensor(rows, dtype=torch.float32).reshape(-1, 5))
    x = torch.from_numpy(images)[:, None].repeat(1, channels, 1, 1)  # (N, C, H, W)
    return BoxTensors(x, pad_targets(targets), list(DIGIT_NAMES))


def single_digit_canvases(
    glyphs: np.ndarray,
    glyph_labels: np.ndarray,
    count: int,
    size: tuple[int, int] = (64, 64),
    scale: tuple[float, float] = (1.0, 2.5),
    empty: float = 0.0,
    seed: int = 0,
    channels: int = 1,
) -> BoxTensors:
    """Exactly one digit per image (M = 1), for classification with localisation; with ``empty`` > 0 that
    fraction of the images (drawn at random) holds no digit, the course's p_c = 0 case (class -1 row).

    >>> glyphs, labels = sklearn_glyphs()
    >>> data = single_digit_canvases(glyphs, labels, count=3, size=(32, 32), seed=0)
    >>> data.targets.shape
    torch.Size([3, 1, 5])
    """
    if not 0.0 <= empty <= 1.0:
        raise ConfigError(f"empty must be a fraction 0..1. Received: empty={empty}", where="single_digit_canvases")
    data = digit_canvases(glyphs, glyph_labels, count, size, (1, 1), scale, seed, channels)
    blank = torch.rand(count, generator=torch.Generator().manual_seed(seed)) < empty
    data.images[blank] = 0
    data.targets[blank] = torch.tensor([-1.0, 0, 0, 0, 0])
    return data


def localisation_targets(data: BoxTensors) -> torch.Tensor:
    """The course's classification-with-localisation vectors ``y = [p_c, b_x, b_y, b_h, b_w, c_1 .. c_K]``
    (N, 5 + K) from one-box targets: ``b_x, b_y`` the box centre and ``b_h, b_w`` its size as fractions of
    the image, ``c`` one-hot; an image without an object has p_c = 0 and zeros elsewhere ("don't care").

    >>> data = BoxTensors(torch.zeros(2, 1, 10, 20, dtype=torch.uint8),
    ...                   torch.tensor([[[1.0, 2, 4, 6, 8]], [[-1.0, 0, 0, 0, 0]]]), ["a", "b"])
    >>> localisation_targets(data).double().round(decimals=3).tolist()  # b_x = 4/20, b_y = 6/10, b_h = 4/10, ...
    [[1.0, 0.2, 0.6, 0.4, 0.2, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]
    """
    if data.targets.shape[1] != 1:
        raise ConfigError(
            f"localisation targets need one box per image, these have up to {data.targets.shape[1]}",
            where="localisation_targets",
            fix="make the set with single_digit_canvases",
        )
    height, width = data.images.shape[-2:]
    label, x1, y1, x2, y2 = data.targets[:, 0].unbind(-1)
    present = label >= 0
    boxes = torch.stack([(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (y2 - y1) / height, (x2 - x1) / width], 1)
    one_hot = torch.zeros(len(data), len(data.class_names))
    one_hot[present, label[present].long()] = 1.0
    y = torch.cat([present.float()[:, None], boxes, one_hot], 1)
    return y * present.float()[:, None]


Format = Literal["yolo", "voc", "coco"]


def write_synthetic(
    folder: str | Path,
    format: Format = "yolo",
    train: int = 512,
    val: int = 128,
    size: tuple[int, int] = (128, 128),
    per_image: tuple[int, int] = (1, 4),
    glyphs: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int = 0,
) -> Path:
    """Make a train and a val set of digit canvases (glyphs: ``(glyphs, labels)``, default
    :func:`sklearn_glyphs`) and write them as PNGs in ``format``; returns what ``--data`` takes: the
    data.yaml (YOLO), the folder (VOC, splits in ``ImageSets/Main``), or ``annotations/train.json``
    (COCO, beside ``annotations/val.json``, images in ``images/train`` and ``images/val``).

    >>> import tempfile
    >>> path = write_synthetic(Path(tempfile.mkdtemp()) / "digits", train=3, val=2, size=(32, 32), per_image=(1, 1))
    >>> path.name, sorted(p.name for p in (path.parent / "images").iterdir())
    ('data.yaml', ['train', 'val'])
    """
    if format not in ("yolo", "voc", "coco"):
        raise ConfigError(f"unknown format {format!r}", where="write_synthetic", fix="use yolo, voc or coco")
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise DataError("the output folder is not empty", where=str(folder), fix="choose a new folder")
    source, labels = glyphs if glyphs is not None else sklearn_glyphs()
    folder.parent.mkdir(parents=True, exist_ok=True)
    pngs = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.png."))
    try:
        splits = {}
        for offset, (split, count) in enumerate((("train", train), ("val", val))):
            data = digit_canvases(source, labels, count, size, per_image, seed=seed + offset)
            splits[split] = _save_pngs(data, pngs / split, prefix=f"{split}_")
        if format == "yolo":
            return write_yolo(splits, folder)
        if format == "voc":
            return write_voc(splits, folder)
        for split, dataset in splits.items():
            write_coco(dataset, folder / "annotations" / f"{split}.json", images_dir=folder / "images" / split)
        return folder / "annotations" / "train.json"
    finally:
        shutil.rmtree(pngs, ignore_errors=True)


def _save_pngs(data: BoxTensors, folder: Path, prefix: str) -> BoxDataset:
    """Save each canvas as a PNG and describe it as a :class:`BoxDataset` (what the writers take)."""
    folder.mkdir(parents=True)
    records = []
    height, width = data.images.shape[-2:]
    for i, (image, rows) in enumerate(zip(data.images, data.targets, strict=True)):
        path = folder / f"{prefix}{i:05d}.png"
        Image.fromarray(image[0].numpy() if image.shape[0] == 1 else image.permute(1, 2, 0).numpy()).save(path)
        rows = rows[rows[:, 0] >= 0]
        records.append(BoxRecord(str(path), height, width, rows[:, 1:], rows[:, 0].long()))
    return BoxDataset(records, list(data.class_names))
