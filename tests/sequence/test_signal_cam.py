"""1-D Grad-CAM points at the part of a signal that decides the class: a net trained to tell a bump from a dip
(placed anywhere in noise) is explained by maps that peak on the bump or dip, not on the noise around it."""

from __future__ import annotations

import pytest
import torch

from cnnlab.data.loader import TensorLoader
from cnnlab.explain.cam import GradCAM
from cnnlab.models import create_model
from cnnlab.train.config import TrainConfig
from cnnlab.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")

STEPS, WIDTH = 64, 6


def bumps(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Noise with a bump (class 1) or a dip (class 0) of WIDTH steps at a random place; returns x, y, starts."""
    generator = torch.Generator().manual_seed(seed)
    x = 0.3 * torch.randn(n, 1, STEPS, generator=generator)
    y = torch.arange(n) % 2
    starts = torch.randint(4, STEPS - WIDTH - 4, (n,), generator=generator)
    for i in range(n):
        x[i, 0, starts[i] : starts[i] + WIDTH] += 2.0 if y[i] else -2.0
    return x, y, starts


def test_gradcam_of_a_conv1d_net_peaks_on_the_deciding_segment() -> None:
    torch.manual_seed(0)
    x, y, _ = bumps(256, seed=0)
    model = create_model("fcn", num_classes=2, in_chans=1)
    Trainer(model, TrainConfig(epochs=4, batch_size=32, lr=3e-3, monitor="last")).fit(TensorLoader(x, y, 32, True))
    test, truth, starts = bumps(64, seed=1)
    with GradCAM(model.eval()) as cam:
        explanation = cam.explain(test, target=truth)
    assert (explanation.logits.argmax(1) == truth).float().mean() >= 0.95
    assert explanation.maps.shape == (64, STEPS)
    peaks = explanation.maps.argmax(1)
    inside = (peaks >= starts - 2) & (peaks < starts + WIDTH + 2)
    assert inside.float().mean() >= 0.8, (peaks - starts).tolist()


def test_gradcam_of_a_conv3d_net_gives_one_map_per_voxel() -> None:
    model = create_model("c3d_small", num_classes=3, in_chans=1, width=4)
    with GradCAM(model) as cam:
        maps = cam(torch.randn(2, 1, 8, 16, 16), target=1)
    assert maps.shape == (2, 8, 16, 16) and bool(maps.min() >= 0) and bool(maps.max() <= 1)
