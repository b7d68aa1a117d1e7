"""Data sources: IDX files, class folders, image/mask folders, arrays / .npz, CSV lists; splits.

Every source gives a :class:`Dataset`: all images decoded once into one ``(N, C, H, W)`` uint8
tensor, with integer labels (classification) or ``(N, H, W)`` uint8 class-index masks
(segmentation). Unreadable files are skipped with a :class:`~cnnlab.data.cache.DataWarning` and
listed in ``Dataset.problems``; ``strict=True`` makes the first one fatal. Nothing is read from
disk after loading, so an epoch cannot fail on a bad file.

>>> import numpy as np
>>> data = from_arrays(np.zeros((6, 8, 8), np.uint8), [0, 0, 0, 1, 1, 1], classes=["cat", "dog"])
>>> data.images.shape, data.class_counts()
(torch.Size([6, 1, 8, 8]), {'cat': 3, 'dog': 3})
>>> train, val = data.split(0.34, seed=0)
>>> len(train), len(val), val.class_counts()
(4, 2, {'cat': 1, 'dog': 1})
"""

from __future__ import annotations

import csv
import math
import os
import re
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnnlab.core.errors import DataError
from cnnlab.data.cache import DataWarning, Problem, ProblemLog, decode_images
from cnnlab.data.idx import read_idx
from cnnlab.data.images import (
    GRAY_MODES,
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    Fit,
    check_image_size,
    image_info,
    is_image_file,
    is_jpeg,
    natural_key,
    read_image,
    read_mask,
)

FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
"""Fashion-MNIST class names in label order (Xiao et al. 2017)."""

Size = int | tuple[int, int] | None


@dataclass
class Dataset:
    """Decoded samples: ``images`` (N, C, H, W) uint8 and ``targets`` (N,) int64 labels or (N, H, W) masks."""

    images: torch.Tensor
    targets: torch.Tensor
    classes: list[str]
    paths: list[str]
    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise DataError(f"images must be (N, C, H, W) uint8, got {tuple(self.images.shape)} {self.images.dtype}")
        if len(self.images) != len(self.targets) or len(self.images) != len(self.paths):
            raise DataError(
                f"images, targets and paths differ in length: {len(self.images)}, {len(self.targets)}, "
                f"{len(self.paths)}"
            )

    def __len__(self) -> int:
        return len(self.images)

    @property
    def is_segmentation(self) -> bool:
        """True when targets are per-pixel masks."""
        return self.targets.ndim == 3

    def subset(self, index: torch.Tensor | Sequence[int]) -> Dataset:
        """The samples at ``index`` (problems are kept, they describe the source)."""
        index = torch.as_tensor(index, dtype=torch.long)
        return replace(
            self, images=self.images[index], targets=self.targets[index], paths=[self.paths[i] for i in index.tolist()]
        )

    def class_counts(self) -> dict[str, int]:
        """Samples per class (for segmentation: pixels per class)."""
        counts = torch.bincount(self.targets.reshape(-1).long(), minlength=len(self.classes))
        return {name: int(c) for name, c in zip(self.classes, counts.tolist(), strict=False)}

    def split(self, fraction: float, seed: int = 0, at_least_one: bool = False) -> tuple[Dataset, Dataset]:
        """``(rest, held_out)`` with ``fraction`` of every class held out (stratified, seeded; ``at_least_one``:
        one sample of every class of 3 or more even where the fraction rounds to none).

        Never returns an empty side: when rounding per class would hold out nothing (say one image
        per class) or keep nothing, it raises a :class:`DataError` saying what to change (see
        :func:`stratified_split`).
        """
        labels = self.targets if not self.is_segmentation else torch.zeros(len(self), dtype=torch.long)
        keep, held = stratified_split(labels, fraction, seed, at_least_one)
        return self.subset(keep), self.subset(held)


