"""keras.datasets: MNIST and Fashion-MNIST from local IDX files, never downloaded."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from cnnlab.core.errors import DataError
from cnnlab.keras.datasets import fashion_mnist, mnist


def _idx(path: Path, array: np.ndarray, compress: bool) -> None:
    raw = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


def _tiny_mnist(folder: Path, compress: bool = True) -> None:
    folder.mkdir(parents=True)
    suffix = ".gz" if compress else ""
    for prefix, n in (("train", 3), ("t10k", 2)):
        _idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", np.full((n, 28, 28), 7, np.uint8), compress)
        _idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", np.arange(n, dtype=np.uint8), compress)


@pytest.mark.data
def test_mnist_and_fashion_mnist_load_like_keras(shared_data, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(shared_data))
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    shapes = (x_train.shape, y_train.shape, x_test.shape, y_test.shape)
    assert shapes == ((60000, 28, 28), (60000,), (10000, 28, 28), (10000,))
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert y_train[:5].tolist() == [5, 0, 4, 1, 9] and x_train.max() == 255
    (fx, fy), _ = fashion_mnist.load_data(path=shared_data / "fashion-mnist")
    assert fx.shape == (60000, 28, 28) and fy.max() == 9 and fashion_mnist.CLASS_NAMES[fy[0]] == "Ankle boot"


def test_missing_files_name_where_cnnlab_looked_and_how_to_point_at_them(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path))
    with pytest.raises(DataError) as error:
        mnist.load_data()
    message = str(error.value)
    assert str(tmp_path / "mnist") in message and "never downloads" in message
    assert "CNNLAB_DATA" in message and "load_data(path=" in message


def test_local_idx_files_gz_or_raw_and_keras_npz(tmp_path):
    _tiny_mnist(tmp_path / "gz")
    _tiny_mnist(tmp_path / "raw", compress=False)
    for folder in ("gz", "raw"):
        (x_train, y_train), (x_test, y_test) = mnist.load_data(path=tmp_path / folder)
        assert x_train.shape == (3, 28, 28) and y_test.tolist() == [0, 1] and x_train.dtype == np.uint8
    np.savez(tmp_path / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    (x, _), (_, y) = mnist.load_data(path=tmp_path / "mnist.npz")
    assert np.array_equal(x, x_train) and np.array_equal(y, y_test)


def test_idx_files_that_do_not_fit_are_refused(tmp_path):
    _tiny_mnist(tmp_path / "m")
    _idx(tmp_path / "m" / "t10k-labels-idx1-ubyte.gz", np.arange(5, dtype=np.uint8), True)
    with pytest.raises(DataError, match="the t10k IDX files do not fit"):
        mnist.load_data(path=tmp_path / "m")
