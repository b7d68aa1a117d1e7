"""``keras.preprocessing.image``: ``ImageDataGenerator`` with ``flow`` / ``flow_from_directory``,
``load_img`` and ``img_to_array``.

Batches are Keras': NHWC ``float32`` numpy arrays. The random moves (rotation, shifts, shear, zoom,
flips, brightness) run batched through cnnlab's augmentation (:func:`cnnlab.data.augment.from_keras`),
then ``standardize`` applies ``preprocessing_function``, ``rescale`` and the centring /
normalisation options in Keras' order. An argument cnnlab does not implement with a non-default
value (``zca_whitening``, ``channel_shift_range``, ``fill_mode='wrap'``, ...) is a
:class:`~cnnlab.core.errors.ConfigError` naming it, never silently ignored.

The iterators are Keras ``Sequence``-like: ``len()`` is the number of batches per epoch, ``it[i]`` a
batch, ``next(it)`` runs forever (reshuffling each epoch), as Keras' iterators do.

>>> x, y = np.random.rand(10, 8, 8, 3).astype("float32"), np.arange(10)
>>> it = ImageDataGenerator(rotation_range=10, horizontal_flip=True).flow(x, y, batch_size=4, seed=0)
>>> batch_x, batch_y = next(it)
>>> len(it), batch_x.shape, batch_x.dtype, batch_y.shape
(3, (4, 8, 8, 3), dtype('float32'), (4,))
"""

from __future__ import annotations

import io
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.data.augment import Compose, from_keras
from cnnlab.data.cache import DataWarning, Problem, cache_key
from cnnlab.data.cache import _load as load_cached
from cnnlab.data.cache import _store as store_cached
from cnnlab.keras.utils import encode_labels

_UNSUPPORTED: dict[str, Any] = {
    "zca_whitening": False,
    "zca_epsilon": 1e-6,
    "channel_shift_range": 0.0,
    "cval": 0.0,
    "interpolation_order": 1,
}
"""Keras arguments not implemented here, with the default value that is accepted."""

_AUGMENT = ("rotation_range", "width_shift_range", "height_shift_range", "shear_range", "zoom_range")
_CLASS_MODES = ("categorical", "binary", "sparse", "input", None)
_EPSILON = 1e-6  # Keras adds it to the standard deviation before dividing


