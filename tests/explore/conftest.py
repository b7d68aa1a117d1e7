"""Fixtures for the explorer's tests: a small net with every kind of layer the page explains, a checkpoint
written the way `cnnlab train` writes it, and a folder of images."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from cnnlab.core.rundir import save_checkpoint
from cnnlab.explore import Explorer, Subject
from cnnlab.models import create_model

CLASSES = ["circle", "square", "stripes"]


class Mixed(nn.Module):
    """Strided, grouped, dilated and reflect-padded convs, a shared ReLU, max and average pools (ceil mode)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 5, stride=2, padding=2)
        self.bn = nn.BatchNorm2d(6)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.grouped = nn.Conv2d(6, 8, 3, padding=1, groups=2)
        self.dilated = nn.Conv2d(8, 8, 3, padding="same", dilation=2, padding_mode="reflect", bias=False)
        self.avg = nn.AvgPool2d(2, ceil_mode=True, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.bn(self.stem(x))))
        x = self.dilated(self.relu(self.grouped(x)))
        return self.fc(F.adaptive_avg_pool2d(self.avg(x), 1).flatten(1))


def mixed_subject() -> Subject:
    torch.manual_seed(0)
    net = Mixed()
    with torch.no_grad():  # running statistics that are not 0 and 1, so the formula has something to do
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 2.0)
    classes = ("a", "b", "c", "d")
    return Subject(net.eval(), "mixed", classes, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), (3, 29, 31), source="test")


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def picture(seed: int = 1, size: tuple[int, int] = (40, 48)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


@pytest.fixture(scope="session")
def mixed_explorer() -> Explorer:
    return Explorer(mixed_subject())


@pytest.fixture(scope="session")
def classifier_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = create_model("cnn_small", num_classes=len(CLASSES), in_chans=1)
    path = tmp_path_factory.mktemp("run") / "best.pt"
    state = {"model": model.state_dict(), "config": {"model": {"name": "cnn_small"}}, "classes": CLASSES}
    save_checkpoint(path, {**state, "mean": [0.4], "std": [0.3], "input_size": [1, 28, 28]})
    return path


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve 28x28 grey pictures in two class folders: discs and stripes of several sizes."""
    folder = tmp_path_factory.mktemp("images")
    yy, xx = np.mgrid[:28, :28]
    for i in range(6):
        (folder / "disc").mkdir(exist_ok=True)
        (folder / "stripes").mkdir(exist_ok=True)
        disc = np.where((yy - 14) ** 2 + (xx - 14) ** 2 < (4 + i) ** 2, 230, 20).astype(np.uint8)
        stripes = np.where((xx // (2 + i)) % 2 == 0, 220, 30).astype(np.uint8)
        Image.fromarray(disc).save(folder / "disc" / f"{i}.png")
        Image.fromarray(stripes).save(folder / "stripes" / f"{i}.png")
    return folder
