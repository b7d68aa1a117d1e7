"""The pretrained-encoder U-Net: ImageNet EfficientNet-Lite0 weights land in its encoder."""

from __future__ import annotations

import pytest
import torch

from cnnlab.core.errors import ConfigError
from cnnlab.models import create_model, model_entry
from cnnlab.models.weights import read_state_dict

WEIGHTS = "efficientnet-lite0-imagenet/efficientnet-lite0-57934424.pth"


@pytest.mark.data
def test_imagenet_weights_load_into_the_encoder_of_a_grey_unet(shared_data):
    path = shared_data / WEIGHTS
    net = create_model("unet_lite0", num_classes=2, in_chans=1, encoder_weights=str(path))
    state = read_state_dict(path)
    stem = net.encoder._conv_stem.weight
    torch.testing.assert_close(stem, state["_conv_stem.weight"].sum(dim=1, keepdim=True))  # grey = summed RGB
    torch.testing.assert_close(net.encoder._blocks[15]._project_conv.weight, state["_blocks.15._project_conv.weight"])
    assert net(torch.zeros(1, 1, 96, 80)).shape == (1, 2, 96, 80)


def test_registered_for_segmentation_with_depth_and_padding_checked():
    assert model_entry("unet_lite0").task == "segment"
    shallow = create_model("unet_lite0", num_classes=3, in_chans=1, depth=2, base_width=4)
    assert len(shallow.encoder._blocks) == 3 and shallow(torch.zeros(1, 1, 20, 20)).shape == (1, 3, 20, 20)
    with pytest.raises(ConfigError, match="padding"):
        create_model("unet_lite0", padding="valid")
    with pytest.raises(ConfigError, match="depth"):
        create_model("unet_lite0", depth=6)
