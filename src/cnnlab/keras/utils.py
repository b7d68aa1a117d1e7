"""``keras.utils``: ``to_categorical``, ``set_random_seed`` and ``image_dataset_from_directory``.

Images come out as Keras has them: NHWC ``float32`` numpy batches with values 0..255.
``image_dataset_from_directory`` finds the files as Keras does (its suffixes, :data:`ALLOWLIST_FORMATS`),
decodes and resizes them once as Keras' TensorFlow pipeline does (unreadable files are skipped with a
warning), then batches from memory (float32, as TensorFlow's resize leaves them); pass ``cache_dir`` to keep
the decoded pixels on disk, memory-mapped.

>>> to_categorical([0, 2, 1])
array([[1., 0., 0.],
       [0., 0., 1.],
       [0., 1., 0.]])
"""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.data.cache import DataWarning, Problem, cache_key
from cnnlab.data.cache import _load as load_cached
from cnnlab.data.cache import _store as store_cached
from cnnlab.keras.plotting import model_to_dot, plot_model
from cnnlab.keras.saving import register_keras_serializable

ALLOWLIST_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
"""The suffixes ``image_dataset_from_directory`` reads: Keras 3.15's ``ALLOWLIST_FORMATS`` (gif yes, tif no)."""

COLOR_CHANNELS = {"grayscale": 1, "rgb": 3}
"""Keras ``color_mode`` -> decoded channels (``rgba`` is not supported: the loader composites alpha on white)."""


def to_categorical(y: Any, num_classes: int | None = None) -> np.ndarray:
    """Class indices -> one-hot rows; a trailing axis of 1 is dropped (``(N, 1)`` -> ``(N, classes)``).

    The rows are float64, as Keras 3 returns them for NumPy input (``tf.keras`` 2 gave float32;
    ``fit`` takes either). Keras' documented example:

    >>> a = to_categorical([0, 1, 2, 3], num_classes=4)
    >>> print(a)
    [[1. 0. 0. 0.]
     [0. 1. 0. 0.]
     [0. 0. 1. 0.]
     [0. 0. 0. 1.]]
    >>> to_categorical([[1], [0]]).shape
    (2, 2)
    """
    values = np.asarray(y)
    if values.dtype.kind == "f" and not np.array_equal(values, np.round(values)):
        raise DataError("to_categorical needs whole class indices", where="to_categorical", fix="pass integer labels")
    values = values.astype(np.int64)
    shape = values.shape[:-1] if values.ndim > 1 and values.shape[-1] == 1 else values.shape
    flat = values.reshape(-1)
    if flat.size and flat.min() < 0:
        raise DataError(f"class indices must be >= 0, found {int(flat.min())}", where="to_categorical")
    if num_classes is None:
        num_classes = int(flat.max()) + 1 if flat.size else 0
    elif flat.size and flat.max() >= num_classes:
        raise DataError(
            f"label {int(flat.max())} is out of range for num_classes={num_classes}",
            where="to_categorical",
            fix="pass num_classes larger than the largest label",
        )
    categorical = np.zeros((flat.size, num_classes))
    categorical[np.arange(flat.size), flat] = 1.0
    return categorical.reshape(*shape, num_classes)


def set_random_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch, as ``keras.utils.set_random_seed``.

    >>> set_random_seed(1); a = np.random.rand()
    >>> set_random_seed(1); a == np.random.rand()
    True
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"seed must be an int. Received: seed={seed!r}", where="set_random_seed")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def encode_labels(classes: np.ndarray, mode: str | None, num_classes: int, where: str) -> np.ndarray | None:
    """Class indices as Keras hands them out for a label mode (None: no labels).

    ``int``: int32 ``(N,)``; ``sparse``: float32 ``(N,)``; ``categorical``: float32 one-hot ``(N, classes)``;
    ``binary``: float32 ``(N,)`` (``flow_from_directory``); ``binary_column``: float32 ``(N, 1)``
    (``image_dataset_from_directory``). Binary modes need exactly two classes.

    >>> encode_labels(np.array([1, 0]), "binary_column", 2, "here").tolist()
    [[1.0], [0.0]]
    """
    if mode is None:
        return None
    if mode.startswith("binary") and num_classes != 2:
        raise DataError(
            f"binary labels need exactly 2 classes, found {num_classes}",
            where=where,
            fix="use 'categorical' (one-hot) or 'int'/'sparse' labels for more classes",
        )
    if mode == "int":
        return classes.astype(np.int32)
    if mode in ("sparse", "binary"):
        return classes.astype(np.float32)
    if mode == "binary_column":
        return classes.astype(np.float32)[:, None]
    return to_categorical(classes, num_classes).astype(np.float32)


