"""Every dataset in ../shared/data loads with the published shapes, counts and labels."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import pytest
import torch

from cnnlab.data.datasets import FASHION_MNIST_CLASSES, load_mnist, load_segmentation, load_split_folders, open_source
from cnnlab.data.idx import read_idx

pytestmark = pytest.mark.data

MNIST_TRAIN = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]  # from the dataset README
MNIST_TEST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist(shared_data: Path) -> None:
    splits = open_source(shared_data / "mnist")
    train, test = splits["train"], splits["test"]
    assert train.images.shape == (60_000, 1, 28, 28) and test.images.shape == (10_000, 1, 28, 28)
    assert list(train.class_counts().values()) == MNIST_TRAIN and list(test.class_counts().values()) == MNIST_TEST
    assert train.targets[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # the well-known first ten labels
    # Read by content: the re-gzipped file must give the original bytes (sha256 from the README).
    raw = read_idx(shared_data / "mnist" / "train-images-idx3-ubyte.gz")
    header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in raw.shape)
    digest = hashlib.sha256(header + raw.tobytes()).hexdigest()
    assert digest == "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
    assert torch.equal(train.images[:, 0], torch.from_numpy(raw))


def test_fashion_mnist(shared_data: Path) -> None:
    train = load_mnist(shared_data / "fashion-mnist", "train")
    test = load_mnist(shared_data / "fashion-mnist", "test")
    assert train.images.shape == (60_000, 1, 28, 28) and test.images.shape == (10_000, 1, 28, 28)
    assert train.classes == FASHION_MNIST_CLASSES
    assert set(train.class_counts().values()) == {6000} and set(test.class_counts().values()) == {1000}
    assert train.targets[:3].tolist() == [9, 0, 0]  # ankle boot, T-shirt, T-shirt: the first three in the file
    assert 70 < float(train.images.float().mean()) < 75  # mean pixel of Fashion-MNIST train is about 72.9


def test_isbi2012_membrane(shared_data: Path) -> None:
    root = shared_data / "isbi2012-membrane"
    data = load_segmentation(root / "train" / "image", root / "train" / "label")
    assert data.images.shape == (30, 1, 512, 512) and data.targets.shape == (30, 512, 512)
    assert data.problems == [] and data.targets.unique().tolist() == [0, 1]  # {0, 255} read as {0, 1}
    interior = data.class_counts()["foreground"] / data.targets.numel()
    assert 0.74 < interior < 0.82  # README: 255 = cell interior, about 78% of pixels
    assert [Path(p).name for p in data.paths[:3]] == ["0.png", "1.png", "2.png"]
    unlabelled = open_source(root / "test")["all"]  # a flat folder of images
    assert unlabelled.images.shape == (30, 1, 512, 512) and unlabelled.classes == ["unlabelled"]
    assert Path(unlabelled.paths[10]).name == "10.png"


def test_hymenoptera(shared_data: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every file decodes (the GIF placeholder included)
        splits = load_split_folders(shared_data / "hymenoptera", size=64, fit="crop")
    train, val = splits["train"], splits["val"]
    assert train.classes == val.classes == ["ants", "bees"]
    assert train.class_counts() == {"ants": 124, "bees": 121} and val.class_counts() == {"ants": 70, "bees": 83}
    assert train.images.shape == (245, 3, 64, 64) and val.images.shape == (153, 3, 64, 64)
    names = {Path(p).name for p in train.paths}
    assert {"ant photos.jpg", "formica.jpeg", "imageNotFound.gif"} <= names
