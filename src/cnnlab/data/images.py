"""Decoding image and mask files with Pillow into uint8 numpy arrays.

Every failure (missing, zero-byte, not an image, truncated, a decompression bomb, an unexpected
mask value) is a :class:`~cnnlab.core.errors.DataError` naming the file. Colour handling:
EXIF orientation is applied; palette, RGBA/LA (composited on white), 16-bit and 1-bit images
become 8-bit ``L`` or ``RGB``.

>>> import tempfile, pathlib
>>> from PIL import Image
>>> path = pathlib.Path(tempfile.mkdtemp()) / "red.png"
>>> Image.new("RGBA", (4, 2), (255, 0, 0, 255)).save(path)
>>> read_image(path).shape, read_image(path, channels=1).shape
((2, 4, 3), (2, 4, 1))
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cnnlab.core.errors import ConfigError, DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm")
"""File suffixes (lower case) treated as images when a folder is scanned."""

MAX_PIXELS = 64_000_000
"""Images with more pixels than this are refused as possible decompression bombs."""

GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
"""Pillow modes that hold one intensity channel (plus alpha)."""

MIN_IMAGE_SIDE, MAX_IMAGE_SIDE = 8, 4096
"""Bounds for a requested decode size. Below 8 pixels a side no pattern survives the first conv and
pooling of any zoo model; above 4096 one RGB image is 48 MiB as uint8 (192 MiB as float at the first
layer), far past any CNN input in the zoo (224..600), so a dataset of such images exhausts memory."""

Fit = Literal["stretch", "crop", "pad"]


def check_image_size(
    size: int | Sequence[int] | None, where: str = "img_size", smallest: int = MIN_IMAGE_SIDE
) -> tuple[int, int] | None:
    """Validate a decode size (one int for a square, or (height, width)); returns ``(height, width)`` or None.

    Sides must lie in ``smallest`` .. :data:`MAX_IMAGE_SIDE`. Training and inference call it with
    the default ``smallest`` (:data:`MIN_IMAGE_SIDE`); the loaders in :mod:`~cnnlab.data.datasets`
    pass ``smallest=1`` (a thumbnail decodes fine, it only cannot train a CNN), so that 0, negative
    and huge sizes never reach Pillow.

    >>> check_image_size(32), check_image_size((24, 40)), check_image_size(None)
    ((32, 32), (24, 40), None)
    >>> check_image_size(0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.ConfigError: img_size must be between 8 and 4096 pixels. Received: img_size=0 [img_size]...
    """
    if size is None:
        return None
    sides = (size, size) if not isinstance(size, Sequence) else tuple(size)
    valid = len(sides) == 2 and all(
        isinstance(s, int | np.integer) and not isinstance(s, bool) and smallest <= s <= MAX_IMAGE_SIDE for s in sides
    )
    if not valid:
        raise ConfigError(
            f"img_size must be between {smallest} and {MAX_IMAGE_SIDE} pixels. Received: img_size={size}",
            where=where,
            fix=f"pass one whole number from {smallest} to {MAX_IMAGE_SIDE} (e.g. 32, 64 or 224), "
            "or leave it out to keep the images' own size",
        )
    return int(sides[0]), int(sides[1])


def is_image_file(path: Path) -> bool:
    """Whether ``path`` has an image suffix (case-insensitive) and is not hidden.

    >>> is_image_file(Path("a/B.JPG")), is_image_file(Path("a/.B.jpg")), is_image_file(Path("notes.txt"))
    (True, False, False)
    """
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def natural_key(name: str) -> list[int | str]:
    """Sort key with numbers read as numbers: '2' before '10', so numbered slices and frames keep their order.

    >>> sorted(["10.png", "2.png", "1.png"], key=natural_key)
    ['1.png', '2.png', '10.png']
    """
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def list_image_files(folder: Path) -> list[Path]:
    """The image files under ``folder`` (sub-folders too, hidden files not), in natural order; may be empty."""
    return sorted((p for p in folder.rglob("*") if p.is_file() and is_image_file(p)), key=lambda p: natural_key(str(p)))


def image_files(folder: Path, where: str = "--data") -> list[Path]:
    """:func:`list_image_files`, where no folder or no image is a :class:`DataError` naming ``where`` (what
    ``--data`` of ``cnnlab explain units`` and ``cnnlab explore`` takes, and a folder given to ``cnnlab predict``).

    >>> image_files(Path("no-such-folder"))
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.DataError: no-such-folder is not a folder [--data]. Fix: pass a folder of images ...
    """
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder", where=where, fix="pass a folder of images (sub-folders too)")
    images = list_image_files(folder)
    if not images:
        raise DataError(
            f"no images in {folder} (looked for {', '.join(IMAGE_EXTENSIONS)}, sub-folders too)",
            where=where,
            fix="pass a folder that holds image files",
        )
    return images


def expand_image_paths(paths: Sequence[Path]) -> list[Path]:
    """``paths`` with each folder replaced by its image files (what ``cnnlab predict RUN photos/`` means).

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ("b/10.png", "b/2.png", "b/notes.txt"):
    ...     (folder / name).parent.mkdir(exist_ok=True)
    ...     _ = (folder / name).write_bytes(b"")
    >>> [p.name for p in expand_image_paths([folder / "b", folder / "x.jpg"])]
    ['2.png', '10.png', 'x.jpg']
    """
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            found.append(path)
            continue
        found.extend(image_files(path, where=str(path)))
    return found


def _open(path: Path, max_pixels: int) -> Image.Image:
    """Open (header only) with the bomb guard, raising DataError with the path on any failure."""
    try:
        if path.stat().st_size == 0:
            raise DataError("image file is empty (0 bytes)", where=str(path), fix="delete it or export it again")
    except OSError as exc:
        raise DataError(f"cannot read image: {exc.strerror}", where=str(path), fix="check the path") from None
    try:
        with warnings.catch_warnings():
            # Pillow warns above its own limit and raises above twice that; both count as bombs here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"refused as a decompression bomb ({exc})", where=str(path), fix=_BOMB_FIX) from None
    except UnidentifiedImageError:
        raise DataError("not an image Pillow can read", where=str(path), fix="delete or convert the file") from None
    except OSError as exc:
        raise DataError(f"cannot open image: {exc}", where=str(path), fix="check the file") from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise DataError(
            f"refused as a decompression bomb: {width}x{height} = {width * height:,} pixels > {max_pixels:,}",
            where=str(path),
            fix=_BOMB_FIX,
        )
    return image


_BOMB_FIX = "shrink the image, or raise max_pixels if you trust the file"


def image_info(path: str | Path, max_pixels: int = MAX_PIXELS) -> tuple[tuple[int, int], str]:
    """``((width, height), mode)`` from the header alone (EXIF rotation applied to the size).

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "g.bmp"
    >>> Image.new("L", (5, 3)).save(path)
    >>> image_info(path)
    ((5, 3), 'L')
    """
    path = Path(path)
    with _open(path, max_pixels) as image:
        size = image.size
        try:  # a PNG keeps EXIF after the pixels: reading it reads the (possibly truncated) data
            orientation = image.getexif().get(0x0112, 1)
        except (OSError, SyntaxError, ValueError) as exc:
            raise DataError(
                f"corrupt or truncated image ({exc})", where=str(path), fix="re-export or delete it"
            ) from None
        if orientation in (5, 6, 7, 8):  # orientations that swap width and height
            size = (size[1], size[0])
        return size, image.mode


def to_8bit(image: Image.Image, channels: int) -> Image.Image:
    """Convert any Pillow mode to 8-bit ``L`` (channels=1) or ``RGB`` (channels=3): 16-bit images scaled from
    0..65535, float ones from [0, 1], palettes expanded, transparency composited on white (what training reads).

    >>> to_8bit(Image.new("I;16", (2, 2), 4000), 3).mode, to_8bit(Image.new("RGBA", (2, 2)), 1).mode
    ('RGB', 'L')
    """
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float64)
        # 16-bit data is scaled by its full range (65535 -> 255); float images are taken as [0, 1].
        top = 1.0 if image.mode == "F" else 65535.0
        image = Image.fromarray(np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    target = "L" if channels == 1 else "RGB"
    return image if image.mode == target else image.convert(target)


def resize_image(image: Image.Image, size: tuple[int, int], fit: Fit) -> Image.Image:
    """Resize to ``size`` = (height, width) by stretching, centre-cropping or padding with black."""
    height, width = size
    if fit == "stretch":
        return image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=3.0)
    if fit == "crop":
        return ImageOps.fit(image, (width, height), Image.Resampling.BILINEAR)
    return ImageOps.pad(image, (width, height), Image.Resampling.BILINEAR, color=0)


def read_image(
    path: str | Path,
    channels: int = 3,
    size: int | tuple[int, int] | None = None,
    fit: Fit = "stretch",
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """Decode one image to a uint8 array ``(H, W, channels)``, optionally resized.

    ``size`` is (height, width) or one int for a square; ``fit`` says how the aspect ratio is
    handled: ``stretch``, ``crop`` (fill, centre-crop the excess) or ``pad`` (fit inside, pad black).

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "wide.png"
    >>> Image.new("RGB", (40, 20), (0, 128, 255)).save(path)
    >>> read_image(path, size=10, fit="crop").shape, read_image(path, size=10, fit="pad")[0, 0].tolist()
    ((10, 10, 3), [0, 0, 0])
    """
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3. Received: channels={channels}", where="read_image")
    path = Path(path)
    target = (size, size) if isinstance(size, int) else size
    source = image = _open(path, max_pixels)
    try:
        if target is not None and image.format == "JPEG":
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that still covers the target: much faster.
            image.draft("L" if channels == 1 else "RGB", (target[1], target[0]))
        image = ImageOps.exif_transpose(image)
        image = to_8bit(image, channels)
        if target is not None:
            image = resize_image(image, target, fit)
        array = np.asarray(image, dtype=np.uint8)
    except DataError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow reports truncated/corrupt data as OSError
        raise DataError(f"corrupt or truncated image ({exc})", where=str(path), fix="re-export or delete it") from None
    finally:
        source.close()  # the opened file, not the converted copies
    return array.reshape(array.shape[0], array.shape[1], channels)


def read_mask(path: str | Path, num_classes: int = 2, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode a segmentation mask to class indices, a uint8 array ``(H, W)``.

    Masks are grayscale or palette images (palette masks keep their indices); an RGB(A) mask whose
    three channels are equal everywhere (grey saved as RGB by many tools) is read as grayscale, a
    coloured one is an error. For two classes, ``{0, 255}`` is read as ``{0, 1}``; any other value is
    an error naming the file and the values found, except in a JPEG mask whose pixels nearly all lie within
    :data:`JPEG_MASK_SLACK` of 0 or 255 (compression blurs the two values): it is thresholded at 128 (a
    dataset loader says so once). For more classes every value must be below ``num_classes``.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "m.png"
    >>> Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).save(path)
    >>> read_mask(path).tolist()
    [[0, 1], [1, 0]]
    """
    path = Path(path)
    source = image = _open(path, max_pixels)
    try:
        if image.mode not in ("1", "L", "P", "I", "I;16", "I;16B", "I;16L", "RGB", "RGBA"):
            raise DataError(
                f"mask must be grayscale or palette, found mode {image.mode}",
                where=str(path),
                fix="save masks as 8-bit grayscale or palette PNG holding class indices",
            )
        image = ImageOps.exif_transpose(image)
        values = np.asarray(image.convert("L") if image.mode == "1" else image)
        if values.ndim == 3:  # RGB(A): accepted only as grey stored in three equal channels
            rgb = values[..., :3]
            if is_jpeg(path) and np.ptp(rgb.astype(np.int16), axis=-1).max() <= JPEG_MASK_SLACK:
                rgb = np.repeat(rgb.mean(-1, keepdims=True).round().astype(np.uint8), 3, axis=-1)
            if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])):
                raise DataError(
                    f"colour mask ({image.mode} with differing channels): class indices cannot be read from colours",
                    where=str(path),
                    fix="save masks as 8-bit grayscale or palette PNG holding class indices (map each colour "
                    "to its class index first)",
                )
            values = rgb[..., 0]
    except DataError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"corrupt or truncated mask ({exc})", where=str(path), fix="re-export or delete it") from None
    finally:
        source.close()
    if num_classes == 2 and is_jpeg(path):
        values = _threshold_binary_jpeg(values)
    return mask_to_classes(values, num_classes, where=str(path))