class EagerArray(np.ndarray):
    """A numpy array that also answers ``.numpy()``, as TensorFlow's eager tensors do: the batches of an
    :class:`ImageDataset` are these, so the course's ``plt.imshow(images[i].numpy().astype("uint8"))`` runs.

    >>> batch = np.zeros((2, 3), np.float32).view(EagerArray)
    >>> type(batch[0].numpy()).__name__, batch[0].numpy().shape
    ('ndarray', (3,))
    """

    def numpy(self) -> np.ndarray:
        return np.asarray(self)


class ImageDataset:
    """What ``image_dataset_from_directory`` returns: iterate it for ``(images, labels)`` batches (one epoch).

    ``len()`` is the number of batches; with ``shuffle`` every iteration has a new order. Images are float32,
    or uint8 with ``interpolation='nearest'`` (TensorFlow's nearest resize keeps the type).
    ``class_names`` and ``file_paths`` (in the dataset's unshuffled order) are as in Keras. Batches are
    :class:`EagerArray` (numpy arrays with TensorFlow's ``.numpy()``).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: np.ndarray | None,
        class_names: list[str],
        file_paths: list[str],
        batch_size: int,
        shuffle: bool,
        seed: int,
    ) -> None:
        self.images, self.labels = images, labels
        self.class_names, self.file_paths = class_names, file_paths
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self._epoch = 0

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        order = np.arange(len(self.images))
        if self.shuffle:
            order = np.random.default_rng((self.seed, self._epoch)).permutation(len(self.images))
            self._epoch += 1
        for start in range(0, len(order), self.batch_size):
            index = torch.from_numpy(order[start : start + self.batch_size])
            x = self.images[index].permute(0, 2, 3, 1).numpy().view(EagerArray)  # float32 (uint8 after 'nearest')
            yield x if self.labels is None else (x, self.labels[index.numpy()].view(EagerArray))

    def take(self, count: int) -> list[Any]:
        """The first ``count`` batches of one pass (``for images, labels in dataset.take(1):``, as the course
        shows a batch)."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigError(f"take: count must be a positive int. Received: count={count!r}")
        batches = []
        for batch in self:
            if len(batches) == count:
                break
            batches.append(batch)
        return batches

    def prefetch(self, buffer_size: int | None = None) -> ImageDataset:
        """This dataset: its images are decoded once, up front, so there is nothing to fetch ahead
        (``dataset.prefetch(buffer_size=AUTOTUNE)`` runs unchanged)."""
        return self

    def cache(self, filename: str = "") -> ImageDataset:
        """This dataset: it is in memory already (``dataset.cache()`` runs unchanged)."""
        return self

    def __repr__(self) -> str:
        return f"ImageDataset({len(self.images)} images, {len(self.class_names)} classes, {len(self)} batches)"


