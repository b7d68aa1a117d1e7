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
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnnlab.core.errors import DataError
from cnnlab.data.cache import Problem, ProblemLog, decode_images
from cnnlab.data.idx import read_idx
from cnnlab.data.images import GRAY_MODES, MAX_PIXELS, Fit, image_info, is_image_file, read_image, read_mask

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

    def split(self, fraction: float, seed: int = 0) -> tuple[Dataset, Dataset]:
        """``(rest, held_out)`` with ``fraction`` of every class held out (stratified, seeded)."""
        labels = self.targets if not self.is_segmentation else torch.zeros(len(self), dtype=torch.long)
        keep, held = stratified_split(labels, fraction, seed)
        return self.subset(keep), self.subset(held)


def stratified_split(
    labels: torch.Tensor | Sequence[int], fraction: float, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(rest, held_out)``: each class contributes ``round(fraction * count)`` to held_out.

    >>> rest, held = stratified_split([0] * 10 + [1] * 20, 0.1, seed=3)
    >>> len(rest), sorted(held.tolist())[0] < 10, len(held)
    (27, True, 3)
    """
    if not 0.0 < fraction < 1.0:
        raise DataError(f"split fraction must be between 0 and 1. Received: fraction={fraction}", where="split")
    labels = torch.as_tensor(labels, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    held: list[torch.Tensor] = []
    for value in torch.unique(labels).tolist():
        members = torch.nonzero(labels == value).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        held.append(members[: round(fraction * len(members))])
    held_index = torch.sort(torch.cat(held)).values
    mask = torch.ones(len(labels), dtype=torch.bool)
    mask[held_index] = False
    return torch.nonzero(mask).flatten(), held_index


def _square(size: Size) -> tuple[int, int] | None:
    return (size, size) if isinstance(size, int) else size


def from_arrays(
    images: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor | Sequence[int],
    classes: Sequence[str] | None = None,
    channels_last: bool | None = None,
) -> Dataset:
    """A dataset from arrays: images (N, H, W), (N, H, W, C) or (N, C, H, W), uint8 (or float in [0, 1]).

    ``channels_last=None`` guesses: a last axis of 1, 3 or 4 (not longer than axis 1) is channels.
    Labels are (N,) ints or (N, H, W) masks.
    """
    x = torch.as_tensor(np.asarray(images))
    if x.is_floating_point():
        if x.numel() and (x.min() < 0 or x.max() > 1):
            raise DataError("float images must lie in [0, 1]", where="from_arrays", fix="pass uint8 or scale to [0, 1]")
        x = torch.round(x * 255).to(torch.uint8)
    if x.dtype != torch.uint8:
        if x.numel() and (x.min() < 0 or x.max() > 255):
            raise DataError(f"{x.dtype} images must lie in 0..255", where="from_arrays", fix="convert to uint8")
        x = x.to(torch.uint8)
    if x.ndim == 3:
        x = x[:, None]  # (N, 1, H, W)
    elif x.ndim == 4:
        if channels_last is None:
            channels_last = x.shape[-1] in (1, 3, 4) and (x.shape[1] not in (1, 3, 4) or x.shape[-1] <= x.shape[1])
        if channels_last:
            x = x.permute(0, 3, 1, 2)
        x = x.contiguous()
    else:
        raise DataError(f"images must have 3 or 4 axes, got shape {tuple(x.shape)}", where="from_arrays")
    y = torch.as_tensor(np.asarray(labels))
    y = y.to(torch.uint8) if y.ndim == 3 else y.long()
    count = int(y.max()) + 1 if y.numel() else 0
    names = list(classes) if classes is not None else [str(i) for i in range(count)]
    if count > len(names):
        raise DataError(
            f"labels go up to {count - 1} but only {len(names)} class names were given", where="from_arrays"
        )
    return Dataset(x, y, names, [f"array[{i}]" for i in range(len(x))])


_NPZ_KEYS = {"train": [("x_train", "y_train"), ("images", "labels"), ("x", "y")], "test": [("x_test", "y_test")]}


def load_npz(path: str | Path, split: str = "train", classes: Sequence[str] | None = None) -> Dataset:
    """A dataset from a ``.npz``: keys ``x_train``/``y_train`` (Keras style), ``images``/``labels`` or ``x``/``y``.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "d.npz"
    >>> np.savez(path, x_test=np.zeros((2, 4, 4, 3), np.uint8), y_test=np.array([1, 0]))
    >>> load_npz(path, "test").images.shape
    torch.Size([2, 3, 4, 4])
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            for x_key, y_key in _NPZ_KEYS.get(split, []):
                if x_key in archive and y_key in archive:
                    data = from_arrays(archive[x_key], archive[y_key], classes)
                    return replace(data, paths=[f"{path}[{i}]" for i in range(len(data))])
            known = list(archive.keys())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read .npz: {exc}", where=str(path), fix="check the file") from None
    raise DataError(
        f"no images/labels for split '{split}' (keys: {known})",
        where=str(path),
        fix="store x_train/y_train (x_test/y_test), images/labels or x/y",
    )


def _idx_file(root: Path, prefix: str, kind: str) -> Path:
    """``train-images-idx3-ubyte[.gz]`` or ``train-images.idx3-ubyte`` (both spellings exist)."""
    dims = "3" if kind == "images" else "1"
    for name in (f"{prefix}-{kind}-idx{dims}-ubyte", f"{prefix}-{kind}.idx{dims}-ubyte"):
        for candidate in (root / name, root / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise DataError(
        f"no {prefix} {kind} IDX file", where=str(root), fix=f"expected {prefix}-{kind}-idx{dims}-ubyte[.gz] in it"
    )


def load_idx(images_path: str | Path, labels_path: str | Path, classes: Sequence[str] | None = None) -> Dataset:
    """A dataset from an IDX image file (N, H, W) and an IDX label file (N,)."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"IDX shapes do not fit: images {images.shape}, labels {labels.shape}",
            where=f"{images_path}, {labels_path}",
            fix="pair an idx3 image file with the idx1 label file of the same split",
        )
    data = from_arrays(images, labels, classes)
    return replace(data, paths=[f"{images_path}[{i}]" for i in range(len(data))])


def load_mnist(root: str | Path, split: str = "train", classes: Sequence[str] | None = None) -> Dataset:
    """MNIST-style IDX files in ``root``: ``split`` is ``train`` or ``test`` (files ``t10k-*``).

    Fashion-MNIST is recognised by the folder name and gets :data:`FASHION_MNIST_CLASSES`
    unless ``classes`` is given.
    """
    root = Path(root)
    if split not in ("train", "test"):
        raise DataError(f"unknown split '{split}'", where=str(root), fix="use 'train' or 'test'")
    prefix = "train" if split == "train" else "t10k"
    if classes is None and "fashion" in root.resolve().name.lower():
        classes = FASHION_MNIST_CLASSES
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
    images = torch.from_numpy(decoded.pixels).permute(0, 3, 1, 2)  # (N, C, H, W), a view of the (mapped) array
    targets = torch.tensor([labels[i] for i in decoded.kept], dtype=torch.long)
    return Dataset(images, targets, classes, [str(files[i]) for i in decoded.kept], log.problems + decoded.problems)


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
    """A folder of class sub-folders (``root/<class>/<image>``), decoded once.

    ``classes`` fixes the class order (default: sorted sub-folder names). ``channels=None`` picks
    1 when every image is grayscale. Non-image files and empty class folders are problems.

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
    if not root.is_dir():
        raise DataError("image folder not found", where=str(root), fix="pass a folder holding one folder per class")
    log = ProblemLog(strict)
    names = list(classes) if classes is not None else sorted(p.name for p in root.iterdir() if _visible_dir(p))
    if not names:
        raise DataError("no class folders found", where=str(root), fix="put images in root/<class name>/")
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(names):
        folder = root / name
        found = (
            sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
            if folder.is_dir()
            else []
        )
        images = [p for p in found if is_image_file(p)]
        for other in sorted(set(found) - set(images)):
            log.report(
                DataError("not an image file (unknown suffix)", where=str(other), fix="move it out of the folder")
            )
        if not images:
            log.report(
                DataError(f"class folder '{name}' has no images", where=str(folder), fix="add images or remove it")
            )
        files += images
        labels += [label] * len(images)
    return _from_files(files, labels, names, log, size, channels, fit, cache_dir, max_pixels)


def _visible_dir(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith(".")


def load_split_folders(root: str | Path, **options: object) -> dict[str, Dataset]:
    """``root/<split>/<class>/<image>`` (e.g. train/ and val/): one dataset per split, same class order.

    Options are those of :func:`load_image_folder`.
    """
    root = Path(root)
    splits = sorted(p for p in root.iterdir() if _visible_dir(p)) if root.is_dir() else []
    if not splits:
        raise DataError("no split folders found", where=str(root), fix="use root/train/<class>/ and root/val/<class>/")
    classes = sorted({c.name for s in splits for c in s.iterdir() if _visible_dir(c)})
    return {s.name: load_image_folder(s, classes=classes, **options) for s in splits}  # type: ignore[arg-type]


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

    Labels are class names or integers; names are sorted into class indices unless ``classes`` is given.
    """
    path = Path(path)
    try:
        rows = [r for r in csv.reader(path.read_text().splitlines()) if r and any(cell.strip() for cell in r)]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read CSV: {exc}", where=str(path), fix="check the file") from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    for number, row in enumerate(rows, start=1):
        if len(row) < 2:
            raise DataError(f"row {number} has no label: {row}", where=str(path), fix="write rows as path,label")
    raw = [row[1].strip() for row in rows]
    if classes is None:
        numeric = all(re.fullmatch(r"\d+", label) for label in raw)
        classes = [str(i) for i in range(max(map(int, raw)) + 1)] if numeric and raw else sorted(set(raw))
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(raw) - set(index))
    if unknown:
        raise DataError(f"labels not in classes: {unknown[:5]}", where=str(path), fix="check the label column")
    files = [(path.parent / row[0].strip()) for row in rows]
    log = ProblemLog(strict)
    return _from_files(files, [index[r] for r in raw], list(classes), log, size, channels, fit, cache_dir, max_pixels)


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

    An image without a mask (or the reverse) and an image/mask size mismatch are problems
    (skipped, or fatal when ``strict``); a mask value outside the classes is always an error.
    Masks are resized with nearest-neighbour, images bilinearly.
    """
    image_dir, mask_dir = Path(image_dir), Path(mask_dir)
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise DataError("folder not found", where=str(folder), fix="pass the image folder and the mask folder")
    log = ProblemLog(strict)
    image_files = {p.stem: p for p in sorted(image_dir.iterdir()) if p.is_file() and is_image_file(p)}
    mask_files = {p.stem: p for p in sorted(mask_dir.iterdir()) if p.is_file() and is_image_file(p)}
    for stem in sorted(set(image_files) ^ set(mask_files)):
        lonely = image_files.get(stem) or mask_files[stem]
        other = "mask" if stem in image_files else "image"
        log.report(DataError(f"no {other} with the same name", where=str(lonely), fix="pair every image with a mask"))
    pairs = [(image_files[s], mask_files[s]) for s in sorted(set(image_files) & set(mask_files), key=_natural_key)]
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
    if len({m.shape for m in masks}) > 1:
        raise DataError("image/mask pairs differ in size", where=str(image_dir), fix="pass size=(height, width)")
    shape = masks[0].shape if masks else (target or (0, 0))
    x = (
        torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
        if images
        else torch.zeros(0, channels, *shape, dtype=torch.uint8)
    )
    y = torch.from_numpy(np.stack(masks)) if masks else torch.zeros(0, *shape, dtype=torch.uint8)
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


def _natural_key(name: str) -> list[int | str]:
    """'2' before '10': numbered slices keep their order."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


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
    (``train/<class>/``) gives one dataset per split; a folder of class folders gives ``all``, and so
    does a flat folder of images (one class, ``unlabelled``);
    ``.npz`` and ``.csv`` files are read as such; ``masks`` pairs an image folder with a mask folder.
    ``fit`` says how image files of another aspect reach ``size``: stretch, crop (fill and centre-crop)
    or pad (fit inside, black borders).
    """
    path = Path(path)
    if masks is not None:
        return {"all": load_segmentation(path, masks, size=size, strict=strict)}
    if path.is_file() and path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            splits = ["train", "test"] if "x_test" in archive else ["train"]
        return {s: load_npz(path, s) for s in splits}
    if path.is_file() and path.suffix.lower() == ".csv":
        return {"all": load_csv(path, size=size, strict=strict, cache_dir=cache_dir, fit=fit)}
    if not path.is_dir():
        raise DataError("no such file or folder", where=str(path), fix="pass a folder, .npz or .csv")
    names = [p.name for p in path.iterdir()]
    if any("idx3-ubyte" in n for n in names):
        return {s: load_mnist(path, s) for s in ("train", "test") if any(n.startswith(_IDX_PREFIX[s]) for n in names)}
    subfolders = [p for p in sorted(path.iterdir()) if _visible_dir(p)]
    nested = subfolders and all(any(_visible_dir(c) for c in s.iterdir()) for s in subfolders)
    if nested:
        return load_split_folders(path, size=size, strict=strict, cache_dir=cache_dir, fit=fit)
    if subfolders:
        return {"all": load_image_folder(path, size=size, strict=strict, cache_dir=cache_dir, fit=fit)}
    files = sorted((p for p in path.iterdir() if p.is_file() and is_image_file(p)), key=lambda p: _natural_key(p.name))
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