class ImageDataGenerator:
    """Real-time augmentation and standardisation of image batches, with Keras' arguments.

    Supported: ``rotation_range`` (degrees), ``width_shift_range`` / ``height_shift_range``
    (fraction of the side when < 1, else pixels), ``shear_range`` (degrees), ``zoom_range``,
    ``horizontal_flip``, ``vertical_flip``, ``brightness_range``, ``fill_mode`` (``nearest``,
    ``constant`` (with ``cval=0``), ``reflect``), ``rescale``, ``preprocessing_function``,
    ``featurewise_center`` / ``featurewise_std_normalization`` (after :meth:`fit`),
    ``samplewise_center`` / ``samplewise_std_normalization`` and ``validation_split``.

    >>> ImageDataGenerator(channel_shift_range=20.0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.ConfigError: ImageDataGenerator: channel_shift_range=20.0 is not supported ...
    """

    def __init__(
        self,
        featurewise_center: bool = False,
        samplewise_center: bool = False,
        featurewise_std_normalization: bool = False,
        samplewise_std_normalization: bool = False,
        rotation_range: float = 0,
        width_shift_range: float = 0.0,
        height_shift_range: float = 0.0,
        brightness_range: Sequence[float] | None = None,
        shear_range: float = 0.0,
        zoom_range: float | Sequence[float] = 0.0,
        fill_mode: str = "nearest",
        horizontal_flip: bool = False,
        vertical_flip: bool = False,
        rescale: float | None = None,
        preprocessing_function: Callable[[np.ndarray], np.ndarray] | None = None,
        data_format: str | None = None,
        validation_split: float = 0.0,
        dtype: str | None = None,
        **unsupported: Any,
    ) -> None:
        for name, value in unsupported.items():
            if name not in _UNSUPPORTED:
                raise ConfigError(f"ImageDataGenerator got an unknown argument '{name}'", where=name)
            if value != _UNSUPPORTED[name]:
                raise ConfigError(
                    f"ImageDataGenerator: {name}={value!r} is not supported",
                    where=name,
                    fix=f"leave {name} at its default ({_UNSUPPORTED[name]!r}) or prepare the images yourself",
                )
        if data_format not in (None, "channels_last"):
            raise ConfigError(
                f"ImageDataGenerator: data_format={data_format!r} is not supported",
                where="data_format",
                fix="use channels_last (NHWC) arrays, the Keras default",
            )
        if dtype not in (None, "float32"):
            raise ConfigError(f"ImageDataGenerator: dtype={dtype!r} is not supported", where="dtype", fix="float32")
        if not 0.0 <= validation_split < 1.0:
            raise ConfigError(
                f"validation_split must be in [0, 1). Received: {validation_split}", where="validation_split"
            )
        moves = {
            "rotation_range": rotation_range,
            "width_shift_range": width_shift_range,
            "height_shift_range": height_shift_range,
            "shear_range": shear_range,
            "zoom_range": zoom_range,
            "horizontal_flip": horizontal_flip,
            "vertical_flip": vertical_flip,
            "fill_mode": fill_mode,
        }
        if brightness_range is not None:
            moves["brightness_range"] = tuple(brightness_range)
        self.pipeline: Compose = from_keras(**moves)
        self.featurewise_center, self.samplewise_center = featurewise_center, samplewise_center
        self.featurewise_std_normalization = featurewise_std_normalization
        self.samplewise_std_normalization = samplewise_std_normalization
        self.rescale, self.preprocessing_function = rescale, preprocessing_function
        self.validation_split = validation_split
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    # ----- Keras API ---------------------------------------------------------------------------
    def fit(self, x: Any, augment: bool = False, rounds: int = 1, seed: int | None = None) -> None:
        """Per-channel ``mean`` and ``std`` of ``x`` (N, H, W, C) after ``rescale``, for the featurewise options."""
        if augment:
            raise ConfigError("ImageDataGenerator.fit: augment=True is not supported", where="fit", fix="augment=False")
        data = _images(x, "ImageDataGenerator.fit").copy()
        if self.rescale:
            data *= self.rescale
        self.mean = data.mean(axis=(0, 1, 2)).reshape(1, 1, -1)
        self.std = (data - self.mean).std(axis=(0, 1, 2)).reshape(1, 1, -1)

    def standardize(self, x: np.ndarray) -> np.ndarray:
        """``preprocessing_function``, ``rescale``, then centring / normalisation, in place, on one image
        ``(H, W, C)`` or a batch ``(N, H, W, C)`` (Keras' order)."""
        if x.ndim == 3:
            return self.standardize(x[None])[0]
        if self.preprocessing_function is not None:
            x[...] = np.stack([self.preprocessing_function(image) for image in x])
        if self.rescale:
            x *= self.rescale
        if self.samplewise_center:
            x -= x.mean(axis=(1, 2, 3), keepdims=True)
        if self.samplewise_std_normalization:
            x /= x.std(axis=(1, 2, 3), keepdims=True) + _EPSILON
        for wanted, stat, name in (
            (self.featurewise_center, self.mean, "featurewise_center"),
            (self.featurewise_std_normalization, self.std, "featurewise_std_normalization"),
        ):
            if not wanted:
                continue
            if stat is None:
                warnings.warn(
                    f"This ImageDataGenerator specifies `{name}`, but it hasn't been fit on any training data. "
                    "Fit it first by calling `.fit(numpy_data)`.",
                    stacklevel=2,
                )
            elif name == "featurewise_center":
                x -= stat
            else:
                x /= stat + _EPSILON
        return x

    def flow(
        self,
        x: Any,
        y: Any = None,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | None = None,
        subset: str | None = None,
    ) -> NumpyArrayIterator:
        """Batches of ``x`` (N, H, W, C) (and ``y``), augmented. ``subset`` ``validation`` is the *first*
        ``validation_split`` of the arrays, ``training`` the rest, as in Keras."""
        images = _images(x, "flow")
        labels = None if y is None else np.asarray(y)
        if labels is not None and len(labels) != len(images):
            raise DataError(f"flow: x has {len(images)} samples but y has {len(labels)}", where="flow")
        if subset is not None:
            cut = int(len(images) * self._split(subset, "flow"))
            keep = slice(None, cut) if subset == "validation" else slice(cut, None)
            images, labels = images[keep], None if labels is None else labels[keep]
        pixels = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
        return NumpyArrayIterator(self, pixels, labels, batch_size, shuffle, seed)

    def flow_from_directory(
        self,
        directory: str | Path,
        target_size: tuple[int, int] = (256, 256),
        color_mode: str = "rgb",
        classes: Sequence[str] | None = None,
        class_mode: str | None = "categorical",
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | None = None,
        save_to_dir: str | Path | None = None,
        save_prefix: str = "",
        save_format: str = "png",
        follow_links: bool = False,
        subset: str | None = None,
        interpolation: str = "nearest",
        keep_aspect_ratio: bool = False,
        cache_dir: str | Path | None = None,
    ) -> DirectoryIterator:
        """Batches from ``directory/<class>/<image>``, found and decoded as Keras 3.15 does: the classes are
        the sorted sub-folders (or ``classes``), the files those with Keras' suffixes
        (:data:`FLOW_FROM_DIRECTORY_FORMATS`: png, jpg, jpeg, bmp, ppm, tif, tiff; not gif or webp), anywhere
        under a class folder, in sorted order; each image is read by :func:`load_img` (Pillow, converted
        to ``color_mode``, resized to ``target_size`` with ``interpolation``, Keras' ``'nearest'`` by default;
        ``keep_aspect_ratio`` crops the centre to the target's aspect first). Images are decoded once, when
        the iterator is made (``cache_dir`` keeps them on disk, memory-mapped, for later runs); an unreadable
        file is skipped with a warning (Keras fails on it mid-epoch).

        ``class_mode``: ``categorical`` (one-hot), ``binary`` / ``sparse`` (float32 class indices), ``input``
        (the images again) or None (images only). ``subset`` ``validation`` takes the first
        ``validation_split`` of every class's files, ``training`` the rest (Keras).
        """
        where = "flow_from_directory"
        if class_mode not in _CLASS_MODES:
            raise ConfigError(
                f"class_mode must be one of {_CLASS_MODES}. Received: class_mode={class_mode!r}", where=where
            )
        _check_load_options(color_mode, interpolation, where)
        if save_to_dir is not None:
            raise ConfigError(
                "flow_from_directory: save_to_dir is not supported",
                where=where,
                fix="drop it; save augmented batches yourself, e.g. with PIL.Image.fromarray",
            )
        size = (int(target_size[0]), int(target_size[1]))
        split = None if subset is None else self._split(subset, where)
        files, labels, class_names = _list_directory(Path(directory), classes, follow_links, subset, split)
        settings = (color_mode, size, interpolation, keep_aspect_ratio)
        pixels, kept = _decode_files(files, settings, cache_dir)
        print(f"Found {len(kept)} images belonging to {len(class_names)} classes.")
        return DirectoryIterator(
            self,
            torch.from_numpy(pixels).permute(0, 3, 1, 2),  # (N, C, H, W) uint8
            np.asarray([labels[i] for i in kept], dtype=np.int32),
            class_names,
            [str(files[i]) for i in kept],
            Path(directory),
            class_mode,
            batch_size,
            shuffle,
            seed,
        )

    # ----- helpers -----------------------------------------------------------------------------
    def _split(self, subset: str, where: str) -> float:
        if subset not in ("training", "validation"):
            raise ConfigError(f"subset must be 'training' or 'validation'. Received: {subset!r}", where=where)
        if not self.validation_split:
            raise ConfigError(
                f"subset={subset!r} needs a validation_split",
                where=where,
                fix="pass it to the generator: ImageDataGenerator(validation_split=0.2)",
            )
        return self.validation_split

    def transform_batch(self, pixels: torch.Tensor, generator: torch.Generator) -> np.ndarray:
        """A batch ``(B, C, H, W)`` (uint8 or float, values 0..255) -> augmented, standardised NHWC float32."""
        x = pixels.float()
        if self.pipeline.transforms:
            # The pipeline reads floats as 0..1 (brightness clips there): scale around it; the moves are linear.
            x = self.pipeline(x / 255.0, generator) * 255.0
        return self.standardize(np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy()))


