"""The VGG-19 ImageNet conv weights (8-bit codebook, Caffe BGR) load into torchvision's layout and compute
what the raw file computes under Caffe's own preprocessing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.core.errors import WeightsError
from cnnlab.data.images import read_image
from cnnlab.models import create_model
from cnnlab.models.weights import CAFFE_MEAN_RGB, CAFFE_STD, weight_spec

pytestmark = pytest.mark.data
FILE = "vgg19-imagenet-conv/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
# torchvision's vgg19().features: a conv at these indices (README of the weights; torchvision's cfg "E")
TORCHVISION_CONVS = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
CHANNELS = (64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512)


def test_keys_and_shapes_are_torchvision_vgg19_features(shared_data: Path) -> None:
    model = create_model("vgg19", weights=shared_data / FILE)
    state = {k: v for k, v in model.state_dict().items() if k.startswith("features.")}
    expected: dict[str, tuple[int, ...]] = {}
    inputs = 3
    for index, out in zip(TORCHVISION_CONVS, CHANNELS, strict=True):
        expected[f"features.{index}.weight"], expected[f"features.{index}.bias"] = (out, inputs, 3, 3), (out,)
        inputs = out
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    assert sum(v.numel() for v in state.values()) == weight_spec("vgg19.imagenet-conv").num_params == 20_024_384


def test_rgb_features_equal_the_raw_file_under_caffe_bgr_preprocessing(shared_data: Path) -> None:
    raw = torch.load(shared_data / FILE, map_location="cpu", weights_only=True)
    pixels = read_image(shared_data / "style-images/content/chelsea.png", size=(64, 96))  # (H, W, 3) RGB uint8
    rgb = torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None].float() / 255
    # Caffe's way, written from the README: BGR, 0..255, minus the BGR mean pixel, weights as stored
    x = rgb.flip(1) * 255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    for name in ("block1_conv1", "block1_conv2"):
        weight = raw[f"{name}_W_table"][raw[f"{name}_W_q"].long()]
        x = F.relu(F.conv2d(x, weight, raw[f"{name}_b"], padding=1))
    model = create_model("vgg19", weights=shared_data / FILE).eval()
    mean, std = torch.tensor(CAFFE_MEAN_RGB).view(1, 3, 1, 1), torch.tensor(CAFFE_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        ours = model.features[:4]((rgb - mean) / std)
    np.testing.assert_allclose(ours.numpy(), x.numpy(), rtol=1e-4, atol=1e-2)
    assert x.abs().mean() > 1.0  # real activations, not zeros


def test_the_weights_do_not_fit_vgg16(shared_data: Path) -> None:
    with pytest.raises(WeightsError, match="vgg19"):
        create_model("vgg16", weights=shared_data / FILE)