def image_dataset_from_directory(
    directory: str | Path,
    labels: str | None = "inferred",
    label_mode: str | None = "int",
    class_names: Sequence[str] | None = None,
    color_mode: str = "rgb",
    batch_size: int = 32,
    image_size: tuple[int, int] = (256, 256),
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    interpolation: str = "bilinear",
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    follow_links: bool = False,
    verbose: bool = True,
    cache_dir: str | Path | None = None,
) -> ImageDataset | list[ImageDataset]:
    """Batches of images from ``directory/<class>/<image>``, as Keras' function of the same name.

    ``label_mode``: ``int`` (int32 ``(B,)``), ``categorical`` (float32 one-hot), ``binary`` (float32
    ``(B, 1)``, two classes) or None (images only; also what ``labels=None`` gives). Images are
    float32 ``(B, H, W, C)`` in 0..255, resized to ``image_size`` (stretched, or cropped / padded to
    keep the aspect with ``crop_to_aspect_ratio`` / ``pad_to_aspect_ratio``) as TensorFlow's resize does it
    for Keras: ``interpolation='bilinear'`` (Keras' default; no antialiasing, values not rounded) or
    ``'nearest'``.
    The files are Keras': :data:`ALLOWLIST_FORMATS` under the class folders (sorted, hidden ones left out).
    ``validation_split`` with ``subset`` ``training``, ``validation`` or ``both`` splits the files after a
    seeded shuffle, validation the last part, as Keras does.

    >>> import tempfile
    >>> from PIL import Image
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ("cat", "dog"):
    ...     (root / name).mkdir()
    ...     for i in range(3):
    ...         Image.new("RGB", (12, 10)).save(root / name / f"{i}.png")
    >>> train = image_dataset_from_directory(root, image_size=(8, 8), batch_size=4, seed=1,
    ...                                      validation_split=0.5, subset="training")
    Found 6 files belonging to 2 classes.
    Using 3 files for training.
    >>> x, y = next(iter(train))
    >>> train.class_names, x.shape, x.dtype, y.dtype
    (['cat', 'dog'], (3, 8, 8, 3), dtype('float32'), dtype('int32'))
    """
    where = "image_dataset_from_directory"
    if labels not in ("inferred", None):
        raise ConfigError(
            f"labels must be 'inferred' or None. Received: labels={labels!r}",
            where=where,
            fix="put the images in one folder per class (explicit label lists are not supported)",
        )
    if label_mode not in ("int", "categorical", "binary", None):
        raise ConfigError(
            f"label_mode must be 'int', 'categorical', 'binary' or None. Received: {label_mode!r}", where=where
        )
    if color_mode not in COLOR_CHANNELS:
        raise ConfigError(
            f"color_mode must be 'rgb' or 'grayscale'. Received: color_mode={color_mode!r}",
            where=where,
            fix="'rgba' is not supported: transparent images are composited on white as 'rgb'",
        )
    if interpolation not in _TF_RESIZE:
        raise ConfigError(
            f"interpolation must be 'bilinear' (Keras' default) or 'nearest'. Received: {interpolation!r}",
            where=where,
            fix="TensorFlow's other filters (bicubic, area, lanczos, ...) are not reproduced here",
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive int. Received: batch_size={batch_size!r}", where=where)
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ConfigError("crop_to_aspect_ratio and pad_to_aspect_ratio exclude each other", where=where)
    _check_split(validation_split, subset, shuffle, seed, where)
    fit = "crop" if crop_to_aspect_ratio else "pad" if pad_to_aspect_ratio else "stretch"
    files, targets, names = _index_directory(Path(directory), class_names, follow_links, where)
    size = (int(image_size[0]), int(image_size[1]))
    pixels, kept = _decode_for_dataset(files, COLOR_CHANNELS[color_mode], size, interpolation, fit, cache_dir)
    if interpolation == "nearest":  # whole values: TensorFlow hands them out as uint8
        pixels = pixels.astype(np.uint8)
    data = _Folder(
        torch.from_numpy(pixels).permute(0, 3, 1, 2),  # (N, C, H, W), as TensorFlow's resize leaves it
        torch.tensor([targets[i] for i in kept], dtype=torch.long),
        names,
        [str(files[i]) for i in kept],
    )
    if verbose:
        print(f"Found {len(data)} files belonging to {len(data.classes)} classes.")
    seed = int(np.random.randint(1_000_000)) if seed is None else seed
    order = np.random.RandomState(seed).permutation(len(data)) if shuffle else np.arange(len(data))
    mode = None if labels is None or label_mode is None else ("binary_column" if label_mode == "binary" else label_mode)
    n_val = int(validation_split * len(data)) if validation_split else 0
    parts = {"training": order[: len(order) - n_val], "validation": order[len(order) - n_val :]}
    wanted = ["training", "validation"] if subset == "both" else [subset or "training"]
    datasets = []
    for name in wanted:
        if subset is not None and verbose:
            print(f"Using {len(parts[name])} files for {name}.")
        datasets.append(_dataset(data, np.sort(parts[name]), mode, batch_size, shuffle, seed, where))
    return datasets if subset == "both" else datasets[0]


def _index_directory(
    directory: Path, class_names: Sequence[str] | None, follow_links: bool, where: str
) -> tuple[list[Path], list[int], list[str]]:
    """Keras' ``index_directory``: class folders sorted (hidden ones skipped) or ``class_names``; per class the
    files with :data:`ALLOWLIST_FORMATS` suffixes anywhere under it, folders and files in sorted order."""
    if not directory.is_dir():
        raise DataError(
            "image folder not found", where=str(directory), fix="pass a folder holding one folder per class"
        )
    names = (
        list(class_names)
        if class_names is not None
        else sorted(p.name for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    )
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(names):
        walk = sorted(os.walk(directory / name, followlinks=follow_links), key=lambda entry: entry[0])
        found = [
            Path(root) / f for root, _, fnames in walk for f in sorted(fnames) if f.lower().endswith(ALLOWLIST_FORMATS)
        ]
        files += found
        labels += [label] * len(found)
    if not files:
        raise DataError(
            f"No images found in directory {directory}. Allowed formats: {ALLOWLIST_FORMATS}",
            where=where,
            fix="put image files in directory/<class name>/",
        )
    return files, labels, names


_TF_RESIZE = {"bilinear": "bilinear", "nearest": "nearest-exact"}  # tf.image.resize (half-pixel centres) in torch


def _tf_load(path: Path, channels: int, size: tuple[int, int], interpolation: str, fit: str) -> np.ndarray:
    """One file as Keras' ``image_dataset_from_directory`` loads it with TensorFlow: decoded (first frame,
    no EXIF rotation, alpha dropped), then ``tf.image.resize`` (no antialiasing, float32 out), after Keras'
    ``smart_resize`` centre crop (``fit='crop'``) or into ``tf.image.resize_with_pad`` (``fit='pad'``)."""
    try:
        with Image.open(path) as opened:
            image = opened.convert("L" if channels == 1 else "RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image ({exc})", where=str(path), fix="delete, re-export or move it") from None
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32).reshape(image.height, image.width, channels))
    x = pixels.permute(2, 0, 1)[None]  # (1, C, H, W)
    height, width = image.height, image.width
    target_height, target_width = size
    mode = _TF_RESIZE[interpolation]
    if fit == "crop":  # keras.utils.image_utils.smart_resize
        crop_height = max(min(height, int(float(width * target_height) / target_width)), 1)
        crop_width = max(min(width, int(float(height * target_width) / target_height)), 1)
        top, left = int(float(height - crop_height) / 2), int(float(width - crop_width) / 2)
        x = x[:, :, top : top + crop_height, left : left + crop_width]
    if fit == "pad":  # tf.image.resize_with_pad: fit inside, pad with zeros around the centre
        f = np.float32  # TensorFlow computes these in float32
        ratio = max(f(width) / f(target_width), f(height) / f(target_height))
        inner = (max(int(np.floor(f(height) / ratio)), 1), max(int(np.floor(f(width) / ratio)), 1))
        top = max(0, int(np.floor((f(target_height) - f(height) / ratio) / f(2))))
        left = max(0, int(np.floor((f(target_width) - f(width) / ratio) / f(2))))
        resized = F.interpolate(x, size=inner, mode=mode, **_corners(mode))
        x = torch.zeros(1, channels, target_height, target_width)
        x[:, :, top : top + inner[0], left : left + inner[1]] = resized
    else:
        x = F.interpolate(x, size=size, mode=mode, **_corners(mode))
    return x[0].permute(1, 2, 0).contiguous().numpy()