class _Iterator(ABC):
    """Keras' ``Iterator``: ``len``, ``[i]``, endless ``next`` with a seeded reshuffle per epoch."""

    def __init__(
        self, generator: ImageDataGenerator, pixels: torch.Tensor, batch_size: int, shuffle: bool, seed: int | None
    ) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive int. Received: {batch_size!r}", where="batch_size")
        if len(pixels) == 0:
            raise DataError("no images to iterate over", fix="check the data (or lower validation_split)")
        self.image_data_generator, self.pixels = generator, pixels
        self.n, self.batch_size, self.shuffle = len(pixels), batch_size, shuffle
        self.seed = int(np.random.randint(1_000_000)) if seed is None else seed
        self.epoch = self.batch_index = 0
        self.total_batches_seen = 0
        self.index_array = self._order()

    def _order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.n)
        return np.random.default_rng((self.seed, self.epoch)).permutation(self.n)

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __getitem__(self, i: int) -> Any:
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} is out of range: this iterator has {len(self)} batches")
        index = self.index_array[i * self.batch_size : (i + 1) * self.batch_size]
        random = torch.Generator().manual_seed(hash((self.seed, self.epoch, i)) & 0x7FFFFFFF)
        x = self.image_data_generator.transform_batch(self.pixels[torch.from_numpy(index)], random)
        return self._output(x, index)

    @abstractmethod
    def _output(self, x: np.ndarray, index: np.ndarray) -> Any:
        """The batch as handed out: images alone, or with their labels."""

    def on_epoch_end(self) -> None:
        """Start a new epoch: a new order when shuffling."""
        self.epoch += 1
        self.batch_index = 0
        self.index_array = self._order()

    def reset(self) -> None:
        """Back to the first batch of the current epoch."""
        self.batch_index = 0

    def __iter__(self) -> _Iterator:
        return self

    def __next__(self) -> Any:
        if self.batch_index >= len(self):
            self.on_epoch_end()
        batch = self[self.batch_index]
        self.batch_index += 1
        self.total_batches_seen += 1
        return batch


