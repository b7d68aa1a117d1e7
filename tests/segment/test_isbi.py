"""A few epochs on the real ISBI 2012 membrane slices lower the loss (the full run is benchmarks/segment_isbi.py)."""

from __future__ import annotations

import pytest
import torch

from cnnlab.data.augment import Compose, HorizontalFlip, Normalize, RandomCrop, Rescale
from cnnlab.data.datasets import load_segmentation
from cnnlab.models import create_model
from cnnlab.segment import SegmentationLoader, SegmentationTrainer, bce_dice_loss
from cnnlab.train.config import TrainConfig

pytestmark = [pytest.mark.data, pytest.mark.slow]


def test_a_few_epochs_on_isbi_patches_lower_the_loss(shared_data):
    root = shared_data / "isbi2012-membrane" / "train"
    data = load_segmentation(root / "image", root / "label", classes=["membrane", "cell"])
    assert data.images.shape == (30, 1, 512, 512) and data.class_counts()["membrane"] / data.targets.numel() < 0.3
    torch.manual_seed(0)
    transform = Compose([RandomCrop(96), HorizontalFlip(), Rescale(), Normalize([0.495], [0.173])])
    loader = SegmentationLoader(
        data.images[:12], data.targets[:12], batch_size=4, shuffle=True, transform=transform, repeats=4
    )
    net = create_model("unet", num_classes=2, in_chans=1, depth=3, base_width=8, padding="same")
    trainer = SegmentationTrainer(net, TrainConfig(epochs=5, lr=3e-3), loss_fn=bce_dice_loss, class_names=data.classes)
    history = trainer.fit(loader)
    assert history[-1]["loss"] < 0.9 * history[0]["loss"]
    assert history[-1]["acc"] > history[0]["acc"]
