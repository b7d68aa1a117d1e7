"""Conv1D / Conv3D and the 1-D / 3-D poolings on random geometries: torch's real output shape equals
``core.shapes`` per axis (``conv_output_size``, ``pool_output_size``) for 'valid' and 'same' padding, and the
values equal references written out here (TensorFlow's 'same' rule; NumPy sliding windows for the pools)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from cnnlab.core.errors import ShapeError
from cnnlab.core.shapes import conv_output_size, pool_output_size, same_padding
from cnnlab.layers import AveragePooling1D, AveragePooling3D, Conv1D, Conv3D, MaxPooling1D, MaxPooling3D

CONVS = {1: Conv1D, 3: Conv3D}
POOLS = {(1, "max"): MaxPooling1D, (3, "max"): MaxPooling3D, (1, "avg"): AveragePooling1D, (3, "avg"): AveragePooling3D}
MAX_SIDE = {1: 24, 3: 6}  # 3-D volumes stay tiny

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: torch's worker threads only cost time


def _tf_same(n: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TensorFlow's 'same' padding written out: ``ceil(n / s)`` outputs, the odd zero after."""
    total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def _axes(data: st.DataObject, rank: int, low: int, high: int) -> list[int]:
    return data.draw(st.lists(st.integers(low, high), min_size=rank, max_size=rank))


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_conv_nd_output_shape_is_core_shapes_per_axis(data: st.DataObject) -> None:
    rank = data.draw(st.sampled_from([1, 3]))
    sizes = _axes(data, rank, 1, MAX_SIDE[rank])
    kernel, strides, dilation = (
        _axes(data, rank, 1, 5 if rank == 1 else 3),
        _axes(data, rank, 1, 3),
        _axes(data, rank, 1, 2),
    )
    padding = data.draw(st.sampled_from(["valid", "same"]))
    c_in, filters = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    layer = CONVS[rank](filters, kernel, strides=strides, padding=padding, dilation_rate=dilation)
    axes = list(zip(sizes, kernel, strides, dilation, strict=True))
    pads = [same_padding(n, k, s, d) if padding == "same" else (0, 0) for n, k, s, d in axes]
    try:
        expected = [conv_output_size(n, k, s, p, d) for (n, k, s, d), p in zip(axes, pads, strict=True)]
    except ShapeError:  # a 'valid' window larger than the input: the layer refuses it at build time too
        assert padding == "valid"
        with pytest.raises(ShapeError, match="window"):
            layer.build((c_in, *sizes))
        return
    if padding == "same":
        assert expected == [math.ceil(n / s) for n, s in zip(sizes, strides, strict=True)]
    out = layer(torch.randn(2, c_in, *sizes))
    assert tuple(out.shape) == (2, filters, *expected)
    assert layer.compute_output_shape((c_in, *sizes)) == (filters, *expected)


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_conv_nd_same_pads_like_tensorflow(data: st.DataObject) -> None:
    rank = data.draw(st.sampled_from([1, 3]))
    sizes = _axes(data, rank, 1, MAX_SIDE[rank])
    kernel, strides, dilation = _axes(data, rank, 1, 4), _axes(data, rank, 1, 3), _axes(data, rank, 1, 2)
    layer = CONVS[rank](2, kernel, strides=strides, padding="same", dilation_rate=dilation)
    layer.build((2, *sizes))
    layer.double()
    x = torch.randn(1, 2, *sizes, dtype=torch.float64)
    out = layer(x)
    pads = [_tf_same(*axis) for axis in zip(sizes, kernel, strides, dilation, strict=True)]
    padded = F.pad(x, [v for before, after in reversed(pads) for v in (before, after)])  # last axis first
    conv = F.conv1d if rank == 1 else F.conv3d
    torch.testing.assert_close(out, conv(padded, layer.conv.weight, layer.conv.bias, strides, 0, dilation))


def _pool_reference(x: np.ndarray, kernel: list[int], strides: list[int], pads: list[tuple[int, int]], mode: str):
    """Pooling of ``(C, *sizes)`` by NumPy windows over a NaN-padded copy: padding never wins nor counts."""
    padded = np.pad(x, [(0, 0), *pads], constant_values=np.nan)
    windows = sliding_window_view(padded, kernel, axis=tuple(range(1, x.ndim)))
    windows = windows[(slice(None), *(slice(None, None, s) for s in strides))]
    reduce = np.nanmax if mode == "max" else np.nanmean
    return reduce(windows, axis=tuple(range(x.ndim, windows.ndim)))


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_pool_nd_output_shape_is_core_shapes_and_values_are_numpy_windows(data: st.DataObject) -> None:
    rank, mode = data.draw(st.sampled_from([1, 3])), data.draw(st.sampled_from(["max", "avg"]))
    sizes = _axes(data, rank, 1, MAX_SIDE[rank])
    kernel = _axes(data, rank, 1, 4 if rank == 1 else 3)
    strides = data.draw(st.one_of(st.none(), st.lists(st.integers(1, 3), min_size=rank, max_size=rank)))
    padding = data.draw(st.sampled_from(["valid", "same"]))
    layer = POOLS[rank, mode](kernel, strides=strides, padding=padding)
    steps = kernel if strides is None else strides  # strides default to the pool size, as in Keras and torch
    axes = list(zip(sizes, kernel, steps, strict=True))
    pads = [_tf_same(n, k, s) if padding == "same" else (0, 0) for n, k, s in axes]
    try:
        expected = [pool_output_size(n, k, s, p) for (n, k, s), p in zip(axes, pads, strict=True)]
    except ShapeError:
        assert padding == "valid"
        with pytest.raises(ShapeError, match="window"):
            layer.build((2, *sizes))
        return
    x = np.random.default_rng(0).standard_normal((2, *sizes))
    out = layer(torch.from_numpy(x)[None])
    assert tuple(out.shape) == (1, 2, *expected)
    assert layer.compute_output_shape((2, *sizes)) == (2, *expected)
    np.testing.assert_allclose(out[0].numpy(), _pool_reference(x, kernel, steps, pads, mode), rtol=1e-12)