class NumpyArrayIterator(_Iterator):
    """What :meth:`ImageDataGenerator.flow` returns: ``x`` batches, or ``(x, y)`` with ``y`` as given."""

    def __init__(
        self,
        generator: ImageDataGenerator,
        pixels: torch.Tensor,
        y: np.ndarray | None,
        batch_size: int,
        shuffle: bool,
        seed: int | None,
    ) -> None:
        super().__init__(generator, pixels, batch_size, shuffle, seed)
        self.y = y

    def _output(self, x: np.ndarray, index: np.ndarray) -> Any:
        return x if self.y is None else (x, self.y[index])


class DirectoryIterator(_Iterator):
    """What :meth:`ImageDataGenerator.flow_from_directory` returns, with Keras' attributes: ``class_indices``
    (name -> index), ``classes`` (int32 index per sample), ``samples``, ``filenames`` (relative to the
    directory), ``filepaths``, ``num_classes``, ``image_shape`` and ``class_mode``."""

    def __init__(
        self,
        generator: ImageDataGenerator,
        pixels: torch.Tensor,
        classes: np.ndarray,
        class_names: list[str],
        paths: list[str],
        directory: Path,
        class_mode: str | None,
        batch_size: int,
        shuffle: bool,
        seed: int | None,
    ) -> None:
        super().__init__(generator, pixels, batch_size, shuffle, seed)
        self.directory, self.class_mode = directory, class_mode
        self.classes = classes
        self.class_indices = {name: i for i, name in enumerate(class_names)}
        self.num_classes = len(class_names)
        self.samples = len(classes)
        self.filepaths = paths
        self.filenames = [str(Path(p).relative_to(directory)) for p in paths]
        self.image_shape = (pixels.shape[2], pixels.shape[3], pixels.shape[1])
        mode = None if class_mode == "input" else class_mode
        self._labels = encode_labels(classes, mode, self.num_classes, "flow_from_directory")

    @property
    def labels(self) -> np.ndarray:
        """The class index of every sample (Keras' alias of ``classes``)."""
        return self.classes

    def _output(self, x: np.ndarray, index: np.ndarray) -> Any:
        if self.class_mode == "input":
            return x, x.copy()
        return x if self._labels is None else (x, self._labels[index])


