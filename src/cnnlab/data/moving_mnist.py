"""Moving MNIST-style clips: MNIST digits sliding across a larger black frame (Srivastava et al. 2015).

Each clip is ``frames`` frames of ``size`` x ``size`` pixels with ``digits_per_clip`` digits moving at constant
velocity; overlapping digits are merged by their brighter pixel. Two labelling tasks:

- ``"direction"`` (4 classes ``left``, ``right``, ``up``, ``down``; up is towards row 0, the top of the image):
  each digit moves mainly in the clip's direction, at 2-3 px/frame (``speed``), with a sideways drift of at most
  a quarter of that. It starts where it has room for the whole path, so it never bounces off an edge. Where the
  path would not fit, the speed range is scaled down until it does: with 20 frames of 64x64 and 28x28 digits
  there are 36 px of room, so speeds become 1.26-1.89 px/frame.
- ``"digit"`` (the digit's identity, classes ``"0"``.. ``"9"``): a random direction at 2-3 px/frame, bouncing
  off the edges as in the original dataset. All digits of a clip are the same digit (different handwriting).

Classes are balanced (clip ``i`` gets class ``i mod classes`` before shuffling). Everything is vectorised
with numpy: 2,000 clips of 20 frames of 64x64 take about a second.

>>> digits = np.zeros((2, 28, 28), dtype=np.uint8)
>>> digits[:, 10:18, 12:16] = 255
>>> clips, labels, classes = moving_digits(digits, np.array([3, 7]), n_clips=8, frames=5, size=40)
>>> clips.shape, clips.dtype, classes, np.bincount(labels).tolist()
((8, 5, 40, 40), dtype('uint8'), ['left', 'right', 'up', 'down'], [2, 2, 2, 2])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.data.clips import save_clip_folder
from cnnlab.data.idx import read_idx

DIRECTIONS = ("left", "right", "up", "down")
"""Class names of the direction task, in label order."""

_STEPS = np.array([[0, -1], [0, 1], [-1, 0], [1, 0]], dtype=np.float64)
"""(row, column) unit step of each direction."""

Task = Literal["direction", "digit"]


def _pick_digits(
    labels: np.ndarray, n_clips: int, k: int, task: Task, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(digit indices (n, k), clip labels (n,), classes)."""
    if task == "direction":
        y = rng.permutation(np.arange(n_clips) % len(DIRECTIONS))
        return rng.integers(0, len(labels), (n_clips, k)), y, list(DIRECTIONS)
    present = np.unique(labels)
    y = present[rng.permutation(np.arange(n_clips) % len(present))]
    order = np.argsort(labels, kind="stable")
    first = np.searchsorted(labels[order], y)  # where each clip's digit class starts in the sorted order
    count = np.searchsorted(labels[order], y, side="right") - first
    index = order[first[:, None] + (rng.random((n_clips, k)) * count[:, None]).astype(np.int64)]
    return index, y, [str(c) for c in range(int(labels.max()) + 1)]


