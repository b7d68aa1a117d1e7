"""Explain tests run single-threaded (tiny tensors; torch's spinning worker threads slow them down on a
shared 2-core machine, as in tests/models/conftest.py), and share a fake `cnnlab train` run folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnlab.core.rundir import save_checkpoint
from cnnlab.models import create_model


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """Every test here runs with torch on one thread (the root conftest's ``one_thread``)."""


CLASSES = ["0", "1", "10", "tabby, tabby cat"]  # digit names that are not their index, and an ImageNet-style label


@pytest.fixture
def fake_run() -> Callable[..., tuple[Path, nn.Module]]:
    """A factory for run folders as `cnnlab train` leaves them, holding untrained weights."""

    def make(root: Path, name: str = "cnn_small", channels: int = 1, size: int = 28) -> tuple[Path, nn.Module]:
        torch.manual_seed(0)
        model = create_model(name, num_classes=len(CLASSES), in_chans=channels)
        state = {
            "model": model.state_dict(),
            "optimizer": {},
            "config": {"model": {"name": name, "weights": None}},
            "classes": CLASSES,
            "mean": [0.25] * channels,
            "std": [0.5] * channels,
            "input_size": [channels, size, size],
        }
        save_checkpoint(root / "checkpoints" / "best.pt", state)
        return root, model

    return make