def load_img(
    path: str | Path,
    color_mode: str = "rgb",
    target_size: tuple[int, int] | None = None,
    interpolation: str = "nearest",
    keep_aspect_ratio: bool = False,
) -> Image.Image:
    """One image file as a PIL image, read as Keras' ``load_img`` reads it: converted to ``color_mode``
    (``rgb``, ``grayscale`` or ``rgba``; no EXIF rotation, transparency dropped by Pillow's conversion) and,
    when its size differs, resized to ``target_size`` (height, width) with ``interpolation`` (Pillow's
    ``nearest`` by default, ``bilinear``, ``bicubic``, ``hamming``, ``box``, ``lanczos``); ``keep_aspect_ratio``
    crops the centre to the target's aspect ratio first. A file Pillow cannot read is a :class:`DataError`.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "a.png"
    >>> Image.new("RGB", (6, 4)).save(path)
    >>> img_to_array(load_img(path, target_size=(2, 3))).shape
    (2, 3, 3)
    """
    _check_load_options(color_mode, interpolation, "load_img")
    path = Path(path)
    try:
        with open(path, "rb") as file:
            img = Image.open(io.BytesIO(file.read()))
        mode = _COLOR_MODES[color_mode][0]
        if img.mode != mode:  # 16-bit grey becomes 8-bit too (Keras keeps 'I;16' values; every batch here is 8-bit)
            img = img.convert(mode)
        if target_size is not None:
            wanted = (int(target_size[1]), int(target_size[0]))  # Pillow's (width, height)
            if img.size != wanted:
                box = _centre_crop_box(img.size, wanted) if keep_aspect_ratio else None
                img = img.resize(wanted, INTERPOLATIONS[interpolation], box=box)
        img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(
            f"cannot read image ({exc})", where=str(path), fix="delete, re-export or move the file"
        ) from None
    return img


FLOW_FROM_DIRECTORY_FORMATS = ("png", "jpg", "jpeg", "bmp", "ppm", "tif", "tiff")
"""The file suffixes ``flow_from_directory`` reads: Keras 3.15's ``white_list_formats`` (no gif, no webp)."""

INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "hamming": Image.Resampling.HAMMING,
    "box": Image.Resampling.BOX,
    "lanczos": Image.Resampling.LANCZOS,
}
"""Keras' ``interpolation`` names for :func:`load_img` and ``flow_from_directory`` -> Pillow's filters."""

_COLOR_MODES = {"grayscale": ("L", 1), "rgb": ("RGB", 3), "rgba": ("RGBA", 4)}


def _check_load_options(color_mode: str, interpolation: str, where: str) -> None:
    if color_mode not in _COLOR_MODES:
        raise ConfigError(
            f"color_mode must be 'grayscale', 'rgb' or 'rgba'. Received: color_mode={color_mode!r}", where=where
        )
    if interpolation not in INTERPOLATIONS:
        raise ConfigError(
            f"Invalid interpolation method {interpolation!r}. Supported methods are {', '.join(INTERPOLATIONS)}",
            where=where,
        )