JPEG_MASK_SLACK = 32
"""How far from 0 or 255 a binary JPEG mask's pixels may lie (JPEG's ringing at the edges stays within it)."""


def is_jpeg(path: Path) -> bool:
    """Whether ``path`` is named as a JPEG file."""
    return path.suffix.lower() in (".jpg", ".jpeg")


def _threshold_binary_jpeg(values: np.ndarray) -> np.ndarray:
    """``values`` at 0 / 255 split at 128 when at least 98% lie within :data:`JPEG_MASK_SLACK` of the two,
    else unchanged (so :func:`mask_to_classes` names the values)."""
    near = (values <= JPEG_MASK_SLACK) | (values >= 255 - JPEG_MASK_SLACK)
    if near.mean() < 0.98:
        return values
    return np.where(values >= 128, 255, 0).astype(np.uint8)


def mask_to_classes(values: np.ndarray, num_classes: int = 2, where: str = "mask") -> np.ndarray:
    """Map raw mask values to class indices (``{0, 255}`` -> ``{0, 1}`` for binary masks).

    >>> mask_to_classes(np.array([0, 1, 1]), 2).tolist()
    [0, 1, 1]
    >>> mask_to_classes(np.array([0, 128, 255]), 2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.DataError: mask has unexpected values [0, 128, 255] for 2 classes [mask]. Fix: ...
    """
    found = np.unique(values)
    if num_classes == 2 and set(found.tolist()) <= {0, 255}:
        return (values == 255).astype(np.uint8)
    if found.size and (found[0] < 0 or found[-1] >= num_classes):
        shown = found.tolist()[:10] + (["..."] if found.size > 10 else [])
        raise DataError(
            f"mask has unexpected values {shown} for {num_classes} classes",
            where=where,
            fix="binary masks must hold only {0, 1} or only {0, 255}; class masks values below num_classes "
            "(a JPEG mask adds in-between values: save masks as PNG)",
        )
    return values.astype(np.uint8)
