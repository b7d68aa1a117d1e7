"""core.shapes against torch's real layers, torch's FLOP counter, gradients, and the textbook examples."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnlab.core import shapes
from cnnlab.core.errors import ShapeError

FEW = settings(max_examples=40, deadline=None)
sizes = st.integers(1, 24)
kernels = st.integers(1, 6)
strides = st.integers(1, 4)
dilations = st.integers(1, 3)
pads = st.integers(0, 4)


def _spatial(layer: nn.Module, h: int, w: int, **kwargs: object) -> tuple[int, int]:
    with torch.no_grad():
        return tuple(layer(torch.zeros(1, 1, h, w), **kwargs).shape[2:])


# --- textbook examples --------------------------------------------------------------------------


def test_textbook_6x6_with_3x3() -> None:
    assert shapes.conv_output_size(6, 3) == 4
    assert shapes.conv_output_size(6, 3, padding=1) == 6


def test_textbook_39x39x3_walk_to_1960() -> None:
    n, c = 39, 3
    walk = []
    for f, s, p, filters in [(3, 1, 0, 10), (5, 2, 0, 20), (5, 2, 0, 40)]:
        n, c = shapes.conv_output_size(n, f, s, p), filters
        walk.append((n, n, c))
    assert walk == [(37, 37, 10), (17, 17, 20), (7, 7, 40)]
    assert math.prod(walk[-1]) == 1960


def test_textbook_280_parameters_for_10_filters_of_3x3x3() -> None:
    assert shapes.conv_params(3, 10, 3) == 280 == nn.Conv2d(3, 10, 3).weight.numel() + 10


def test_textbook_lenet5_like_walk() -> None:
    n = shapes.conv_output_size(32, 5)  # 32x32x3 -> 28x28x6
    assert n == 28
    n = shapes.pool_output_size(n, 2)  # -> 14x14x6
    assert n == 14
    n = shapes.conv_output_size(n, 5)  # -> 10x10x16
    assert n == 10
    n = shapes.pool_output_size(n, 2)  # -> 5x5x16
    assert n == 5
    flat = n * n * 16
    assert flat == 400
    params = [shapes.dense_params(a, b) for a, b in [(400, 120), (120, 84), (84, 10)]]
    assert params == [48120, 10164, 850]


def test_textbook_5x5_conv_cost_and_1x1_bottleneck() -> None:
    direct = shapes.conv_macs(192, 32, 5, output_size=28)
    bottleneck = shapes.conv_macs(192, 16, 1, output_size=28) + shapes.conv_macs(16, 32, 5, output_size=28)
    assert round(direct / 1e6, 1) == 120.4
    assert round(bottleneck / 1e6, 1) == 12.4


# --- output sizes equal torch's real layers -------------------------------------------------------


@FEW
@given(
    h=sizes,
    w=sizes,
    k=st.tuples(kernels, kernels),
    s=st.tuples(strides, strides),
    p=st.tuples(pads, pads),
    d=st.tuples(dilations, dilations),
)
def test_conv_output_size_equals_conv2d(h, w, k, s, p, d) -> None:
    try:
        expected = tuple(shapes.conv_output_size(n, *a) for n, *a in zip((h, w), k, s, p, d, strict=True))
    except ShapeError:
        with pytest.raises(RuntimeError):
            _spatial(nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d), h, w)
        return
    assert _spatial(nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d), h, w) == expected


@FEW
@given(h=sizes, w=sizes, k=kernels, s=strides, d=dilations, pad=st.data(), ceil=st.booleans())
def test_pool_output_size_equals_maxpool2d(h, w, k, s, d, pad, ceil) -> None:
    p = pad.draw(st.integers(0, k // 2))
    try:
        expected = tuple(shapes.pool_output_size(n, k, s, p, d, ceil) for n in (h, w))
    except ShapeError:
        with pytest.raises(RuntimeError):
            _spatial(nn.MaxPool2d(k, s, p, d, ceil_mode=ceil), h, w)
        return
    assert _spatial(nn.MaxPool2d(k, s, p, d, ceil_mode=ceil), h, w) == expected
    if d == 1:
        assert _spatial(nn.AvgPool2d(k, s, p, ceil_mode=ceil), h, w) == expected


@FEW
@given(h=sizes, k=kernels, s=strides, d=dilations, p=pads, extra=st.data())
def test_transposed_conv_output_size_equals_convtranspose2d(h, k, s, d, p, extra) -> None:
    op = extra.draw(st.integers(0, max(s, d) - 1))
    layer = nn.ConvTranspose2d(1, 1, k, stride=s, padding=p, output_padding=op, dilation=d)
    try:
        expected = shapes.transposed_conv_output_size(h, k, s, p, op, d)
    except ShapeError:  # we refuse a non-positive size; torch raises, or returns an empty map when it is 0
        try:
            size = _spatial(layer, h, h)
        except RuntimeError:
            return
        assert size == (0, 0)
        return
    assert _spatial(layer, h, h) == (expected, expected)


@FEW
@given(n=sizes, k=kernels, s=strides)
def test_transposed_conv_inverts_conv(n, k, s) -> None:
    if n < k:
        return
    out = shapes.conv_output_size(n, k, s)
    # Some output_padding < stride recovers n exactly.
    assert n in {shapes.transposed_conv_output_size(out, k, s, output_padding=op) for op in range(s)}


@FEW
@given(h=sizes, w=sizes, k=kernels, s=strides, d=dilations)
def test_same_padding_gives_ceil_n_over_s_in_torch(h, w, k, s, d) -> None:
    (top, bottom), (left, right) = shapes.resolve_padding("same", [h, w], [k, k], [s, s], [d, d])
    x = F.pad(torch.zeros(1, 1, h, w), (left, right, top, bottom))
    out = F.conv2d(x, torch.zeros(1, 1, k, k), stride=s, dilation=d)
    assert tuple(out.shape[2:]) == (math.ceil(h / s), math.ceil(w / s))


@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")
@FEW
@given(n=sizes, k=kernels, d=dilations)
def test_same_padding_matches_torch_padding_same_values(n, k, d) -> None:
    # torch's padding="same" (stride 1) splits an odd total like TF: the extra pixel goes after.
    conv = nn.Conv2d(1, 1, k, padding="same", dilation=d, bias=False)
    x = torch.randn(1, 1, n, n)
    (top, bottom), (left, right) = shapes.resolve_padding("same", [n, n], [k, k], [1, 1], [d, d])
    with torch.no_grad():
        expected = F.conv2d(F.pad(x, (left, right, top, bottom)), conv.weight, dilation=d)
        torch.testing.assert_close(conv(x), expected)


@FEW
@given(n=sizes, k=kernels, s=strides, d=dilations)
def test_size_preserving_padding_keeps_n_for_any_stride(n, k, s, d) -> None:
    before, after = shapes.size_preserving_padding(n, k, s, d)
    assert before <= after <= before + 1
    out = F.conv2d(
        F.pad(torch.zeros(1, 1, n, 1), (0, 0, before, after)), torch.zeros(1, 1, k, 1), stride=s, dilation=(d, 1)
    )
    assert out.shape[2] == n


# --- parameter and multiply-add counts ------------------------------------------------------------


@FEW
@given(
    g=st.integers(1, 4),
    cin=st.integers(1, 4),
    cout=st.integers(1, 4),
    k=st.tuples(kernels, kernels),
    bias=st.booleans(),
    n=st.integers(6, 12),
)
def test_conv_params_and_macs_equal_torch(g, cin, cout, k, bias, n) -> None:
    conv = nn.Conv2d(cin * g, cout * g, k, groups=g, bias=bias)
    assert shapes.conv_params(cin * g, cout * g, k, groups=g, bias=bias) == sum(p.numel() for p in conv.parameters())
    x = torch.zeros(1, cin * g, n, n)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = conv(x)
    macs = shapes.conv_macs(cin * g, cout * g, k, tuple(out.shape[2:]), groups=g)
    assert 2 * macs == counter.get_total_flops()  # torch counts one multiply-add as two FLOPs


def test_transposed_conv_macs_equal_torch_flop_counter() -> None:
    deconv = nn.ConvTranspose2d(6, 4, 3, stride=2, groups=2)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        deconv(torch.zeros(1, 6, 5, 5))
    assert 2 * shapes.conv_macs(6, 4, 3, output_size=5, groups=2) == counter.get_total_flops()


def test_depthwise_and_separable_equal_torch_layers() -> None:
    depthwise = nn.Conv2d(8, 16, 3, groups=8, bias=False)
    pointwise = nn.Conv2d(16, 5, 1)
    assert shapes.depthwise_conv_params(8, 3, depth_multiplier=2, bias=False) == depthwise.weight.numel()
    separable = sum(p.numel() for p in [*depthwise.parameters(), *pointwise.parameters()])
    assert shapes.separable_conv_params(8, 5, 3, depth_multiplier=2) == separable
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        pointwise(depthwise(torch.zeros(1, 8, 10, 10)))
    assert 2 * shapes.separable_conv_macs(8, 5, 3, output_size=8, depth_multiplier=2) == counter.get_total_flops()


@pytest.mark.parametrize("bias", [True, False])
def test_dense_and_batchnorm_params_equal_torch(bias: bool) -> None:
    linear = nn.Linear(400, 120, bias=bias)
    assert shapes.dense_params(400, 120, bias=bias) == sum(p.numel() for p in linear.parameters())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        linear(torch.zeros(1, 400))
    assert 2 * shapes.dense_macs(400, 120) == counter.get_total_flops()
    bn = nn.BatchNorm2d(64, affine=bias)
    assert shapes.batchnorm_params(64, affine=bias) == sum(p.numel() for p in bn.parameters())


# --- receptive field and jump against gradients -------------------------------------------------


def _support(grad: torch.Tensor) -> tuple[int, int]:
    """First and last input index with a non-zero gradient along the height axis."""
    rows = grad[0, 0].abs().sum(dim=1).nonzero().flatten()
    return int(rows[0]), int(rows[-1])


@FEW
@given(layers=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 2)), min_size=1, max_size=4))
def test_receptive_field_and_jump_equal_gradient_support(layers) -> None:
    # A stack of all-ones convs without padding: output (0, 0) sees input [0, rf), output (1, 0) starts `jump` later.
    fields = shapes.receptive_fields(layers)
    n = fields[-1].size + fields[-1].jump  # just enough for two output rows
    x = torch.zeros(1, 1, n, 1, requires_grad=True)
    y = x
    for k, s, d in layers:
        y = F.conv2d(y, torch.ones(1, 1, k, 1), stride=(s, 1), dilation=(d, 1))
    assert y.shape[2] >= 2
    (g0,) = torch.autograd.grad(y[0, 0, 0, 0], x, retain_graph=True)
    (g1,) = torch.autograd.grad(y[0, 0, 1, 0], x)
    assert _support(g0) == (0, fields[-1].size - 1)
    assert _support(g1)[0] == fields[-1].jump


# --- bad input ----------------------------------------------------------------------------------


def test_kernel_larger_than_padded_input_names_both_sizes() -> None:
    with pytest.raises(
        ShapeError, match=r"kernel extent 7 .* larger than the padded input 5 \(size 3 \+ padding 1 \+ 1\)"
    ):
        shapes.conv_output_size(3, 7, padding=1)


def test_nonpositive_kernel_size_is_rejected() -> None:
    with pytest.raises(ShapeError, match=r"kernel_size must be a positive integer. Received: kernel_size=0"):
        shapes.conv_output_size(6, 0)


def test_negative_transposed_output_size_is_rejected() -> None:
    with pytest.raises(ShapeError, match="output size would be -4"):
        shapes.transposed_conv_output_size(2, 1, padding=3)


def test_groups_must_divide_channels() -> None:
    with pytest.raises(
        ShapeError, match=r"in_channels must be divisible by groups\. Received: in_channels=3, groups=2"
    ):
        shapes.conv_params(3, 4, 3, groups=2)


def test_pool_padding_over_half_kernel_is_rejected_like_torch() -> None:
    with pytest.raises(ShapeError, match="at most half the kernel size"):
        shapes.pool_output_size(8, 3, padding=2)
    with pytest.raises(RuntimeError, match="pad should be"):
        nn.MaxPool2d(3, padding=2)(torch.zeros(1, 1, 8, 8))