def _centre_crop_box(size: tuple[int, int], wanted: tuple[int, int]) -> tuple[int, int, int, int]:
    """Keras' ``keep_aspect_ratio`` crop: the centre of the image with the target's aspect ratio."""
    width, height = size
    target_width, target_height = wanted
    crop_height = min(height, (width * target_height) // target_width)
    crop_width = min(width, (height * target_width) // target_height)
    top, left = (height - crop_height) // 2, (width - crop_width) // 2
    return left, top, left + crop_width, top + crop_height


def _list_directory(
    directory: Path, classes: Sequence[str] | None, follow_links: bool, subset: str | None, split: float | None
) -> tuple[list[Path], list[int], list[str]]:
    """Keras' file index: class folders (sorted, or ``classes``), then per class the files with Keras'
    suffixes under it (``os.walk`` sorted by folder, files sorted), cut for ``subset``."""
    if not directory.is_dir():
        raise DataError(
            "image folder not found", where=str(directory), fix="pass a folder holding one folder per class"
        )
    names = list(classes) if classes else sorted(p.name for p in directory.iterdir() if p.is_dir())
    hidden = [name for name in names if name.startswith(".")]
    if hidden:
        warnings.warn(
            f"flow_from_directory: hidden folders {hidden} are classes too (Keras counts every sub-folder); "
            "move them out or pass classes=[...]",
            DataWarning,
            stacklevel=3,
        )
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(names):
        found = [
            Path(root) / fname
            for root, _, fnames in sorted(os.walk(directory / name, followlinks=follow_links), key=lambda w: w[0])
            for fname in sorted(fnames)
            if fname.lower().endswith(FLOW_FROM_DIRECTORY_FORMATS)
        ]
        if split is not None:
            cut = int(split * len(found))
            found = found[:cut] if subset == "validation" else found[cut:]
        files += found
        labels += [label] * len(found)
    return files, labels, names


def _decode_files(
    files: list[Path], settings: tuple[str, tuple[int, int], str, bool], cache_dir: str | Path | None
) -> tuple[np.ndarray, list[int]]:
    """Every file through :func:`load_img` into one uint8 ``(N, H, W, C)`` array (threads: Pillow releases the
    GIL); unreadable files are skipped with a :class:`DataWarning`. Returns the pixels and the kept indices."""
    color_mode, size, interpolation, keep_aspect_ratio = settings
    channels = _COLOR_MODES[color_mode][1]
    entry = None
    if cache_dir is not None:
        fit = f"keras-load_img-{color_mode}-{interpolation}-{keep_aspect_ratio}"
        entry = Path(cache_dir) / cache_key(files, channels, size, fit, 0)
        cached = load_cached(entry, strict=False)
        if cached is not None:
            return np.asarray(cached.pixels), cached.kept
    arrays: list[np.ndarray | None] = [None] * len(files)
    errors: dict[int, DataError] = {}

    def one(i: int) -> None:
        try:
            image = load_img(files[i], color_mode, size, interpolation, keep_aspect_ratio)
            arrays[i] = np.asarray(image, dtype=np.uint8).reshape(size[0], size[1], channels)
        except DataError as error:
            errors[i] = error

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(one, range(len(files))))
    problems = []
    for i in sorted(errors):
        warnings.warn(f"skipped: {errors[i]}", DataWarning, stacklevel=3)
        problems.append(Problem(str(files[i]), errors[i].what))
    kept = [i for i, a in enumerate(arrays) if a is not None]
    pixels = np.stack([arrays[i] for i in kept]) if kept else np.zeros((0, *size, channels), np.uint8)  # type: ignore[misc]
    if entry is not None:
        store_cached(entry, pixels, kept, problems, files)
    return pixels, kept


def img_to_array(img: Image.Image | np.ndarray, dtype: str = "float32") -> np.ndarray:
    """A PIL image as an ``(H, W, C)`` array (grayscale gets ``C = 1``), float32 by default."""
    array = np.asarray(img, dtype=dtype)
    return array[..., None] if array.ndim == 2 else array


def _images(x: Any, where: str) -> np.ndarray:
    array = np.asarray(x, dtype=np.float32)
    if array.ndim != 4:
        raise DataError(
            f"{where}: images must be a rank-4 array (N, H, W, C). Received shape {array.shape}",
            where=where,
            fix="add the channel axis: x[..., None] for grayscale",
        )
    return array


__all__ = [
    "FLOW_FROM_DIRECTORY_FORMATS",
    "INTERPOLATIONS",
    "DirectoryIterator",
    "ImageDataGenerator",
    "NumpyArrayIterator",
    "img_to_array",
    "load_img",
]
