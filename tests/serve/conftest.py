"""Fixtures for the server tests: small checkpoints written the way `cnnlab train` writes them, and images."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.core.config import to_dict
from cnnlab.core.rundir import save_checkpoint
from cnnlab.models import create_model

CLASSES = ["circle", "square", "stripes"]


def png_bytes(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    """Encode a uint8 array as an image file in memory."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def sample_images(count: int = 4, size: int = 40) -> list[bytes]:
    """Distinct seeded RGB images (the server converts them to the model's grey 28x28)."""
    rng = np.random.default_rng(1)
    return [png_bytes(rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8)) for _ in range(count)]


@pytest.fixture(scope="session")
def classifier_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = create_model("cnn_small", num_classes=len(CLASSES), in_chans=1)
    path = tmp_path_factory.mktemp("clf") / "best.pt"
    state = {"model": model.state_dict(), "config": {"model": {"name": "cnn_small"}}, "classes": CLASSES}
    save_checkpoint(path, {**state, "mean": [0.4], "std": [0.3], "input_size": [1, 28, 28]})
    return path


@pytest.fixture(scope="session")
def segmentation_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cnnlab.tasks.segment.config import SegmentConfig
    from cnnlab.tasks.segment.model import build_model

    torch.manual_seed(0)
    segment = SegmentConfig(depth=2, base_width=4, padding="same", tile=32, margin=8)
    options = {"depth": 2, "base_width": 4, "padding": "same"}
    model = build_model("unet", 2, 1, options)
    path = tmp_path_factory.mktemp("seg") / "best.pt"
    state = {"model": model.state_dict(), "config": {"segment": to_dict(segment)}, "task": "segment"}
    meta = {"classes": ["background", "cell"], "mean": [0.5], "std": [0.2], "input_size": [1, 32, 32]}
    save_checkpoint(path, {**state, **meta, "model_name": "unet", "model_options": options})
    return path
