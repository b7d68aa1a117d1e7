"""Grad-CAM, Grad-CAM++ and saliency against references computed another way, and hooks as owned resources."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.core.errors import ConfigError, ShapeError
from cnnlab.explain import (
    GradCAM,
    GradCAMPlusPlus,
    default_target_layer,
    explain,
    feature_maps,
    first_layer_filters,
    saliency,
)
from cnnlab.models import create_model, list_models, model_entry


class TinyNet(nn.Module):
    """conv-ReLU-conv, then global average pooling and a linear layer: small enough to work out by hand."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(inplace=inplace), nn.Conv2d(6, 5, 3, padding=1)
        )
        self.act = nn.ReLU(inplace=inplace)
        self.fc = nn.Linear(5, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.act(self.features(x)).mean(dim=(2, 3)))


def _net(inplace: bool = False) -> TinyNet:
    torch.manual_seed(0)
    return TinyNet(inplace)


def _images(batch: int = 2, size: int = 8) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))


def _minmax_upsampled(maps: torch.Tensor, size: int) -> torch.Tensor:
    up = F.interpolate(maps[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    low = up.amin(dim=(1, 2), keepdim=True)
    return (up - low) / (up.amax(dim=(1, 2), keepdim=True) - low)


def _hand_gradients(net: TinyNet, x: torch.Tensor, targets: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature maps of ``net.features`` and d(score)/d(maps), by running the net in two halves."""
    maps = net.features(x).detach().requires_grad_(True)  # (B, 5, h, w)
    logits = net.fc(net.act(maps).mean(dim=(2, 3)))
    score = logits[torch.arange(len(targets)), torch.tensor(targets)].sum()
    (grads,) = torch.autograd.grad(score, maps)
    return maps.detach(), grads


def _all_hooks(model: nn.Module) -> int:
    kinds = (
        "_forward_hooks",
        "_forward_pre_hooks",
        "_backward_hooks",
        "_backward_pre_hooks",
        "_forward_hooks_with_kwargs",
        "_forward_pre_hooks_with_kwargs",
        "_state_dict_hooks",
        "_load_state_dict_pre_hooks",
    )
    return sum(len(getattr(m, kind)) for m in model.modules() for kind in kinds) + sum(
        len(p._backward_hooks or {}) for p in model.parameters()
    )


def test_gradcam_equals_a_hand_computation_with_autograd_grad():
    net, x = _net().eval(), _images()
    maps, grads = _hand_gradients(net, x, [3, 1])
    weights = grads.mean(dim=(2, 3), keepdim=True)  # (B, 5, 1, 1)
    expected = _minmax_upsampled((weights * maps).sum(dim=1).clamp_min(0), 8)
    with GradCAM(net, "features") as cam:
        got = cam(x, target=[3, 1])
    torch.testing.assert_close(got, expected)


def test_gradcam_of_the_last_conv_before_pooling_is_the_class_activation_map():
    # Zhou et al. 2016: for conv -> global average pool -> linear, the gradient of score c is W[c, k] / (h w)
    # at every position, so Grad-CAM is ReLU(sum_k W[c, k] A_k), the CAM, without any autograd.
    torch.manual_seed(2)
    conv, fc = nn.Conv2d(3, 7, 3), nn.Linear(7, 5)
    net = nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc)
    x = torch.randn(3, 3, 10, 10)
    with torch.no_grad():
        cams = torch.einsum("bkhw,bk->bhw", conv(x), fc.weight[[0, 4, 2]]).clamp_min(0)
    got = explain(net, x, target=[0, 4, 2]).maps
    torch.testing.assert_close(got, _minmax_upsampled(cams, 10))


def test_gradcam_plus_plus_follows_the_papers_formula():
    net, x = _net().eval(), _images()
    maps, grads = _hand_gradients(net, x, [0, 2])
    a, g = maps.numpy().astype(np.float64), grads.numpy().astype(np.float64)
    expected = np.zeros((a.shape[0], *a.shape[2:]))  # (B, h, w)
    for b in range(a.shape[0]):
        for k in range(a.shape[1]):
            denominator = 2 * g[b, k] ** 2 + a[b, k].sum() * g[b, k] ** 3
            alpha = np.divide(g[b, k] ** 2, denominator, out=np.zeros_like(denominator), where=denominator != 0)
            expected[b] += (alpha * np.maximum(g[b, k], 0)).sum() * a[b, k]
    expected_t = _minmax_upsampled(torch.from_numpy(np.maximum(expected, 0)).float(), 8)
    with GradCAMPlusPlus(net, net.features) as cam:
        got = cam(x, target=[0, 2])
    torch.testing.assert_close(got, expected_t, atol=1e-5, rtol=1e-4)


def test_batch_with_one_target_per_image_equals_one_image_at_a_time_and_none_means_predicted():
    net, x = _net().eval(), _images(3)
    with GradCAM(net, "features") as cam:
        batch = cam(x, target=[1, 3, 0])
        singles = torch.cat([cam(x[i : i + 1], target=t) for i, t in enumerate([1, 3, 0])])
        predicted = net(x).argmax(dim=1).tolist()
        result = cam.explain(x)
    torch.testing.assert_close(batch, singles)
    assert result.targets.tolist() == predicted
    torch.testing.assert_close(result.maps, explain(net, x, layer="features", target=predicted).maps)
    assert result.maps.shape == (3, 8, 8) and result.maps.amin() == 0 and result.maps.amax() == 1


def test_a_later_inplace_relu_does_not_change_the_explained_maps():
    plain, inplace = _net(inplace=False).eval(), _net(inplace=True).eval()
    x = _images()
    for layer in ("features.0", "features"):  # each is followed by an in-place ReLU in `inplace`
        torch.testing.assert_close(
            explain(inplace, x, layer=layer, target=1).maps, explain(plain, x, layer=layer, target=1).maps
        )
    assert _all_hooks(inplace) == 0


def test_mode_grad_state_and_parameter_grads_are_left_as_found():
    net = _net()
    net.train()
    net.features[1].eval()
    for p in net.fc.parameters():
        p.requires_grad_(False)  # partly frozen: still explainable
    with torch.no_grad(), GradCAM(net, "features.2") as cam:
        maps = cam(_images(), target=0)
        assert not torch.is_grad_enabled()
    assert maps.shape == (2, 8, 8)
    assert net.training and net.features.training and not net.features[1].training
    assert all(p.grad is None for p in net.parameters())
    assert [p.requires_grad for p in net.parameters()] == [True] * 4 + [False] * 2


def test_hooks_are_removed_after_with_close_and_a_failing_forward():
    net = _net()
    assert _all_hooks(net) == 0
    with GradCAM(net, "features.2") as cam:
        assert _all_hooks(net) == 1
        cam(_images())
    assert _all_hooks(net) == 0
    cam = GradCAM(net)
    cam.close()
    cam.close()
    assert _all_hooks(net) == 0
    with pytest.raises(ConfigError, match="closed"):
        cam(_images())
    with pytest.raises(RuntimeError, match="channels"), GradCAM(net, "features.2") as cam:
        cam(torch.zeros(1, 4, 8, 8))  # 4 channels into a 3-channel conv: the forward pass raises
    assert _all_hooks(net) == 0
    with pytest.raises(RuntimeError, match="channels"):
        explain(net, torch.zeros(1, 4, 8, 8), "gradcam++")
    with pytest.raises(RuntimeError, match="channels"):
        feature_maps(net, torch.zeros(4, 8, 8), "features.0")
    assert _all_hooks(net) == 0


def test_an_open_gradcam_does_not_touch_ordinary_forward_passes():
    net, x = _net().eval(), _images()
    expected = net(x)
    with GradCAM(net, "features") as cam:
        got = net(x)
        assert not cam._kept  # nothing kept outside a call
    torch.testing.assert_close(got, expected)
    assert got.grad_fn is not None  # the graph to the weights is intact


def test_default_layer_is_the_model_contract_else_the_last_conv():
    zoo = create_model("resnet20")
    assert default_target_layer(zoo) == "layer3" == GradCAM(zoo).layer_name
    assert default_target_layer(_net()) == "features.2"
    with pytest.raises(ConfigError, match="no convolution"):
        default_target_layer(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))


def _zoo_cases() -> list[object]:
    """Every registered classifier; the VGGs (over 100M parameters, slow to build) with ``-m slow``."""
    cases = []
    for name in list_models():
        if model_entry(name).task != "classify":
            continue
        with torch.device("meta"):
            heavy = sum(p.numel() for p in create_model(name).parameters()) > 100_000_000
        cases.append(pytest.param(name, marks=pytest.mark.slow) if heavy else name)
    return cases


@pytest.mark.parametrize("name", _zoo_cases())
def test_every_zoo_classifier_explains_its_default_layer(name):
    channels, height, _ = model_entry(name).default_input
    small = height > 64  # ImageNet nets through their small-input stem, as in the zoo smoke test
    model = create_model(name, num_classes=3, **({"small_input": True} if small else {}))
    size = 16 if small else height
    with GradCAM(model) as cam:
        assert cam.layer_name == model.gradcam_layer
        maps = cam(torch.rand(2, channels, size, size), target=[0, 2])
    assert maps.shape == (2, size, size) and torch.isfinite(maps).all()
    assert maps.amin() >= 0 and maps.amax() <= 1
    assert _all_hooks(model) == 0


def test_layer_errors_say_what_and_what_to_do():
    net = _net()
    with pytest.raises(ConfigError, match=r"no layer 'feature\.2'.*did you mean features\.2"):
        GradCAM(net, "feature.2")
    with pytest.raises(ConfigError, match="not part of"):
        GradCAM(net, nn.Conv2d(3, 3, 1))
    with pytest.raises(ConfigError, match="not feature maps"):
        explain(net, _images(), layer="fc")
    shared = nn.Sequential(nn.Conv2d(3, 3, 1), nn.ReLU())
    twice = nn.Sequential(shared, shared, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
    with pytest.raises(ConfigError, match="ran 2 times"):
        explain(twice, _images(), layer="0")
    with GradCAM(net) as cam:
        with pytest.raises(ConfigError, match="out of range"):
            cam(_images(), target=4)
        with pytest.raises(ConfigError, match="2 targets for 3 images"):
            cam(_images(3), target=[0, 1])
        with pytest.raises(ShapeError, match=r"\(B, C, H, W\)"):
            cam(torch.zeros(3, 8, 8))
    with pytest.raises(ConfigError, match="unknown explanation method"):
        explain(net, _images(), "cam")
    assert _all_hooks(net) == 0 and _all_hooks(twice) == 0


def test_saliency_of_a_linear_model_is_its_weights():
    torch.manual_seed(3)
    linear = nn.Linear(2 * 3 * 3, 4)
    net = nn.Sequential(nn.Flatten(), linear)
    x = torch.randn(2, 2, 3, 3)
    expected = linear.weight.detach()[[1, 3]].abs().view(2, 2, 3, 3).amax(dim=1)  # (B, H, W)
    expected = expected / expected.amax(dim=(1, 2), keepdim=True)
    torch.testing.assert_close(saliency(net, x, target=[1, 3]), expected)


def test_saliency_equals_finite_differences_on_a_conv_net():
    net = _net().eval().double()
    x = _images(1, 5).double()
    base = net(x)[0, 2]
    numeric = torch.zeros_like(x)
    step = 1e-6
    for index in np.ndindex(*x.shape):
        bumped = x.clone()
        bumped[index] += step
        numeric[index] = (net(bumped)[0, 2] - base) / step
    expected = numeric.abs().amax(dim=1)
    torch.testing.assert_close(saliency(net, x, 2), expected / expected.max(), atol=1e-4, rtol=1e-3)


def test_feature_maps_and_first_layer_filters_match_the_layers_themselves():
    net, x = _net().eval(), _images(1)
    with torch.no_grad():
        expected = net.features[:2](x)[0]
    torch.testing.assert_close(feature_maps(net, x, "features.1"), expected)
    torch.testing.assert_close(feature_maps(net, x[0], net.features[1]), expected)
    with pytest.raises(ShapeError, match="one image"):
        feature_maps(net, _images(2), "features.1")
    filters = first_layer_filters(net)
    assert torch.equal(filters, net.features[0].weight) and filters.data_ptr() != net.features[0].weight.data_ptr()
    zoo = create_model("resnet20")
    assert torch.equal(first_layer_filters(zoo), zoo.get_submodule(zoo.first_conv).weight)