def stratified_split(
    labels: torch.Tensor | Sequence[int], fraction: float, seed: int = 0, at_least_one: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(rest, held_out)``: each class contributes ``round(fraction * count)`` to held_out; with
    ``at_least_one``, a class of 3 or more samples contributes at least one (so 4 images per class at 0.1
    still give a validation set, and a small class among large ones is still validated), leaving 2 or more
    to train on.

    An empty side is an error, not a result: holding out no sample (e.g. 100 classes of one image
    each at fraction 0.1) would make the held-out score meaningless, and holding out every sample
    leaves nothing to train on. Holding out "at least one image overall" instead would take the only
    image of some class out of training, so it is refused with what to change.

    >>> rest, held = stratified_split([0] * 10 + [1] * 20, 0.1, seed=3)
    >>> len(rest), sorted(held.tolist())[0] < 10, len(held)
    (27, True, 3)
    >>> [len(side) for side in stratified_split([0] * 4 + [1] * 4, 0.1, at_least_one=True)]
    [6, 2]
    >>> stratified_split([0, 1, 2], 0.1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.DataError: holding out 0.1 of each class leaves the held-out set empty ...
    """
    if not 0.0 < fraction < 1.0:
        raise DataError(f"split fraction must be between 0 and 1. Received: fraction={fraction}", where="split")
    labels = torch.as_tensor(labels, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    held: list[torch.Tensor] = []
    for value in torch.unique(labels).tolist():
        members = torch.nonzero(labels == value).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        count = round(fraction * len(members))
        held.append(members[: max(count, 1) if at_least_one and len(members) >= 3 else count])
    held_index = torch.sort(torch.cat(held)).values if held else torch.zeros(0, dtype=torch.long)
    if len(held_index) == 0 or len(held_index) == len(labels):
        _empty_side(labels, fraction, held_nothing=len(held_index) == 0)
    mask = torch.ones(len(labels), dtype=torch.bool)
    mask[held_index] = False
    return torch.nonzero(mask).flatten(), held_index


def _empty_side(labels: torch.Tensor, fraction: float, held_nothing: bool) -> None:
    if len(labels) == 0:
        raise DataError("there are no samples to split", where="split", fix="check the source holds images")
    counts = torch.unique(labels, return_counts=True)[1]
    low, high = int(counts.min()), int(counts.max())
    found = f"{len(labels)} samples in {len(counts)} classes, {low if low == high else f'{low} to {high}'} per class"
    if held_nothing:
        needed = math.ceil(0.5 / fraction)  # round(fraction * count) >= 1 from this count on
        raise DataError(
            f"holding out {fraction:g} of each class leaves the held-out set empty ({found})",
            where="split",
            fix=f"add images (a class needs about {needed} for one to be held out), raise the fraction, "
            "or hold out nothing (val_fraction 0, or give a val/ folder)",
        )
    raise DataError(
        f"holding out {fraction:g} of each class leaves nothing to train on ({found})",
        where="split",
        fix="lower the fraction or add images",
    )


def _square(size: Size) -> tuple[int, int] | None:
    return check_image_size(size, smallest=1)


SPARSE_FROM = 100
"""Integer labels with a largest value of this or more must use at least half of 0..largest."""


def class_indices(
    labels: np.ndarray | torch.Tensor | Sequence[int | str], classes: Sequence[str] | None = None, where: str = "labels"
) -> tuple[torch.Tensor, list[str]]:
    """Classification labels as ``(int64 class indices (N,), class names)``.

    - Strings are class names: in the order of ``classes`` when given, else sorted. Strings that are
      all digits count as integers.
    - Integers (and whole-number floats) are class indices and are never renumbered, so a train and a
      test split of one source agree: with ``classes`` they must be below ``len(classes)``; without,
      there are K = largest + 1 classes named ``"0"`` .. ``"K-1"``. Indices no sample uses are allowed
      (a :class:`~cnnlab.data.cache.DataWarning` names them): a small split may miss a class.
    - Refused with a :class:`DataError`: negative, NaN or fractional labels, and *sparse* integers,
      i.e. K >= 100 with fewer than half of 0..K-1 present (``{0, 5, 999999}`` would build a
      1,000,000-class model): renumber them 0..K-1 or use class names.

    >>> class_indices(np.array(["dog", "cat", "dog"]))
    (tensor([1, 0, 1]), ['cat', 'dog'])
    >>> class_indices([2.0, 0.0, 1.0])
    (tensor([2, 0, 1]), ['0', '1', '2'])
    >>> class_indices([0, 5, 999999])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.DataError: integer labels are class indices 0..K-1, but these are sparse: 3 distinct ...
    """
    values = np.asarray(labels)
    if values.ndim == 2 and values.shape[1] == 1:  # Keras keeps CIFAR labels as (N, 1)
        values = values[:, 0]
    if values.ndim != 1:
        raise DataError(f"labels must be one per sample, got shape {values.shape}", where=where)
    if values.dtype.kind in "US":
        texts = [str(v).strip() for v in values.tolist()]
        if classes is not None or not texts or not all(re.fullmatch(r"\d+", t) for t in texts):
            names = list(classes) if classes is not None else sorted(set(texts))
            index = {name: i for i, name in enumerate(names)}
            unknown = sorted(set(texts) - set(index))
            if unknown:
                raise DataError(f"labels not in classes: {unknown[:5]}", where=where, fix="check the label column")
            return torch.tensor([index[t] for t in texts], dtype=torch.long), names
        values = np.array([int(t) for t in texts], dtype=np.int64)
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            raise DataError("labels hold NaN or infinite values", where=where, fix="give every sample a class")
        if not np.array_equal(values, np.round(values)):
            bad = values[values != np.round(values)][:3].tolist()
            raise DataError(
                f"labels must be whole class indices, found {bad}",
                where=where,
                fix="store integer class indices 0..K-1 (or class names), not scores or probabilities",
            )
        values = values.astype(np.int64)
    if values.dtype.kind not in "biu":
        raise DataError(f"labels must be integers or class names, found dtype {values.dtype}", where=where)
    values = values.astype(np.int64)
    if values.size and values.min() < 0:
        raise DataError(
            f"labels must be class indices 0..K-1, found {int(values.min())}",
            where=where,
            fix="renumber the labels from 0 (a -1 'unlabelled' marker must be removed)",
        )
    top = int(values.max()) if values.size else -1
    if classes is not None:
        if top >= len(classes):
            raise DataError(
                f"labels go up to {top} but only {len(classes)} class names were given",
                where=where,
                fix="drop the samples with out-of-range labels, or give every class a name",
            )
        return torch.from_numpy(values), list(classes)
    present = np.unique(values)
    if top + 1 >= SPARSE_FROM and 2 * len(present) < top + 1:
        raise DataError(
            f"integer labels are class indices 0..K-1, but these are sparse: {len(present)} distinct values "
            f"from {int(present[0])} to {top} would make {top + 1:,} classes",
            where=where,
            fix="renumber the labels 0..K-1, or store class names instead of numbers",
        )
    missing = sorted(set(range(top + 1)) - set(present.tolist()))
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        warnings.warn(f"no sample has label {shown} (of 0..{top}) [{where}]", DataWarning, stacklevel=2)
    return torch.from_numpy(values), [str(i) for i in range(top + 1)]


def _images_to_uint8(images: np.ndarray | torch.Tensor, where: str) -> torch.Tensor:
    """Float images in [0, 1] are scaled by 255, floats in [0, 255] and integers in 0..255 kept."""
    x = np.asarray(images.cpu() if isinstance(images, torch.Tensor) else images)
    if x.dtype.kind == "f":
        if x.size and not np.isfinite(x).all():
            bad = int((~np.isfinite(x)).sum())
            raise DataError(
                f"images hold NaN or infinite values ({bad:,} of {x.size:,} values)",
                where=where,
                fix="fix or drop the corrupt samples",
            )
        low, high = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
        if low < 0 or high > 255:
            raise DataError(
                f"float images must lie in [0, 1] or [0, 255], found {low:.4g}..{high:.4g}",
                where=where,
                fix="store uint8 pixels, or undo the normalisation (x * std + mean) before saving",
            )
        # [0, 1] is the usual float convention; a float image whose brightest value is <= 1 is read that way.
        return torch.from_numpy(np.rint(x * 255.0 if high <= 1 else x).astype(np.uint8))
    if x.dtype.kind not in "biu":
        raise DataError(f"images must be numbers, found dtype {x.dtype}", where=where, fix="store uint8 pixels")
    if x.size and (x.min() < 0 or x.max() > 255):
        raise DataError(
            f"{x.dtype} images must lie in 0..255, found {x.min()}..{x.max()}", where=where, fix="convert to uint8"
        )
    return torch.from_numpy(x.astype(np.uint8))


def from_arrays(
    images: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor | Sequence[int] | Sequence[str],
    classes: Sequence[str] | None = None,
    channels_last: bool | None = None,
    where: str = "from_arrays",
) -> Dataset:
    """A dataset from arrays: images (N, H, W), (N, H, W, C) or (N, C, H, W), uint8 or float.

    Float images in [0, 1] are scaled by 255 (a float image whose brightest value is at most 1 is
    taken as [0, 1]); floats in [0, 255] are rounded; NaN, infinite and out-of-range values are
    refused. ``channels_last=None`` guesses: a last axis of 1, 3 or 4 (not longer than axis 1) is
    channels. Labels are (N,) class indices or names (see :func:`class_indices`), or (N, H, W) masks.
    ``where`` names the source in error messages.

    >>> data = from_arrays(np.full((2, 4, 4), 200.0), ["dog", "cat"])
    >>> data.images.max().item(), data.classes, data.targets.tolist()
    (200, ['cat', 'dog'], [1, 0])
    """
    x = _images_to_uint8(images, where)
    if x.ndim == 3:
        x = x[:, None]  # (N, 1, H, W)
    elif x.ndim == 4:
        if channels_last is None:
            channels_last = x.shape[-1] in (1, 3, 4) and (x.shape[1] not in (1, 3, 4) or x.shape[-1] <= x.shape[1])
        if channels_last:
            x = x.permute(0, 3, 1, 2)
        x = x.contiguous()
    else:
        raise DataError(f"images must have 3 or 4 axes, got shape {tuple(x.shape)}", where=where)
    raw = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if len(raw) != len(x):
        raise DataError(
            f"{len(x)} images but {len(raw)} labels", where=where, fix="store exactly one label (or mask) per image"
        )
    if raw.ndim == 3:  # segmentation masks
        y = torch.from_numpy(raw.astype(np.uint8))
        count = int(y.max()) + 1 if y.numel() else 0
        names = list(classes) if classes is not None else [str(i) for i in range(count)]
        if count > len(names):
            raise DataError(f"masks go up to {count - 1} but only {len(names)} class names were given", where=where)
    else:
        y, names = class_indices(raw, classes, where)
    return Dataset(x, y, names, [f"array[{i}]" for i in range(len(x))])


_NPZ_KEYS = {"train": [("x_train", "y_train"), ("images", "labels"), ("x", "y")], "test": [("x_test", "y_test")]}


def load_npz(path: str | Path, split: str = "train", classes: Sequence[str] | None = None) -> Dataset:
    """A dataset from a ``.npz``: keys ``x_train``/``y_train`` (Keras style), ``images``/``labels`` or ``x``/``y``.

    Images as in :func:`from_arrays`. Labels follow :func:`class_indices` (integer class indices
    0..K-1, never renumbered, or class names, sorted), decided over every split in the file at once
    so that train and test agree on the classes.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "d.npz"
    >>> np.savez(path, x_test=np.zeros((2, 4, 4, 3), np.uint8), y_test=np.array([1, 0]))
    >>> load_npz(path, "test").images.shape
    torch.Size([2, 3, 4, 4])
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            known = list(archive.keys())
            pairs = [(x, y) for keys in _NPZ_KEYS.values() for x, y in keys if x in archive and y in archive]
            for x_key, y_key in _NPZ_KEYS.get(split, []):
                if (x_key, y_key) in pairs:
                    if classes is None:
                        classes = _npz_classes(archive, [y for _, y in pairs], str(path))
                    data = from_arrays(archive[x_key], archive[y_key], classes, where=f"{x_key}/{y_key} in {path}")
                    if not len(data):
                        raise DataError(f"{x_key} holds no images", where=str(path), fix="store at least one sample")
                    return replace(data, paths=[f"{path}[{i}]" for i in range(len(data))])
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(
            f"cannot read .npz ({type(exc).__name__}: {exc})", where=str(path), fix="check or re-save the file"
        ) from None
    raise DataError(
        f"no images/labels for split '{split}' (keys: {known})",
        where=str(path),
        fix="store x_train/y_train (x_test/y_test), images/labels or x/y",
    )


def _npz_classes(archive: np.lib.npyio.NpzFile, label_keys: list[str], where: str) -> list[str] | None:
    """Class names from the labels of every split together (None for masks)."""
    arrays = [np.asarray(archive[key]) for key in label_keys]
    arrays = [a[:, 0] if a.ndim == 2 and a.shape[1] == 1 else a for a in arrays]
    if any(a.ndim != 1 for a in arrays):  # masks (or a bad shape, reported by from_arrays)
        return None
    if len({a.dtype.kind in "US" for a in arrays}) > 1:
        arrays = [a.astype(str) for a in arrays]
    return class_indices(np.concatenate(arrays), None, where=f"labels in {where}")[1]


def _find_idx(root: Path, prefix: str, kind: str) -> Path | None:
    """``train-images-idx3-ubyte[.gz]`` or ``train-images.idx3-ubyte`` (both spellings exist)."""
    dims = "3" if kind == "images" else "1"
    for name in (f"{prefix}-{kind}-idx{dims}-ubyte", f"{prefix}-{kind}.idx{dims}-ubyte"):
        for candidate in (root / name, root / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _idx_file(root: Path, prefix: str, kind: str) -> Path:
    found = _find_idx(root, prefix, kind)
    if found is not None:
        return found
    dims = "3" if kind == "images" else "1"
    raise DataError(
        f"no {prefix} {kind} IDX file", where=str(root), fix=f"expected {prefix}-{kind}-idx{dims}-ubyte[.gz] in it"
    )


def load_idx(images_path: str | Path, labels_path: str | Path, classes: Sequence[str] | None = None) -> Dataset:
    """A dataset from an IDX image file (N, H, W) and an IDX label file (N,); labels as in :func:`class_indices`."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"IDX shapes do not fit: images {images.shape}, labels {labels.shape}",
            where=f"{images_path}, {labels_path}",
            fix="pair an idx3 image file with the idx1 label file of the same split",
        )
    data = from_arrays(images, labels, classes, where=f"{images_path} / {labels_path}")
    if not len(data):
        raise DataError("the IDX file holds no images", where=str(images_path), fix="download the file again")
    return replace(data, paths=[f"{images_path}[{i}]" for i in range(len(data))])


def load_mnist(root: str | Path, split: str = "train", classes: Sequence[str] | None = None) -> Dataset:
    """MNIST-style IDX files in ``root``: ``split`` is ``train`` or ``test`` (files ``t10k-*``).

    Unless ``classes`` is given, Fashion-MNIST (recognised by the folder name) gets
    :data:`FASHION_MNIST_CLASSES`, a folder named ``mnist`` the ten digits (so a label of 10 or more
    is an error there), and any other folder the classes of :func:`class_indices` over the labels of
    both splits together (so train and test agree).
    """
    root = Path(root)
    if split not in ("train", "test"):
        raise DataError(f"unknown split '{split}'", where=str(root), fix="use 'train' or 'test'")
    prefix = "train" if split == "train" else "t10k"
    name = root.resolve().name.lower()
    if classes is None and "fashion" in name:
        classes = FASHION_MNIST_CLASSES
    elif classes is None and name == "mnist":
        classes = [str(d) for d in range(10)]
    elif classes is None:
        label_files = [f for f in (_find_idx(root, p, "labels") for p in ("train", "t10k")) if f is not None]
        every = [read_idx(f) for f in label_files]
        if all(labels.ndim == 1 for labels in every):  # a bad shape is reported by load_idx, with both files
            classes = class_indices(np.concatenate(every), where=" + ".join(map(str, label_files)))[1]
    return load_idx(_idx_file(root, prefix, "images"), _idx_file(root, prefix, "labels"), classes)


def _scan_channels(paths: Sequence[Path]) -> int:
    """1 when every readable image is single-channel, else 3 (header reads only)."""
    for path in paths:
        try:
            _, mode = image_info(path)
        except DataError:
            continue  # decoding reports it, with the path
        if mode not in GRAY_MODES and not (mode == "P" and _gray_palette(path)):
            return 3
    return 1


def _gray_palette(path: Path) -> bool:
    with Image.open(path) as image:
        palette = np.asarray(image.getpalette() or [], dtype=np.int32).reshape(-1, 3)
    return bool(np.all(palette[:, 0] == palette[:, 1]) and np.all(palette[:, 1] == palette[:, 2]))


def _from_files(
    files: list[Path],
    labels: list[int],
    classes: list[str],
    log: ProblemLog,
    size: Size,
    channels: int | None,
    fit: Fit,
    cache_dir: str | Path | None,
    max_pixels: int,
) -> Dataset:
    channels = channels or _scan_channels(files)
    decoded = decode_images(files, channels, _square(size), fit, log.strict, cache_dir, max_pixels)
    if files and not decoded.kept:
        first = decoded.problems[0]
        raise DataError(
            f"none of the {len(files)} image files could be read (first: {first.message} [{first.path}])",
            where=_common_folder(files),
            fix="check the files open in an image viewer; re-export them as PNG or JPEG",
        )
    images = torch.from_numpy(decoded.pixels).permute(0, 3, 1, 2)  # (N, C, H, W), a view of the (mapped) array
    targets = torch.tensor([labels[i] for i in decoded.kept], dtype=torch.long)
    return Dataset(images, targets, classes, [str(files[i]) for i in decoded.kept], log.problems + decoded.problems)


def _common_folder(files: Sequence[Path]) -> str:
    return os.path.commonpath([str(f.parent) for f in files])


def _folder_images(folder: Path, log: ProblemLog) -> list[Path]:
    """Image files anywhere under ``folder`` (sub-folders too); other files are reported."""
    found = (
        sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")) if folder.is_dir() else []
    )
    images = [p for p in found if is_image_file(p)]
    for other in sorted(set(found) - set(images)):
        log.report(DataError("not an image file (unknown suffix)", where=str(other), fix="move it out of the folder"))
    return images


def _no_images(root: Path, folders: Sequence[Path]) -> DataError:
    others = sorted(p for f in folders if f.is_dir() for p in f.rglob("*") if p.is_file())
    seen = f"; found {len(others)} other file(s), e.g. {others[0].name}" if others else ""
    return DataError(
        f"no images found in {root} (looked for {', '.join(IMAGE_EXTENSIONS)} in its class folders{seen})",
        where=str(root),
        fix="put image files in root/<class name>/ (one folder per class)",
    )


def _drop_empty_classes(data: Dataset, log: ProblemLog, root: Path) -> Dataset:
    """Remove classes that no decoded image belongs to (all its files unreadable), renumbering the rest."""
    counts = torch.bincount(data.targets, minlength=len(data.classes))
    empty = [name for name, count in zip(data.classes, counts.tolist(), strict=True) if count == 0]
    if not empty:
        return data
    problems = list(data.problems)
    for name in empty:
        error = DataError(f"class '{name}' dropped: none of its images could be read", where=str(root / name))
        log.report(error)
        problems.append(Problem(str(root / name), error.what))
    new_index = torch.cumsum(counts > 0, 0) - 1
    kept = [name for name, count in zip(data.classes, counts.tolist(), strict=True) if count > 0]
    return replace(data, targets=new_index[data.targets], classes=kept, problems=problems)


def load_image_folder(
    root: str | Path,
    size: Size = None,
    channels: int | None = None,
    fit: Fit = "stretch",
    classes: Sequence[str] | None = None,
    strict: bool = False,
    cache_dir: str | Path | None = None,
    max_pixels: int = MAX_PIXELS,
) -> Dataset:
    """A folder of class sub-folders (``root/<class>/<image>``, images may sit deeper), decoded once.

    ``classes`` fixes the class order (default: sorted sub-folder names). ``channels=None`` picks
    1 when every image is grayscale. Non-image files are problems (skipped, see the module). Without
    ``classes``, a class folder with no images, or none that can be read, is dropped with a problem
    (:class:`~cnnlab.data.cache.DataWarning`) naming it, so ``classes`` holds only classes with
    samples; with ``classes`` it stays, with no samples. No images at all is a :class:`DataError`.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ("ant", "bee"):
    ...     (root / name).mkdir()
    ...     Image.new("RGB", (5, 4)).save(root / name / "1.jpg")
    >>> data = load_image_folder(root)
    >>> data.images.shape, data.classes, data.targets.tolist()
    (torch.Size([2, 3, 4, 5]), ['ant', 'bee'], [0, 1])
    """
    root = Path(root)
    check_image_size(size, smallest=1)
    if not root.is_dir():
        raise DataError("image folder not found", where=str(root), fix="pass a folder holding one folder per class")
    log = ProblemLog(strict)
    names = list(classes) if classes is not None else sorted(p.name for p in root.iterdir() if _visible_dir(p))
    if not names:
        raise DataError("no class folders found", where=str(root), fix="put images in root/<class name>/")
    per_class = {name: _folder_images(root / name, log) for name in names}
    if not any(per_class.values()):
        raise _no_images(root, [root / name for name in names])
    for name, images in per_class.items():
        if not images:
            dropped = " (class dropped)" if classes is None else ""
            log.report(
                DataError(
                    f"class folder '{name}' has no images{dropped}",
                    where=str(root / name),
                    fix="add images or remove it",
                )
            )
    if classes is None:
        names = [name for name in names if per_class[name]]
    files = [f for name in names for f in per_class[name]]
    labels = [label for label, name in enumerate(names) for _ in per_class[name]]
    data = _from_files(files, labels, names, log, size, channels, fit, cache_dir, max_pixels)
    return _drop_empty_classes(data, log, root) if classes is None else data


def _visible_dir(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith(".")


SPLIT_NAMES = frozenset({"train", "training", "val", "valid", "validation", "dev", "test", "testing"})
"""Folder names that mark ``root/<split>/<class>/`` (otherwise nested folders are class folders)."""


def load_split_folders(root: str | Path, **options: object) -> dict[str, Dataset]:
    """``root/<split>/<class>/<image>`` (e.g. train/ and val/): one dataset per split, same class order.

    The classes are the class folders holding an image in some split; a class folder empty in every
    split is dropped with a problem (listed on the first split). Options are those of
    :func:`load_image_folder`.
    """
    root = Path(root)
    splits = sorted(p for p in root.iterdir() if _visible_dir(p)) if root.is_dir() else []
    if not splits:
        raise DataError("no split folders found", where=str(root), fix="use root/train/<class>/ and root/val/<class>/")
    folders = [c for s in splits for c in s.iterdir() if _visible_dir(c)]
    found = {c.name for c in folders if any(p.is_file() and is_image_file(p) for p in c.rglob("*"))}
    if not found:
        raise _no_images(root, folders)
    log = ProblemLog(bool(options.get("strict", False)))
    for name in sorted({c.name for c in folders} - found):
        log.report(
            DataError(
                f"class folder '{name}' has no images in any split (class dropped)",
                where=str(root),
                fix="add images or remove it",
            )
        )
    classes = sorted(found)
    datasets = {s.name: load_image_folder(s, classes=classes, **options) for s in splits}  # type: ignore[arg-type]
    first = splits[0].name
    datasets[first] = replace(datasets[first], problems=log.problems + datasets[first].problems)
    return datasets


def load_csv(
    path: str | Path,
    size: Size = None,
    channels: int | None = None,
    fit: Fit = "stretch",
    classes: Sequence[str] | None = None,
    strict: bool = False,
    cache_dir: str | Path | None = None,
    max_pixels: int = MAX_PIXELS,
) -> Dataset:
    """A CSV of ``path,label`` rows (header optional; paths relative to the CSV's folder).

    Labels are class names (sorted into class indices unless ``classes`` is given) or integer class
    indices 0..K-1, never renumbered; sparse integers such as ``{0, 5, 999999}`` are refused (see
    :func:`class_indices`).
    """
    path = Path(path)
    check_image_size(size, smallest=1)
    try:
        rows = [r for r in csv.reader(path.read_text().splitlines()) if r and any(cell.strip() for cell in r)]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read CSV: {exc}", where=str(path), fix="check the file") from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    for number, row in enumerate(rows, start=1):
        if len(row) < 2:
            raise DataError(f"row {number} has no label: {row}", where=str(path), fix="write rows as path,label")
    if not rows:
        raise DataError("the CSV has no rows", where=str(path), fix="write one path,label row per image")
    targets, names = class_indices(np.array([row[1].strip() for row in rows]), classes, where=str(path))
    files = [(path.parent / row[0].strip()) for row in rows]
    log = ProblemLog(strict)
    return _from_files(files, targets.tolist(), names, log, size, channels, fit, cache_dir, max_pixels)


def load_segmentation(
    image_dir: str | Path,
    mask_dir: str | Path,
    size: Size = None,
    channels: int | None = None,
    num_classes: int = 2,
    classes: Sequence[str] | None = None,
    strict: bool = False,
    max_pixels: int = MAX_PIXELS,
) -> Dataset:
    """Image and mask folders matched by file stem; masks become class indices (see ``read_mask``).

    An image without a mask (or the reverse), an unreadable file and an image/mask size mismatch
    are problems (skipped, or fatal when ``strict``); a mask value outside the classes is always an
    error, and so is a source left with no usable pair (the message names the first problem).
    Masks are resized with nearest-neighbour, images bilinearly.
    """
    image_dir, mask_dir = Path(image_dir), Path(mask_dir)
    check_image_size(size, smallest=1)
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise DataError("folder not found", where=str(folder), fix="pass the image folder and the mask folder")
    log = ProblemLog(strict)
    image_files = {p.stem: p for p in sorted(image_dir.iterdir()) if p.is_file() and is_image_file(p)}
    mask_files = {p.stem: p for p in sorted(mask_dir.iterdir()) if p.is_file() and is_image_file(p)}
    for folder, found in ((image_dir, image_files), (mask_dir, mask_files)):
        if not found:
            raise DataError(
                f"no images found in {folder} (looked for {', '.join(IMAGE_EXTENSIONS)})",
                where=str(folder),
                fix="pass the folder that holds the image (or mask) files themselves",
            )
    for stem in sorted(set(image_files) ^ set(mask_files)):
        lonely = image_files.get(stem) or mask_files[stem]
        other = "mask" if stem in image_files else "image"
        log.report(DataError(f"no {other} with the same name", where=str(lonely), fix="pair every image with a mask"))
    pairs = [(image_files[s], mask_files[s]) for s in sorted(set(image_files) & set(mask_files), key=natural_key)]
    channels = channels or _scan_channels([p for p, _ in pairs])
    target = _square(size)
    images: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    kept: list[str] = []
    for image_path, mask_path in pairs:
        try:
            image = read_image(image_path, channels=channels, max_pixels=max_pixels)
            mask = read_mask(mask_path, num_classes=num_classes, max_pixels=max_pixels)
        except DataError as err:
            if "unexpected values" in err.what:
                raise
            log.report(err)
            continue
        if image.shape[:2] != mask.shape:
            log.report(
                DataError(
                    f"image is {image.shape[1]}x{image.shape[0]} but its mask is {mask.shape[1]}x{mask.shape[0]}",
                    where=f"{image_path} / {mask_path}",
                    fix="export image and mask at the same size",
                )
            )
            continue
        if target is not None:
            image = _resize_array(image, target, Image.Resampling.BILINEAR)
            mask = _resize_array(mask, target, Image.Resampling.NEAREST)
        images.append(image)
        masks.append(mask)
        kept.append(str(image_path))
    if not kept:
        first = f" (first: {log.problems[0].message} [{log.problems[0].path}])" if log.problems else ""
        raise DataError(
            f"none of the {len(pairs)} image/mask pairs could be used{first}",
            where=f"{image_dir} / {mask_dir}",
            fix="name each mask like its image (same file stem) and save masks as grayscale PNG class indices",
        )
    if len({m.shape for m in masks}) > 1:
        raise DataError(
            "image/mask pairs differ in size", where=str(image_dir), fix="pass size=(height, width) (--img-size)"
        )
    jpeg = sum(is_jpeg(mask) for _, mask in pairs)
    if num_classes == 2 and jpeg:
        warnings.warn(
            f"{jpeg} JPEG mask(s) read as background below 128 and object from 128 (JPEG blurs 0 and 255; PNG "
            "masks keep them exact)",
            DataWarning,
            stacklevel=2,
        )
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(np.stack(masks))
    names = (
        list(classes)
        if classes is not None
        else (["background", "foreground"] if num_classes == 2 else [str(i) for i in range(num_classes)])
    )
    return Dataset(x, y, names, kept, log.problems)


def _resize_array(array: np.ndarray, size: tuple[int, int], resample: Image.Resampling) -> np.ndarray:
    squeeze = array.ndim == 3 and array.shape[2] == 1
    image = Image.fromarray(array[..., 0] if squeeze else array)
    out = np.asarray(image.resize((size[1], size[0]), resample))
    return out[..., None] if squeeze else out


def open_source(
    path: str | Path,
    masks: str | Path | None = None,
    size: Size = None,
    strict: bool = False,
    cache_dir: str | Path | None = None,
    fit: Fit = "stretch",
) -> dict[str, Dataset]:
    """Open any supported source by looking at it; returns ``{split name: Dataset}``.

    A folder with MNIST-style IDX files gives ``train`` and ``test``; a folder of split folders
    (sub-folders that all hold folders, one of them named as in :data:`SPLIT_NAMES`, e.g.
    ``train/<class>/``) gives one dataset per split; a folder of class folders gives ``all`` (images
    may sit in sub-folders of a class folder), and so does a flat folder of images (one class,
    ``unlabelled``); ``.npz`` and ``.csv`` files are read as such; ``masks`` pairs an image folder with
    a mask folder. ``fit`` says how image files of another aspect reach ``size``: stretch, crop (fill
    and centre-crop) or pad (fit inside, black borders). ``size`` is checked by
    :func:`~cnnlab.data.images.check_image_size` (sides 1..4096).
    """
    path = Path(path)
    check_image_size(size, smallest=1)
    if masks is not None:
        return {"all": load_segmentation(path, masks, size=size, strict=strict)}
    if path.is_file() and path.suffix.lower() == ".npz":
        return {s: load_npz(path, s) for s in _npz_splits(path)}
    if path.is_file() and path.suffix.lower() == ".csv":
        return {"all": load_csv(path, size=size, strict=strict, cache_dir=cache_dir, fit=fit)}
    if path.is_file():
        kind = "a single image" if is_image_file(path) else f"a '{path.suffix or path.name}' file"
        raise DataError(
            f"this is {kind}, not a dataset",
            where=str(path),
            fix="pass a folder of class folders (root/<class>/<image>), an IDX folder, a .npz or a .csv of "
            "path,label rows (cnnlab predict takes single images)",
        )
    if not path.is_dir():
        raise DataError("no such file or folder", where=str(path), fix="pass a folder, .npz or .csv")
    names = [p.name for p in path.iterdir()]
    if any("idx3-ubyte" in n for n in names):
        return {s: load_mnist(path, s) for s in ("train", "test") if any(n.startswith(_IDX_PREFIX[s]) for n in names)}
    subfolders = [p for p in sorted(path.iterdir()) if _visible_dir(p)]
    nested = subfolders and all(any(_visible_dir(c) for c in s.iterdir()) for s in subfolders)
    if nested and any(s.name.lower() in SPLIT_NAMES for s in subfolders):
        return load_split_folders(path, size=size, strict=strict, cache_dir=cache_dir, fit=fit)
    if subfolders:
        return {"all": load_image_folder(path, size=size, strict=strict, cache_dir=cache_dir, fit=fit)}
    files = sorted((p for p in path.iterdir() if p.is_file() and is_image_file(p)), key=lambda p: natural_key(p.name))
    if files:  # a flat folder of images: one unlabelled class
        log = ProblemLog(strict)
        return {
            "all": _from_files(files, [0] * len(files), ["unlabelled"], log, size, None, fit, cache_dir, MAX_PIXELS)
        }
    raise DataError(
        "not a dataset: no IDX files, class folders or split folders",
        where=str(path),
        fix="pass a folder of class folders, an IDX folder, a .npz or a .csv (and --masks for segmentation)",
    )


_IDX_PREFIX = {"train": "train-", "test": "t10k-"}


def _npz_splits(path: Path) -> list[str]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return ["train", "test"] if "x_test" in archive else ["train"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"cannot read .npz ({type(exc).__name__}: {exc})", where=str(path), fix="check or re-save the file"
        ) from None