def _corners(mode: str) -> dict[str, Any]:
    return {"align_corners": False, "antialias": False} if mode == "bilinear" else {}


def _decode_for_dataset(
    files: list[Path], channels: int, size: tuple[int, int], interpolation: str, fit: str, cache_dir: Any
) -> tuple[np.ndarray, list[int]]:
    """Every file through :func:`_tf_load` into one float32 ``(N, H, W, C)`` array (threads); unreadable
    files are skipped with a :class:`~cnnlab.data.cache.DataWarning`. Returns the pixels and the kept indices."""
    entry = None
    if cache_dir is not None:
        entry = Path(cache_dir) / cache_key(files, channels, size, f"keras-tf-{interpolation}-{fit}", 0)
        cached = load_cached(entry, strict=False)
        if cached is not None:
            return np.asarray(cached.pixels), cached.kept
    arrays: list[np.ndarray | None] = [None] * len(files)
    errors: dict[int, DataError] = {}

    def one(i: int) -> None:
        try:
            arrays[i] = _tf_load(files[i], channels, size, interpolation, fit)
        except DataError as error:
            errors[i] = error

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(one, range(len(files))))
    problems = []
    for i in sorted(errors):
        warnings.warn(f"skipped: {errors[i]}", DataWarning, stacklevel=3)
        problems.append(Problem(str(files[i]), errors[i].what))
    kept = [i for i, a in enumerate(arrays) if a is not None]
    if not kept:
        raise DataError(f"none of the {len(files)} image files could be read", where=str(files[0].parent))
    pixels = np.stack([arrays[i] for i in kept])  # type: ignore[misc]
    if entry is not None:
        store_cached(entry, pixels, kept, problems, files)
    return pixels, kept


