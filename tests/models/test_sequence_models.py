"""The sequence zoo (``task="sequence"``): 1-D nets for series and audio, 3-D nets for clips and volumes.

Parameter counts are checked against the published numbers (dl-4-tsc's Keras models, the torchaudio tutorial,
torchvision, the 3D U-Net paper) and against counts worked out here by hand from the layer tables; shapes on
the meta device (no memory, no arithmetic) for the full-size nets; forward and backward on tiny, slim versions.
Torch runs on one thread here (``tests/models/conftest.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import correlate
from torch import nn

from cnnlab.core.errors import ConfigError, ShapeError
from cnnlab.core.shapes import conv_output_size, pool_output_size
from cnnlab.explain import GradCAM
from cnnlab.layers.summary import summary
from cnnlab.models import Classifier, create_model, list_models, model_entry
from cnnlab.models.sequence.fcn import SameConv1d
from cnnlab.models.sequence.video import mid_planes

# name -> builder options for a slim net that runs in milliseconds, and one input (no batch axis)
TINY: dict[str, tuple[dict[str, object], tuple[int, ...]]] = {
    "fcn": ({}, (1, 16)),
    "fcn_ensemble": ({"members": 3, "width": 0.1}, (1, 16)),
    "resnet1d": ({}, (1, 16)),
    "inception_time": ({"filters": 4}, (1, 16)),  # depth 6: both shortcut kinds
    "m5": ({"n_channel": 4}, (1, 6848)),
    "c3d_small": ({"width": 4}, (1, 4, 8, 8)),
    "r3d_18": ({"width": 8, "small_input": True, "in_chans": 1}, (1, 8, 16, 16)),
    "r2plus1d_18": ({"width": 8, "small_input": True, "in_chans": 1}, (1, 8, 16, 16)),
    "unet3d": ({"depth": 2, "base_width": 4}, (1, 8, 8, 8)),
}
CLASSIFIERS = [name for name in TINY if name != "unet3d"]


def _tiny(name: str, num_classes: int = 3, **extra: object) -> nn.Module:
    torch.manual_seed(0)
    return create_model(name, num_classes=num_classes, **{**TINY[name][0], **extra})


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _meta_params(name: str, **options: object) -> int:
    with torch.device("meta"):
        return _params(create_model(name, **options))


def conv(c_in: int, c_out: int, kernel: int, bias: bool = True) -> int:
    """Parameters of a conv (``kernel``: the product of its sizes), by hand."""
    return c_in * c_out * kernel + (c_out if bias else 0)


def bn(channels: int) -> int:
    return 2 * channels  # scale and shift (the running statistics are buffers)


def test_every_sequence_model_is_registered_with_its_input() -> None:
    assert sorted(list_models("sequence")) == sorted(TINY)
    for name in TINY:
        entry = model_entry(name)
        assert entry.task == "sequence" and entry.paper
        assert len(entry.default_input) in (2, 4)
        assert len(TINY[name][1]) == len(entry.default_input)


@pytest.mark.parametrize("name", list(TINY))
def test_forward_backward_every_parameter_gets_a_finite_nonzero_gradient(name: str) -> None:
    model = _tiny(name)
    shape = TINY[name][1]
    out = model(torch.randn(2, *shape))
    expected = (2, 3, *shape[1:]) if name == "unet3d" else (2, 3)  # per-voxel logits, or one row per sample
    assert out.shape == expected and torch.isfinite(out).all()
    out.pow(2).mean().backward()
    bad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not bad, f"parameters without a finite gradient: {bad[:5]}"
    zero = [n for n, p in model.named_parameters() if not bool(p.grad.abs().sum() > 0)]
    assert not zero, f"parameters whose gradient is all zero: {zero[:5]}"


def test_fcn_and_resnet1d_match_dl4tsc_counted_by_hand() -> None:
    # dl-4-tsc's Keras models, 1 channel and 2 classes: convs with bias, trainable BatchNorm scale and shift.
    fcn = conv(1, 128, 8) + bn(128) + conv(128, 256, 5) + bn(256) + conv(256, 128, 3) + bn(128) + 128 * 2 + 2

    def block(c_in: int, c_out: int) -> int:
        body = conv(c_in, c_out, 8) + conv(c_out, c_out, 5) + conv(c_out, c_out, 3) + 3 * bn(c_out)
        return body + (conv(c_in, c_out, 1) + bn(c_out) if c_in != c_out else bn(c_out))

    resnet = block(1, 64) + block(64, 128) + block(128, 128) + 128 * 2 + 2
    assert fcn == 264_962 == _meta_params("fcn", num_classes=2, in_chans=1)
    assert resnet == 504_258 == _meta_params("resnet1d", num_classes=2, in_chans=1)


def test_fcn_ensemble_costs_one_fcn_and_its_members_are_independent() -> None:
    # four members at half width: the first conv holds all their filters, the later ones are grouped by member
    by_hand = conv(1, 4 * 64, 8) + bn(4 * 64) + 4 * conv(64, 128, 5) + bn(4 * 128) + 4 * conv(128, 64, 3)
    by_hand += bn(4 * 64) + 4 * (64 * 2 + 2)
    assert _meta_params("fcn_ensemble", num_classes=2) == by_hand == 267_784  # one FCN: 264,962
    model = _tiny("fcn_ensemble", num_classes=2).eval()
    x = torch.randn(5, 1, 16)
    members = model.member_logits(x)
    assert members.shape == (5, 3, 2)
    assert torch.allclose(model(x).exp(), members.softmax(-1).mean(1), atol=1e-6)  # the ensemble's probabilities
    members[:, 1].sum().backward()  # member 1's output: only member 1's weights may get a gradient
    for name in ("block1.0", "block2.0", "block3.0", "fc"):
        grad = model.get_submodule(name).weight.grad
        rows = grad.abs().flatten(1).sum(1).view(3, -1).sum(1)  # output channels of each member, in order
        assert rows[1] > 0 and rows[0] == 0 and rows[2] == 0, (name, rows)
    with pytest.raises(ConfigError, match="members >= 1"):
        create_model("fcn_ensemble", members=0)


def test_inception_time_counted_by_hand() -> None:
    kernels = 39 + 19 + 9  # 40, 20, 10 made odd

    def module(c_in: int, filters: int = 32) -> int:
        bottleneck = conv(c_in, filters, 1, bias=False) if c_in > 1 else 0
        width = filters if c_in > 1 else c_in
        return bottleneck + conv(width, filters, kernels, bias=False) + conv(c_in, filters, 1, bias=False) + bn(128)

    stage1 = module(1) + 2 * module(128) + conv(1, 128, 1, bias=False) + bn(128)  # 1 -> 128: conv + BN shortcut
    stage2 = 3 * module(128) + bn(128)  # 128 -> 128: BN-only shortcut
    head = 128 * 2 + 2
    assert _meta_params("inception_time", num_classes=2) == stage1 + stage2 + head == 388_610
    assert _meta_params("inception_time", num_classes=2, depth=3) == stage1 + head == 157_186
    with torch.device("meta"):
        body = create_model("inception_time", depth=4).body  # a last stage of one module has no shortcut
    assert len(body) == 2 and body[1].shortcut is None and isinstance(body[0].shortcut, nn.Sequential)


def test_m5_matches_the_torchaudio_tutorial() -> None:
    by_hand = conv(1, 32, 80) + conv(32, 32, 3) + conv(32, 64, 3) + conv(64, 64, 3) + bn(32 + 32 + 64 + 64)
    assert _meta_params("m5") == by_hand + 64 * 35 + 35 == 26_915  # the tutorial prints 26915


def test_video_resnets_match_torchvision() -> None:
    assert _meta_params("r3d_18", num_classes=400, in_chans=3) == 33_371_472
    assert _meta_params("r2plus1d_18", num_classes=400, in_chans=3) == 31_505_325
    with torch.device("meta"):
        model = create_model("r2plus1d_18")
        state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        # torchvision's names and shapes: a weights file for torchvision's r2plus1d_18 fits key for key
        assert state["stem.0.weight"] == (45, 3, 1, 7, 7) and state["stem.3.weight"] == (64, 45, 3, 1, 1)
        assert state["layer2.0.conv1.0.0.weight"] == (230, 64, 1, 3, 3)  # M = 64*128*27 // (64*9 + 3*128)
        assert state["layer2.0.conv1.0.3.weight"] == (128, 230, 3, 1, 1)
        assert state["layer2.0.downsample.0.weight"] == (128, 64, 1, 1, 1) and state["fc.weight"] == (400, 512)
        # a Kinetics clip, 16 frames of 112x112: layer4 maps of 2x7x7 (temporal stride 8, spatial 16), and
        # torchvision's model table: 40.70 and 40.52 GFLOPS (its "FLOPS" count multiply-adds, as summary() does)
        for name, gmacs in (("r3d_18", 40.70), ("r2plus1d_18", 40.52)):
            maps = create_model(name).forward_features(torch.empty(2, 3, 16, 112, 112))
            assert maps.shape == (2, 512, 2, 7, 7)
            assert round(summary(create_model(name), (3, 16, 112, 112)).weight_macs / 1e9, 2) == gmacs
            small = create_model(name, small_input=True).forward_features(torch.empty(2, 3, 16, 64, 64))
            assert small.shape == (2, 512, 2, 8, 8)  # stride-1 stem: 8 times smaller
    # the (2+1)D factorisation has (about) the 3x3x3 conv's parameters: t d^2 N_in N_out = M (d^2 N_in + t N_out)
    for c_in, c_out in ((64, 64), (64, 128), (128, 256), (256, 512)):
        m = mid_planes(c_in, c_out)
        full = 27 * c_in * c_out
        assert m * (9 * c_in + 3 * c_out) <= full < (m + 1) * (9 * c_in + 3 * c_out)


def test_c3d_small_shapes_and_count() -> None:
    widths = (32, 64, 128, 128)
    by_hand = (
        sum(conv(a, b, 27, bias=False) + bn(b) for a, b in zip((1, *widths[:-1]), widths, strict=True)) + 128 * 10 + 10
    )
    assert _meta_params("c3d_small") == by_hand
    with torch.device("meta"):
        maps = create_model("c3d_small").forward_features(torch.empty(2, 1, 16, 64, 64))
    assert maps.shape == (2, 128, 4, 8, 8)  # pools (1,2,2), (2,2,2), (2,2,2)


def test_unet3d_matches_the_paper_and_keeps_the_volume_size() -> None:
    # Cicek et al. 2016: "The architecture has 19069955 parameters in total" (3 channels in, 3 labels)
    assert _meta_params("unet3d", in_chans=3, num_classes=3, base_width=32, batch_norm=False) == 19_069_955
    model = _tiny("unet3d")
    assert model.size_multiple == 4
    assert model(torch.zeros(1, 1, 4, 12, 8)).shape == (1, 3, 4, 12, 8)
    with pytest.raises(ShapeError, match="multiples of 4"):
        model(torch.zeros(1, 1, 4, 10, 8))
    assert create_model("unet3d").size_multiple == 8 == model_entry("unet3d").min_size


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_gradcam_layer_gives_the_last_feature_maps(name: str) -> None:
    model = _tiny(name).eval()
    shape = TINY[name][1]
    x = torch.randn(2, *shape)
    assert isinstance(model, Classifier)
    [maps] = model.forward_intermediates(x)[-1:]
    assert maps.dim() == len(shape) + 1 and maps.shape[:2] == (2, model.num_features)  # (B, C, T) / (B, C, D, H, W)
    assert torch.equal(maps, model.forward_features(x))
    # Grad-CAM by hand: channel weights = mean gradient of the class score over the positions
    features = model.forward_features(x).detach().requires_grad_(True)
    model.forward_head(features)[:, 1].sum().backward()
    positions = tuple(range(2, features.dim()))
    cam = (features.grad.mean(dim=positions, keepdim=True) * features).sum(dim=1).relu()
    assert cam.shape == (2, *maps.shape[2:])
    with GradCAM(model) as explainer:
        assert explainer.layer_name == model.gradcam_layer
        heat = explainer(x, target=1)
    assert heat.shape == (2, *shape[1:]) and torch.isfinite(heat).all()
    assert heat.amin() >= 0 and heat.amax() <= 1


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_contract_reset_classifier_and_in_chans(name: str) -> None:
    shape = TINY[name][1]
    model = _tiny(name, in_chans=3).eval()
    assert model.get_submodule(model.first_conv).in_channels == 3
    features = model.forward_features(torch.randn(2, 3, *shape[1:]))
    assert model.forward_head(features).shape == (2, 3)
    model.reset_classifier(7)
    assert model.get_submodule(model.classifier_layers[0]).out_features == 7
    assert model(torch.randn(2, 3, *shape[1:])).shape == (2, 7)
    assert [info["channels"] for info in model.feature_info((3, *shape[1:]))][-1] == model.num_features


@pytest.mark.parametrize("name", list(TINY))
def test_min_size_works_and_one_less_does_not(name: str) -> None:
    smallest = model_entry(name).min_size
    extra = {"depth": 3, "base_width": 2} if name == "unet3d" else {}  # min_size is 2**depth at the default depth
    model = _tiny(name, **extra).eval()
    rank = len(TINY[name][1]) - 1
    with torch.no_grad():
        out = model(torch.zeros(2, 1, *(smallest,) * rank))
        assert out.shape[:2] == (2, 3)
        if smallest > 1:
            with pytest.raises((RuntimeError, ShapeError)):
                model(torch.zeros(2, 1, *(smallest - 1,) * rank))


def test_m5_min_size_is_the_shortest_waveform_with_one_step_left() -> None:
    # Walk core.shapes through the net's layers for every length: the first that leaves a step is min_size.
    def steps(n: int) -> int:
        n = conv_output_size(n, 80, 16)
        for _ in range(3):
            n = conv_output_size(pool_output_size(n, 4), 3)
        return pool_output_size(n, 4)

    def fits(n: int) -> bool:
        try:
            return steps(n) >= 1
        except ShapeError:
            return False

    first = next(n for n in range(80, 10_000) if fits(n))
    assert first == model_entry("m5").min_size == 6848


def test_c3d_small_takes_short_clips() -> None:
    model = _tiny("c3d_small").eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 1, 4, 8, 8)).shape == (2, 3)  # depth pools twice: 4 frames suffice
        for too_small in ((3, 8, 8), (4, 7, 8), (4, 8, 7)):
            with pytest.raises(RuntimeError):
                model(torch.zeros(2, 1, *too_small))


def test_same_conv1d_pads_as_keras() -> None:
    # 'same' for a kernel of 8: 3 zeros before, 4 after (TensorFlow's rule); scipy correlates the padded series
    rng = np.random.default_rng(0)
    layer = SameConv1d(2, 3, 8).double()
    x = rng.standard_normal((1, 2, 11))
    padded = np.pad(x[0], ((0, 0), (3, 4)))
    w, b = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    expected = np.stack([sum(correlate(padded[c], w[o, c], mode="valid") for c in range(2)) + b[o] for o in range(3)])
    np.testing.assert_allclose(layer(torch.from_numpy(x)).detach().numpy()[0], expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("inception_time", {"depth": 0}, "depth must be a whole number >= 1"),
        ("inception_time", {"kernel_size": 3}, "kernel_size must be a whole number >= 4"),
        ("r3d_18", {"width": 0}, "width must be a whole number >= 1"),
        ("c3d_small", {"width": 2.5}, "width=2.5"),
        ("unet3d", {"base_width": 0}, "base_width must be a whole number >= 1"),
    ],
)
def test_bad_options_say_what_and_what_to_do(name: str, options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        create_model(name, **options)
    assert error.value.fix and error.value.where == name
