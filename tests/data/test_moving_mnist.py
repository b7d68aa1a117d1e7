"""Moving MNIST-style clips: shapes, balance, motion read back from the frames, labels, files."""

from __future__ import annotations

import gzip
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from cnnlab.core.errors import ConfigError
from cnnlab.data.clips import load_clip_folder
from cnnlab.data.moving_mnist import DIRECTIONS, moving_digits, moving_mnist_from_files, write_moving_mnist


def _digits(n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Stand-in digits: label L is a block of brightness 20 + 20 L (so a clip shows its digit's label), of
    several sizes and places inside the 28x28 box, as MNIST's strokes are."""
    rng = np.random.default_rng(5)
    labels = np.arange(n) % 10
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        top, left = rng.integers(2, 10, 2)
        height, width = rng.integers(8, 17, 2)
        images[i, top : top + height, left : left + width] = 20 + 20 * label
    return images, labels


def _centres(clip: np.ndarray) -> np.ndarray:
    """(frames, 2) centre of mass (row, column) of each frame, by scipy."""
    return np.array([ndimage.center_of_mass(frame.astype(np.float64)) for frame in clip])


def test_direction_clips_move_the_labelled_way() -> None:
    images, labels = _digits()
    clips, y, classes = moving_digits(images, labels, n_clips=40, frames=20, size=64, seed=1)
    assert clips.shape == (40, 20, 64, 64) and clips.dtype == np.uint8 and y.dtype == np.int64
    assert classes == list(DIRECTIONS) and np.bincount(y, minlength=4).tolist() == [10, 10, 10, 10]
    expected = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}
    for clip, label in zip(clips, y, strict=True):
        move = _centres(clip)[-1] - _centres(clip)[0]
        main = np.dot(move, expected[classes[label]])
        assert main > 20  # 19 steps of at least 1.26 px (the 2-3 px/frame range scaled to fit 36 px of room)
        assert abs(move[0] * expected[classes[label]][1] + move[1] * expected[classes[label]][0]) < main / 3
        ink = clip.reshape(20, -1).sum(1)
        assert (ink == ink[0]).all()  # the digit never leaves the frame (no bounce, no clipping)


def test_digit_task_labels_are_the_digits_shown_and_bounce_inside() -> None:
    images, labels = _digits()
    clips, y, classes = moving_digits(images, labels, n_clips=50, frames=40, size=48, task="digit", seed=2)
    assert classes == [str(d) for d in range(10)] and np.bincount(y).tolist() == [5] * 10
    shown = (clips.reshape(50, -1).max(1).astype(int) - 20) // 20  # brightness encodes the label
    np.testing.assert_array_equal(shown, y)
    ink = clips.reshape(50, 40, -1).sum(2)
    assert (ink == ink[:, :1]).all()  # bouncing keeps the whole digit inside
    speeds = np.linalg.norm(np.diff(_centres(clips[0]), axis=0), axis=1)
    assert np.median(speeds) > 1.5  # moving at 2-3 px/frame (less on the frames with a bounce)


def test_several_digits_per_clip_share_the_label() -> None:
    images, labels = _digits()
    clips, y, _ = moving_digits(images, labels, n_clips=20, frames=4, size=64, task="digit", digits_per_clip=3)
    for clip, label in zip(clips, y, strict=True):
        assert set(np.unique(clip).tolist()) == {0, 20 + 20 * int(label)}


def test_seed_repeats_and_changes_the_clips() -> None:
    images, labels = _digits()
    a = moving_digits(images, labels, 12, frames=6, seed=3)
    b = moving_digits(images, labels, 12, frames=6, seed=3)
    c = moving_digits(images, labels, 12, frames=6, seed=4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_bad_settings() -> None:
    images, labels = _digits()
    with pytest.raises(ConfigError, match="size"):
        moving_digits(images, labels, 4, size=28)
    with pytest.raises(ConfigError, match="task"):
        moving_digits(images, labels, 4, task="colour")  # type: ignore[arg-type]


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_files_to_a_clip_folder(tmp_path: Path) -> None:
    images, labels = _digits()
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    clips, y, _ = moving_mnist_from_files(tmp_path, 8, split="test", frames=5, task="digit")
    same, same_y, _ = moving_digits(images, labels, 8, frames=5, task="digit")
    assert np.array_equal(clips, same) and np.array_equal(y, same_y)
    out = write_moving_mnist(tmp_path / "clips", tmp_path, 8, split="test", frames=5, size=40)
    data = load_clip_folder(out)
    assert data.classes == sorted(DIRECTIONS) and tuple(data.x.shape) == (8, 1, 5, 40, 40)
    with pytest.raises(ConfigError, match="not empty"):
        write_moving_mnist(out, tmp_path, 8, split="test")


@pytest.mark.data
def test_real_mnist_two_thousand_clips_quickly(shared_data: Path) -> None:
    mnist = shared_data / "mnist"
    start = time.perf_counter()
    clips, y, classes = moving_mnist_from_files(mnist, 2000, split="test")
    assert time.perf_counter() - start < 10  # a couple of seconds on a quiet 2-core machine
    assert clips.shape == (2000, 20, 64, 64) and np.bincount(y).tolist() == [500] * 4
    for clip, label in zip(clips[:40], y[:40], strict=True):
        move = _centres(clip)[-1] - _centres(clip)[0]
        axis, sign = {"left": (1, -1), "right": (1, 1), "up": (0, -1), "down": (0, 1)}[classes[label]]
        assert move[axis] * sign > 20 and abs(move[1 - axis]) < move[axis] * sign / 3
