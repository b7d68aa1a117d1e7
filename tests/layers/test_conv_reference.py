"""Conv2D against an independent reference: scipy.signal.correlate2d per channel pair, with explicit
NumPy padding, zero-inserted (dilated) kernels, stride slicing, bias and groups."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.signal import convolve2d, correlate2d

from cnnlab.layers import Conv2D


def _tf_same(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding, written out here: out = ceil(n / s), the extra pixel after."""
    total = max((math.ceil(n / s) - 1) * s + k + (k - 1) * (d - 1) - n, 0)
    return total // 2, total - total // 2


def _reference(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride, dilation, pads, groups: int) -> np.ndarray:
    """x (N, C, H, W), w (F, C/groups, kh, kw) -> (N, F, H', W') by cross-correlation."""
    (pt, pb), (pl, pr) = pads
    x = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    f, c_per_group, kh, kw = w.shape
    dilated = np.zeros((f, c_per_group, (kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1))
    dilated[:, :, :: dilation[0], :: dilation[1]] = w
    f_per_group = f // groups
    outs = []
    for sample in x:
        maps = []
        for o in range(f):
            g = o // f_per_group
            acc = sum(correlate2d(sample[g * c_per_group + c], dilated[o, c], mode="valid") for c in range(c_per_group))
            maps.append(acc[:: stride[0], :: stride[1]] + b[o])
        outs.append(np.stack(maps))
    return np.stack(outs)


def assert_conv2d_matches_scipy(c_in, size, filters, kernel, stride, dilation, padding, groups, seed=0) -> None:
    rng = np.random.default_rng(seed)
    layer = Conv2D(filters, kernel, strides=stride, padding=padding, dilation_rate=dilation, groups=groups)
    layer.build((c_in, *size))
    layer.double()
    w = rng.standard_normal(layer.conv.weight.shape)
    b = rng.standard_normal(filters)
    layer.conv.weight.data = torch.from_numpy(w)
    layer.conv.bias.data = torch.from_numpy(b)
    x = rng.standard_normal((2, c_in, *size))
    if padding == "valid":
        pads = [(0, 0)] * 2
    elif padding == "same":
        pads = [_tf_same(n, k, s, d) for n, k, s, d in zip(size, kernel, stride, dilation, strict=True)]
    elif isinstance(padding, int):
        pads = [(padding, padding)] * 2
    else:
        pads = [(p, p) if isinstance(p, int) else tuple(p) for p in padding]
    expected = _reference(x, w, b, stride, dilation, pads, groups)
    out = layer(torch.from_numpy(x)).detach().numpy()
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("c_in", "size", "filters", "kernel", "stride", "dilation", "padding", "groups"),
    [
        (3, (9, 8), 4, (3, 3), (1, 1), (1, 1), "valid", 1),
        (3, (9, 8), 4, (3, 2), (2, 1), (1, 1), 1, 1),
        (2, (10, 11), 3, (3, 3), (2, 3), (2, 1), (2, (0, 1)), 1),
        (2, (7, 7), 2, (2, 2), (1, 1), (1, 1), "same", 1),  # even kernel: TF pads (0, 1)
        (4, (8, 9), 6, (3, 4), (2, 2), (1, 2), "same", 2),  # strided 'same', asymmetric, grouped
    ],
)
def test_conv2d_equals_scipy_correlate2d(c_in, size, filters, kernel, stride, dilation, padding, groups) -> None:
    assert_conv2d_matches_scipy(c_in, size, filters, kernel, stride, dilation, padding, groups)


@settings(max_examples=15, deadline=None)
@given(
    size=st.tuples(st.integers(4, 10), st.integers(4, 10)),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.one_of(st.just("same"), st.integers(0, 2)),
    groups=st.sampled_from([1, 2]),
    seed=st.integers(0, 1000),
)
def test_random_conv2d_configs_equal_scipy(size, kernel, stride, dilation, padding, groups, seed) -> None:
    pad = 0 if padding == "same" else padding  # 'same' always fits; a numeric padding must leave room for the window
    assume(all(k + (k - 1) * (d - 1) <= n + 2 * pad for n, k, d in zip(size, kernel, dilation, strict=True)))
    assert_conv2d_matches_scipy(2 * groups, size, 2 * groups, kernel, stride, dilation, padding, groups, seed)


def test_conv2d_is_cross_correlation_not_flipped_convolution() -> None:
    layer = Conv2D(1, 3, use_bias=False)
    layer.build((1, 5, 5))
    kernel = np.arange(9, dtype=np.float32).reshape(3, 3)  # not symmetric: flipping changes the result
    layer.conv.weight.data = torch.from_numpy(kernel)[None, None]
    x = np.random.default_rng(1).standard_normal((5, 5)).astype(np.float32)
    out = layer(torch.from_numpy(x)[None, None]).detach().numpy()[0, 0]
    np.testing.assert_allclose(out, correlate2d(x, kernel, mode="valid"), rtol=1e-5, atol=1e-5)
    assert not np.allclose(out, convolve2d(x, kernel, mode="valid"), atol=1e-3)
