"""Keras-style layers: argument checks, shape inference against textbook formulas, core.shapes and
torch's real output, build-time errors, configs, and a few numeric references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.core.errors import ConfigError, ShapeError
from cnnlab.core.shapes import conv_output_size, resolve_padding
from cnnlab.layers import (
    LAYERS,
    Activation,
    Add,
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    BatchNormalization,
    Concatenate,
    Conv1D,
    Conv2D,
    Conv2DTranspose,
    Conv3D,
    Dense,
    DepthwiseConv2D,
    Dropout,
    Flatten,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    Input,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
    Rescaling,
    SeparableConv2D,
    SpatialDropout2D,
    UpSampling2D,
    ZeroPadding2D,
    layer_from_config,
)
from cnnlab.sequential import Model, Sequential

CONVS = {1: Conv1D, 2: Conv2D, 3: Conv3D}

# One example per registered layer: (factory, per-sample input shape(s), expected output shape).
EXAMPLES = {
    "Input": (lambda: Input((3, 5, 5)), (3, 5, 5), (3, 5, 5)),
    "Conv1D": (lambda: Conv1D(4, 3, strides=2), (2, 11), (4, 5)),
    "Conv2D": (lambda: Conv2D(4, 3, padding="same", activation="relu"), (3, 7, 7), (4, 7, 7)),
    "Conv3D": (lambda: Conv3D(2, 2, padding="same"), (1, 3, 4, 5), (2, 3, 4, 5)),
    "Conv2DTranspose": (lambda: Conv2DTranspose(3, 3, strides=2, padding="same"), (2, 5, 5), (3, 10, 10)),
    "DepthwiseConv2D": (lambda: DepthwiseConv2D(3, depth_multiplier=2), (3, 6, 6), (6, 4, 4)),
    "SeparableConv2D": (lambda: SeparableConv2D(5, 3, strides=2, padding="same"), (3, 7, 7), (5, 4, 4)),
    "MaxPooling1D": (lambda: MaxPooling1D(2), (3, 9), (3, 4)),
    "MaxPooling2D": (lambda: MaxPooling2D(2, padding="same"), (3, 7, 7), (3, 4, 4)),
    "MaxPooling3D": (lambda: MaxPooling3D(2), (1, 4, 4, 5), (1, 2, 2, 2)),
    "AveragePooling1D": (lambda: AveragePooling1D(3, strides=1), (2, 6), (2, 4)),
    "AveragePooling2D": (lambda: AveragePooling2D(3, strides=2, padding="same"), (2, 8, 8), (2, 4, 4)),
    "AveragePooling3D": (lambda: AveragePooling3D(2, padding="same"), (1, 3, 3, 3), (1, 2, 2, 2)),
    "GlobalAveragePooling1D": (lambda: GlobalAveragePooling1D(), (4, 9), (4,)),
    "GlobalAveragePooling2D": (lambda: GlobalAveragePooling2D(), (4, 3, 3), (4,)),
    "GlobalAveragePooling3D": (lambda: GlobalAveragePooling3D(keepdims=True), (4, 2, 3, 3), (4, 1, 1, 1)),
    "GlobalMaxPooling1D": (lambda: GlobalMaxPooling1D(), (4, 9), (4,)),
    "GlobalMaxPooling2D": (lambda: GlobalMaxPooling2D(keepdims=True), (4, 3, 3), (4, 1, 1)),
    "GlobalMaxPooling3D": (lambda: GlobalMaxPooling3D(), (4, 2, 2, 2), (4,)),
    "Dense": (lambda: Dense(7, activation="softmax"), (12,), (7,)),
    "Flatten": (lambda: Flatten(), (3, 4, 5), (60,)),
    "Dropout": (lambda: Dropout(0.5), (3, 4, 4), (3, 4, 4)),
    "SpatialDropout2D": (lambda: SpatialDropout2D(0.2), (3, 4, 4), (3, 4, 4)),
    "BatchNormalization": (lambda: BatchNormalization(), (3, 4, 4), (3, 4, 4)),
    "Activation": (lambda: Activation("swish"), (3, 4), (3, 4)),
    "ZeroPadding2D": (lambda: ZeroPadding2D(((1, 0), (2, 3))), (2, 4, 4), (2, 5, 9)),
    "UpSampling2D": (lambda: UpSampling2D((2, 3), interpolation="bilinear"), (2, 3, 3), (2, 6, 9)),
    "Rescaling": (lambda: Rescaling(1 / 255), (1, 4, 4), (1, 4, 4)),
    "Concatenate": (lambda: Concatenate(), [(2, 4, 4), (3, 4, 4)], (5, 4, 4)),
    "Add": (lambda: Add(), [(2, 4, 4), (2, 4, 4)], (2, 4, 4)),
}


def test_every_registered_layer_has_an_example() -> None:
    assert sorted(EXAMPLES) == LAYERS.names()


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_output_shape_matches_forward_and_config_round_trips(name: str) -> None:
    factory, in_shape, expected = EXAMPLES[name]
    layer = factory()
    assert layer.build(in_shape) == expected
    layer.eval()
    out = layer([torch.randn(2, *s) for s in in_shape]) if layer.multi_input else layer(torch.randn(2, *in_shape))
    assert tuple(out.shape) == (2, *expected)

    config = layer.get_config()
    rebuilt = layer_from_config(config)
    assert rebuilt.get_config() == config
    assert rebuilt.build(in_shape) == expected
    assert sum(p.numel() for p in rebuilt.parameters()) == sum(p.numel() for p in layer.parameters())


def test_kernel_size_zero_is_rejected_at_construction() -> None:
    with pytest.raises(ConfigError, match=r"^Conv2D: kernel_size must be positive\. Received: kernel_size=0"):
        Conv2D(32, 0)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: Conv2D(0, 3), r"Conv2D: filters must be positive. Received: filters=0"),
        (lambda: Conv2D(4, 3, strides=(1, 0)), r"strides must be positive. Received: strides=\(1, 0\)"),
        (lambda: Conv2D(4, (3, 3, 3)), r"kernel_size needs 1 or 2 values"),
        (lambda: Conv2D(4, 3, padding="full"), r"padding must be 'valid', 'same'"),
        (lambda: Conv2D(4, 3, padding=-1), r"Received: padding=-1"),
        (lambda: Conv2D(6, 3, groups=4), r"filters must be divisible by groups"),
        (lambda: Dense(10, activation="rleu"), r"unknown activation 'rleu' \(did you mean 'relu'\?\)"),
        (lambda: Dropout(1.0), r"Dropout: rate must be in \[0, 1\)"),
        (lambda: MaxPooling2D(pool_size=(2, 2, 2)), r"MaxPooling2D: pool_size needs 1 or 2 values"),
        (lambda: ZeroPadding2D((1, 2, 3)), r"ZeroPadding2D: padding must be"),
        (lambda: UpSampling2D(interpolation="cubic"), r"unknown interpolation 'cubic'"),
        (lambda: Concatenate(axis=0), r"0 is the batch axis"),
        (lambda: BatchNormalization(momentum=1.5), r"momentum must be in \[0, 1\)"),
        (lambda: Input((28, 28, 0)), r"input_shape must be a tuple of positive ints"),
    ],
)
def test_bad_arguments_fail_at_construction(factory, message: str) -> None:
    with pytest.raises((ConfigError, ShapeError), match=message):
        factory()


def test_kernel_larger_than_input_fails_at_build_with_name_and_shapes() -> None:
    with pytest.raises(ShapeError) as info:
        Sequential([Input((1, 4, 4)), Conv2D(2, 5)])
    text = str(info.value)
    assert "Conv2D 'conv2d'" in text and "input_shape=(1, 4, 4)" in text and "(5, 5) window" in text


def test_shrinking_to_nothing_names_the_failing_layer() -> None:
    with pytest.raises(ShapeError, match=r"Conv2D 'conv2d_2'.*padded input \(1, 1\).*input_shape=\(2, 1, 1\)"):
        Sequential([Input((1, 5, 5)), Conv2D(2, 3), Conv2D(2, 3), Conv2D(2, 3)])


def test_dense_on_images_asks_for_flatten() -> None:
    with pytest.raises(
        ShapeError, match=r"Dense 'dense': expects flat \(features,\) input, received \(8, 4, 4\)"
    ) as info:
        Sequential([Input((8, 4, 4)), Dense(3)])
    assert "Flatten()" in str(info.value)


def test_add_and_concatenate_mismatch_fail_with_both_shapes() -> None:
    x = Input((3, 8, 8))
    a, b = Conv2D(8, 3, padding="same")(x), Conv2D(4, 3, padding="same")(x)
    with pytest.raises(ShapeError, match=r"^Add: .*\(8, 8, 8\) and \(4, 8, 8\)"):
        Add()([a, b])
    with pytest.raises(ShapeError, match=r"^Concatenate: .*\(8, 8, 8\) and \(4, 6, 6\)"):
        Concatenate()([a, Conv2D(4, 3)(x)])
    assert Model(x, Concatenate()([a, b])).output_shape == (12, 8, 8)


def test_built_layer_rejects_other_channel_counts() -> None:
    conv = Conv2D(4, 3)
    conv(torch.randn(1, 3, 8, 8))
    with pytest.raises(ShapeError, match=r"built for 3 input channels, received input_shape=\(5, 8, 8\)"):
        conv.build((5, 8, 8))


def test_lazy_build_at_first_call() -> None:
    conv = Conv2D(4, 3, padding="same")
    assert not conv.built and not list(conv.parameters())
    assert conv(torch.randn(2, 3, 9, 9)).shape == (2, 4, 9, 9)
    assert conv.input_shape == (3, 9, 9) and conv.conv.weight.shape == (4, 3, 3, 3)


def test_strided_same_padding_follows_each_input_size() -> None:
    conv = Conv2D(2, 3, strides=2, padding="same")
    assert conv(torch.randn(1, 1, 8, 8)).shape == (1, 2, 4, 4)
    assert conv(torch.randn(1, 1, 7, 9)).shape == (1, 2, 4, 5)  # ceil(n / 2) on other sizes too


def _expected_conv_size(n: int, k: int, s: int, d: int, padding: str | int) -> int | None:
    """Textbook / Keras output size, written out independently of core.shapes."""
    if padding == "same":
        return math.ceil(n / s)
    p = 0 if padding == "valid" else padding
    span = n + 2 * p - (k + (k - 1) * (d - 1))
    return None if span < 0 else span // s + 1


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_random_conv_configs_agree_with_formula_core_shapes_and_torch(data: st.DataObject) -> None:
    rank = data.draw(st.sampled_from([1, 2, 3]))
    axes = st.lists(st.integers(1, 4), min_size=rank, max_size=rank)
    sizes = data.draw(st.lists(st.integers(1, 10 if rank < 3 else 6), min_size=rank, max_size=rank))
    kernel, dilation = data.draw(axes), data.draw(st.lists(st.integers(1, 2), min_size=rank, max_size=rank))
    strides = data.draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank))
    padding = data.draw(st.one_of(st.sampled_from(["valid", "same"]), st.integers(0, 2)))
    groups = data.draw(st.sampled_from([1, 2]))
    layer = CONVS[rank](2 * groups, kernel, strides=strides, padding=padding, dilation_rate=dilation, groups=groups)
    in_shape = (2 * groups, *sizes)
    expected = [_expected_conv_size(*args, padding) for args in zip(sizes, kernel, strides, dilation, strict=True)]
    if None in expected:
        with pytest.raises(ShapeError, match=rf"{layer.label}: the .* window"):
            layer.build(in_shape)
        return
    pads = resolve_padding(padding, sizes, kernel, strides, dilation)
    from_core = [conv_output_size(*args) for args in zip(sizes, kernel, strides, pads, dilation, strict=True)]
    assert layer.build(in_shape) == (2 * groups, *expected) == (2 * groups, *from_core)
    assert tuple(layer(torch.randn(1, *in_shape)).shape[1:]) == (2 * groups, *expected)


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(1, 6),
    k=st.integers(1, 4),
    s=st.integers(1, 3),
    d=st.integers(1, 2),
    padding=st.sampled_from(["valid", "same"]),
)
def test_conv_transpose_is_the_adjoint_of_conv_with_keras_sizes(n: int, k: int, s: int, d: int, padding: str) -> None:
    torch.manual_seed(0)
    layer = Conv2DTranspose(3, k, strides=s, padding=padding, dilation_rate=d, use_bias=False)
    f = k + (k - 1) * (d - 1)
    m = n * s if padding == "same" else n * s + max(f - s, 0)  # Keras' deconv_output_length
    assert layer.build((2, n, n)) == (3, m, m)
    x = torch.randn(2, 2, n, n, dtype=torch.float64)
    out = layer.double()(x)
    assert tuple(out.shape[1:]) == (3, m, m)
    # <conv(z), x> = <z, conv_transpose(x)>: the transpose is the input-gradient of the forward conv.
    conv = Conv2D(2, k, strides=s, padding=padding, dilation_rate=d, use_bias=False)
    conv.build((3, m, m))
    conv.double().conv.weight.data.copy_(layer.conv.weight.data)  # (in=3, out=2, k, k) in both layouts
    z = torch.zeros(2, 3, m, m, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad((conv(z) * x).sum(), z)
    torch.testing.assert_close(out, grad)


def test_depthwise_conv_is_one_filter_per_channel() -> None:
    layer = DepthwiseConv2D(3, padding="same")
    x = torch.randn(2, 4, 6, 6)
    out = layer(x)
    for c in range(4):
        ref = F.conv2d(x[:, c : c + 1], layer.conv.weight[c : c + 1], layer.conv.bias[c : c + 1], padding=1)
        torch.testing.assert_close(out[:, c : c + 1], ref)


def test_average_pooling_same_ignores_padding_like_keras() -> None:
    x = torch.randn(1, 2, 5, 5)
    out = AveragePooling2D(2, padding="same")(x)  # 5 -> 3: windows [0:2], [2:4], [4:5]
    xs = x.numpy()
    expected = np.empty((1, 2, 3, 3), np.float32)
    for i in range(3):
        for j in range(3):
            expected[:, :, i, j] = xs[:, :, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].mean(axis=(2, 3))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)


def test_activations_follow_their_formulas() -> None:
    x = torch.linspace(-4, 4, 17).reshape(1, 17)
    torch.testing.assert_close(Activation("relu6")(x), x.clamp(0, 6))
    torch.testing.assert_close(Activation("leaky_relu")(x), torch.where(x > 0, x, 0.2 * x))
    torch.testing.assert_close(Activation("swish")(x), x * torch.sigmoid(x))
    torch.testing.assert_close(Activation("elu")(x), torch.where(x > 0, x, torch.exp(x) - 1))
    gelu = 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    torch.testing.assert_close(Activation("gelu")(x), gelu)
    probs = Activation("softmax")(x.to(torch.bfloat16))
    assert probs.dtype == torch.float32
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(1))


def test_batch_normalization_uses_keras_momentum() -> None:
    bn = BatchNormalization(momentum=0.9)
    x = torch.randn(8, 3, 4, 4) + 5
    bn.train()
    bn(x)
    torch.testing.assert_close(bn.bn.running_mean, 0.1 * x.mean(dim=(0, 2, 3)))  # 0.9 * old (0) + 0.1 * batch


def test_conv_transpose_with_too_much_padding_fails_with_its_name() -> None:
    with pytest.raises(
        ShapeError, match=r"^Conv2DTranspose: transposed convolution output size would be -3.*\(1, 1, 1\)"
    ):
        Conv2DTranspose(2, 3, padding=3).build((1, 1, 1))