def _check_split(
    validation_split: float | None, subset: str | None, shuffle: bool, seed: int | None, where: str
) -> None:
    if subset not in (None, "training", "validation", "both"):
        raise ConfigError(f"subset must be 'training', 'validation' or 'both'. Received: {subset!r}", where=where)
    if (subset is None) != (not validation_split):
        raise ConfigError(
            "validation_split and subset go together",
            where=where,
            fix="pass both, e.g. validation_split=0.2, subset='training' (and again with 'validation')",
        )
    if validation_split and not 0 < validation_split < 1:
        raise ConfigError(f"validation_split must be between 0 and 1. Received: {validation_split}", where=where)
    if validation_split and shuffle and seed is None:
        raise ConfigError(
            "using validation_split with shuffling needs a seed (the two subsets must not overlap)",
            where=where,
            fix="pass the same seed=... to the training and the validation call",
        )


@dataclass
class _Folder:
    """The decoded folder: images ``(N, C, H, W)``, class indices, class names, file paths."""

    images: torch.Tensor
    targets: torch.Tensor
    classes: list[str]
    paths: list[str]

    def __len__(self) -> int:
        return len(self.images)


def _dataset(
    data: _Folder, index: np.ndarray, mode: str | None, batch_size: int, shuffle: bool, seed: int, where: str
) -> ImageDataset:
    if len(index) == 0:
        raise DataError("this subset holds no images", where=where, fix="lower validation_split or add images")
    labels = encode_labels(data.targets.numpy()[index], mode, len(data.classes), where)
    paths = [data.paths[i] for i in index.tolist()]
    return ImageDataset(data.images[torch.from_numpy(index)], labels, data.classes, paths, batch_size, shuffle, seed)


__all__ = [
    "ALLOWLIST_FORMATS",
    "ImageDataset",
    "encode_labels",
    "image_dataset_from_directory",
    "model_to_dot",
    "plot_model",
    "register_keras_serializable",
    "set_random_seed",
    "to_categorical",
]
