"""Architectures against independent numbers: published parameter counts, torchvision/akamaster/lukemelas
key names and shapes, and shapes from the papers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.core.errors import ConfigError, ShapeError
from cnnlab.models import create_model
from cnnlab.models.googlenet import GoogLeNetOutputs, Inception, InceptionNaive
from cnnlab.models.segment.unet import UNet


def _meta(name: str, **kwargs: object) -> torch.nn.Module:
    with torch.device("meta"):  # shapes and counts only: no memory, no init
        return create_model(name, **kwargs)


def _params(name: str, **kwargs: object) -> int:
    return sum(p.numel() for p in _meta(name, **kwargs).parameters())


# torchvision's documented counts (ImageNet, 1000 classes), akamaster's CIFAR nets (10 classes),
# lukemelas' EfficientNet-Lite0 (the shared weight file's README), LeNet-5 at 1x32x32 -> 10.
PUBLISHED = {
    "alexnet": 61_100_840,
    "vgg11": 132_863_336,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "vgg16_bn": 138_365_992,
    "googlenet": 6_624_904,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "mobilenet_v2": 3_504_872,
    "efficientnet_lite0": 4_652_008,
    "resnet20": 269_722,
    "resnet56": 853_018,
    "lenet5": 61_706,
}


@pytest.mark.parametrize(("name", "count"), PUBLISHED.items())
def test_parameter_count_matches_published(name: str, count: int) -> None:
    assert _params(name) == count


def test_lenet5_counts_explain_the_papers_60k() -> None:
    # The 1998 paper: C1 156 + S2 12 + C3 1,516 (sparse table) + S4 32 + C5 48,120 + F6 10,164 = 60,000.
    # Ours differs only in C3 (full: 2,416), parameter-free pools, and a trained output layer (850).
    assert 156 + 12 + 1_516 + 32 + 48_120 + 10_164 == 60_000
    model = _meta("lenet5")
    c3 = sum(p.numel() for p in model.features[3].parameters())
    out = sum(p.numel() for p in model.classifier[4].parameters())
    assert c3 == 2_416
    assert out == 850
    assert _params("lenet5") == 60_000 - 12 - 1_516 - 32 + c3 + out


def test_small_input_stems_keep_key_names() -> None:
    for name in ("resnet18", "vgg11", "alexnet", "googlenet", "mobilenet_v2", "efficientnet_lite0"):
        assert set(_meta(name).state_dict()) == set(_meta(name, small_input=True).state_dict()), name


# (key, shape) pairs from torchvision's / akamaster's / lukemelas' state dicts.
DOCUMENTED_KEYS = {
    "resnet18": [
        ("conv1.weight", (64, 3, 7, 7)),
        ("bn1.running_var", (64,)),
        ("layer1.0.conv1.weight", (64, 64, 3, 3)),
        ("layer2.0.downsample.0.weight", (128, 64, 1, 1)),
        ("layer2.0.downsample.1.weight", (128,)),
        ("layer4.1.bn2.bias", (512,)),
        ("fc.weight", (1000, 512)),
    ],
    "resnet50": [
        ("layer1.0.conv3.weight", (256, 64, 1, 1)),
        ("layer1.0.downsample.0.weight", (256, 64, 1, 1)),
        ("layer3.5.bn3.weight", (1024,)),
        ("layer4.2.conv2.weight", (512, 512, 3, 3)),
        ("fc.weight", (1000, 2048)),
    ],
    "vgg16": [
        ("features.0.weight", (64, 3, 3, 3)),
        ("features.28.weight", (512, 512, 3, 3)),
        ("classifier.0.weight", (4096, 25088)),
        ("classifier.3.weight", (4096, 4096)),
        ("classifier.6.bias", (1000,)),
    ],
    "vgg16_bn": [("features.1.running_mean", (64,)), ("features.41.weight", (512,))],
    "alexnet": [
        ("features.0.weight", (64, 3, 11, 11)),
        ("features.3.weight", (192, 64, 5, 5)),
        ("features.10.weight", (256, 256, 3, 3)),
        ("classifier.1.weight", (4096, 9216)),
        ("classifier.4.weight", (4096, 4096)),
        ("classifier.6.weight", (1000, 4096)),
    ],
    "googlenet": [
        ("conv1.conv.weight", (64, 3, 7, 7)),
        ("conv1.bn.running_mean", (64,)),
        ("conv3.conv.weight", (192, 64, 3, 3)),
        ("inception3a.branch1.conv.weight", (64, 192, 1, 1)),
        ("inception3a.branch2.1.conv.weight", (128, 96, 3, 3)),
        ("inception3a.branch3.1.conv.weight", (32, 16, 3, 3)),
        ("inception3a.branch4.1.conv.weight", (32, 192, 1, 1)),
        ("inception5b.branch4.1.bn.weight", (128,)),
        ("fc.weight", (1000, 1024)),
    ],
    "mobilenet_v2": [
        ("features.0.0.weight", (32, 3, 3, 3)),
        ("features.0.1.weight", (32,)),
        ("features.1.conv.0.0.weight", (32, 1, 3, 3)),
        ("features.1.conv.1.weight", (16, 32, 1, 1)),
        ("features.1.conv.2.running_var", (16,)),
        ("features.2.conv.0.0.weight", (96, 16, 1, 1)),
        ("features.2.conv.1.0.weight", (96, 1, 3, 3)),
        ("features.2.conv.2.weight", (24, 96, 1, 1)),
        ("features.2.conv.3.weight", (24,)),
        ("features.18.0.weight", (1280, 320, 1, 1)),
        ("classifier.1.weight", (1000, 1280)),
    ],
    "resnet20": [
        ("conv1.weight", (16, 3, 3, 3)),
        ("layer1.0.conv1.weight", (16, 16, 3, 3)),
        ("layer2.0.conv1.weight", (32, 16, 3, 3)),
        ("layer3.2.bn2.bias", (64,)),
        ("linear.weight", (10, 64)),
    ],
    "efficientnet_lite0": [
        ("_conv_stem.weight", (32, 3, 3, 3)),
        ("_bn0.running_var", (32,)),
        ("_blocks.0._depthwise_conv.weight", (32, 1, 3, 3)),
        ("_blocks.0._project_conv.weight", (16, 32, 1, 1)),
        ("_blocks.1._expand_conv.weight", (96, 16, 1, 1)),
        ("_blocks.3._depthwise_conv.weight", (144, 1, 5, 5)),
        ("_blocks.15._project_conv.weight", (320, 1152, 1, 1)),
        ("_conv_head.weight", (1280, 320, 1, 1)),
        ("_fc.weight", (1000, 1280)),
    ],
}


@pytest.mark.parametrize("name", DOCUMENTED_KEYS)
def test_state_dict_keys_match_the_reference_implementation(name: str) -> None:
    state = _meta(name).state_dict()
    for key, shape in DOCUMENTED_KEYS[name]:
        assert key in state, f"{name}: {key} missing"
        assert tuple(state[key].shape) == shape, key


def test_key_counts_match_reference_files() -> None:
    # torchvision resnet18: 102 tensors besides the 20 num_batches_tracked; akamaster resnet20: 97 keys
    # (its file has no num_batches_tracked); the EfficientNet-Lite0 file: 296 keys with them.
    def without_counters(name: str) -> list[str]:
        return [k for k in _meta(name).state_dict() if not k.endswith("num_batches_tracked")]

    assert len(without_counters("resnet18")) == 102
    assert len(_meta("resnet18").state_dict()) == 122
    assert len(without_counters("resnet20")) == 97
    assert len(_meta("efficientnet_lite0").state_dict()) == 296


def test_googlenet_aux_heads_in_training_mode() -> None:
    torch.manual_seed(0)
    model = create_model("googlenet", num_classes=4, aux_logits=True, small_input=True)
    assert sum(p.numel() for p in _meta("googlenet", aux_logits=True).parameters()) == 13_004_888
    out = model(torch.randn(2, 3, 16, 16))
    assert isinstance(out, GoogLeNetOutputs)
    assert [t.shape for t in out] == [torch.Size([2, 4])] * 3
    model.eval()
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 4)
    model.reset_classifier(2)
    assert model.aux1.fc2.out_features == model.fc.out_features == 2


def test_inception_naive_versus_reduced_cost() -> None:
    # The paper's point: 1x1 reductions cut inception3a's cost (naive 5x5 on 192 channels is heavy).
    naive = InceptionNaive(192, 64, 128, 32)
    reduced = Inception(192, 64, 96, 128, 16, 32, 32)
    n_naive = sum(p.numel() for p in naive.parameters())
    n_reduced = sum(p.numel() for p in reduced.parameters())
    assert n_reduced < n_naive / 2
    assert naive(torch.zeros(1, 192, 8, 8)).shape[1] == 64 + 128 + 32 + 192


def test_mobilenet_width_multiplier() -> None:
    half = _meta("mobilenet_v2", width_mult=0.5)
    assert half.features[0][0].out_channels == 16
    assert half.num_features == 1280  # the last conv stays 1280 wide below 1.0
    assert _meta("mobilenet_v2", width_mult=1.4).num_features == 1792


def test_lenet_variants_and_small_input() -> None:
    classic, modern = _meta("lenet5"), _meta("lenet5", variant="modern")
    assert isinstance(classic.features[1], torch.nn.Tanh) and isinstance(classic.features[2], torch.nn.AvgPool2d)
    assert isinstance(modern.features[1], torch.nn.ReLU) and isinstance(modern.features[2], torch.nn.MaxPool2d)
    assert create_model("lenet5", small_input=True)(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    with pytest.raises(ConfigError, match="variant"):
        create_model("lenet5", variant="tanh")


def test_cifar_resnet_option_a_shortcut_is_parameter_free() -> None:
    block = _meta("resnet20").layer2[0]
    assert sum(p.numel() for p in block.shortcut.parameters()) == 0
    x = torch.arange(16.0).view(1, 16, 1, 1).expand(1, 16, 4, 4)
    y = create_model("resnet20").layer2[0].shortcut(x)
    assert y.shape == (1, 32, 2, 2)
    assert y[0, :8].abs().sum() == 0 and y[0, 24:].abs().sum() == 0 and torch.equal(y[0, 8:24, 0, 0], x[0, :, 0, 0])


def test_efficientnet_same_padding_is_tensorflow_asymmetric() -> None:
    model = create_model("efficientnet_lite0").eval()
    assert model.forward_features(torch.zeros(1, 3, 224, 224)).shape == (1, 1280, 7, 7)
    assert model.forward_features(torch.zeros(1, 3, 225, 225)).shape == (1, 1280, 8, 8)  # ceil(225 / 32)


def test_unet_paper_tile_and_options() -> None:
    assert UNet.output_size(572) == 388
    with torch.device("meta"):
        model = create_model("unet")
        assert model(torch.empty(1, 1, 572, 572)).shape == (1, 2, 388, 388)
        deep = create_model("unet", in_chans=3, num_classes=5, depth=3, base_width=16, padding="same")
        assert deep(torch.empty(1, 3, 48, 48)).shape == (1, 5, 48, 48)
    with pytest.raises(ShapeError, match="use an input size such as 572"):
        UNet.output_size(570)
    with pytest.raises(ConfigError, match="padding"):
        create_model("unet", padding="reflect")


def test_unet_batch_norm_variant() -> None:
    plain = create_model("unet", depth=2, base_width=4, padding="same")
    normed = create_model("unet", depth=2, base_width=4, padding="same", batch_norm=True)
    convs = [m for m in normed.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    norms = [m for m in normed.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == len(convs) == 2 * (2 * 2 + 1)  # two per level, bottleneck, and decoder level
    assert all(conv.bias is None for conv in convs)
    bias_params = sum(conv.out_channels for conv in convs)
    bn_params = 2 * sum(norm.num_features for norm in norms)
    n_plain, n_normed = (sum(p.numel() for p in m.parameters()) for m in (plain, normed))
    assert n_normed == n_plain - bias_params + bn_params
    assert normed(torch.zeros(2, 1, 16, 16)).shape == (2, 2, 16, 16)


def test_resnet9_page_layout_and_narrow_variant() -> None:
    model = create_model("resnet9")
    assert _params("resnet9") == 6_573_120  # Page's widths 64-128-256-512, bias-free convs and classifier
    assert model.forward_features(torch.zeros(1, 3, 32, 32)).shape == (1, 512, 4, 4)
    narrow = create_model("resnet9_w16", in_chans=1)
    assert narrow.forward_features(torch.zeros(2, 1, 28, 28)).shape == (2, 128, 3, 3)
    assert narrow(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