def _paths(
    y: np.ndarray, k: int, frames: int, room: int, task: Task, speed: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """Top-left corner (row, column) of every digit in every frame, (n, k, frames, 2) ints in 0..room."""
    n, t = len(y), np.arange(frames, dtype=np.float64)
    low, high = speed
    if task == "direction":
        scale = min(1.0, room / (high * max(frames - 1, 1)))
        v = (low + (high - low) * rng.random((n, k))) * scale
        drift = (rng.random((n, k)) - 0.5) * 0.5 * v  # sideways, at most a quarter of the speed
        step = _STEPS[y][:, None, :]  # (n, 1, 2)
        velocity = step * v[..., None] + step[..., ::-1] * drift[..., None]  # (n, k, 2)
        travel = velocity * (frames - 1)
        start_low, start_high = np.maximum(0, -travel), room - np.maximum(0, travel)
        start = start_low + rng.random((n, k, 2)) * (start_high - start_low)
        return np.rint(start[:, :, None] + velocity[:, :, None] * t[:, None]).astype(np.int64).clip(0, room)
    angle = rng.random((n, k)) * 2 * np.pi
    v = low + (high - low) * rng.random((n, k))
    velocity = np.stack([np.sin(angle), np.cos(angle)], -1) * v[..., None]
    unfolded = rng.random((n, k, 2))[:, :, None] * room + velocity[:, :, None] * t[:, None]
    folded = np.mod(unfolded, 2 * room)  # bounce: reflect at 0 and at room
    return np.rint(np.where(folded > room, 2 * room - folded, folded)).astype(np.int64)


def moving_digits(
    images: np.ndarray,
    labels: np.ndarray | Sequence[int],
    n_clips: int,
    frames: int = 20,
    size: int = 64,
    task: Task = "direction",
    digits_per_clip: int = 1,
    seed: int = 0,
    speed: tuple[float, float] = (2.0, 3.0),
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``n_clips`` clips of MNIST ``images`` (uint8 (N, 28, 28)) moving in a ``size`` x ``size`` frame:
    ``(clips uint8 (n_clips, frames, size, size), labels int64 (n_clips,), classes)``. ``task`` and ``speed``
    (px/frame) as the module says; for ``"digit"`` the labels are the MNIST ``labels`` of the digits shown.
    The same ``seed`` gives the same clips.
    """
    images = np.asarray(images)
    labels = np.asarray(labels).astype(np.int64)
    if images.ndim != 3 or images.dtype != np.uint8 or len(images) != len(labels) or len(images) == 0:
        raise DataError(
            f"need uint8 digit images (N, H, W) and N labels, got {images.dtype} {images.shape} and {labels.shape}",
            where="moving_digits",
        )
    if task not in ("direction", "digit"):
        raise ConfigError(f"task must be 'direction' or 'digit'. Received: task={task!r}", where="moving_digits")
    room = size - max(images.shape[1:])
    if room < 1 or frames < 2 or n_clips < 1 or digits_per_clip < 1:
        raise ConfigError(
            f"need size > digit size ({images.shape[1]}), frames >= 2, n_clips >= 1 and digits_per_clip >= 1. "
            f"Received: size={size}, frames={frames}, n_clips={n_clips}, digits_per_clip={digits_per_clip}",
            where="moving_digits",
        )
    if not 0 < speed[0] <= speed[1]:
        raise ConfigError(f"speed must be 0 < low <= high px/frame. Received: speed={speed}", where="moving_digits")
    rng = np.random.default_rng(seed)
    index, y, classes = _pick_digits(labels, n_clips, digits_per_clip, task, rng)
    corners = _paths(y, digits_per_clip, frames, room, task, speed, rng)
    height, width = images.shape[1:]
    clips = np.zeros((n_clips, frames, size, size), dtype=np.uint8)
    clip = np.arange(n_clips)[:, None, None, None]
    frame = np.arange(frames)[None, :, None, None]
    for j in range(digits_per_clip):  # one digit of every clip at a time: no two writes hit one pixel
        rows = (corners[:, j, :, 0, None] + np.arange(height))[..., :, None]  # (n, frames, h, 1)
        cols = (corners[:, j, :, 1, None] + np.arange(width))[..., None, :]  # (n, frames, 1, w)
        glyphs = images[index[:, j]][:, None]  # (n, 1, h, w)
        if j:
            glyphs = np.maximum(clips[clip, frame, rows, cols], glyphs)
        clips[clip, frame, rows, cols] = glyphs
    return clips, y.astype(np.int64), classes


_IDX_PREFIX = {"train": "train", "test": "t10k"}


def _idx_path(root: Path, prefix: str, kind: str) -> Path:
    for name in (f"{prefix}-{kind}-idx{1 if kind == 'labels' else 3}-ubyte", f"{prefix}-{kind}.idx3-ubyte"):
        for candidate in (root / f"{name}.gz", root / name):
            if candidate.is_file():
                return candidate
    raise DataError(
        f"no MNIST {prefix} {kind} file",
        where=str(root),
        fix=f"pass the folder holding {prefix}-{kind}-idx{1 if kind == 'labels' else 3}-ubyte(.gz)",
    )


def moving_mnist_from_files(
    mnist_dir: str | Path, n_clips: int, split: Literal["train", "test"] = "train", **options: Any
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """:func:`moving_digits` on the MNIST IDX files in ``mnist_dir`` (``train-images-idx3-ubyte.gz`` etc.;
    ``split="test"`` reads the ``t10k-`` files); ``options`` go to :func:`moving_digits`."""
    if split not in _IDX_PREFIX:
        raise ConfigError(f"split must be 'train' or 'test'. Received: split={split!r}", where="moving_mnist")
    root, prefix = Path(mnist_dir), _IDX_PREFIX[split]
    images = read_idx(_idx_path(root, prefix, "images"))
    labels = read_idx(_idx_path(root, prefix, "labels"))
    return moving_digits(images, labels, n_clips, **options)


def write_moving_mnist(
    out_folder: str | Path,
    mnist_dir: str | Path,
    n_clips: int = 2000,
    split: Literal["train", "test"] = "train",
    **options: Any,
) -> Path:
    """Generate clips with :func:`moving_mnist_from_files` and save them as a clip folder
    (``out_folder/<class>/<class>_<n>.npy``) that ``cnnlab train --data out_folder`` reads. ``out_folder``
    must be new or empty, so clips of an earlier run never mix in."""
    out = Path(out_folder)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(
            "output folder exists and is not empty", where=str(out), fix="pick a new folder or delete this one"
        )
    clips, labels, classes = moving_mnist_from_files(mnist_dir, n_clips, split, **options)
    return save_clip_folder(out, clips, labels, classes)
