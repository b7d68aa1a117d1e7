"""cnnlab.keras.layers: Keras' published parameter counts, Keras weight layouts checked against a
hand-written torch.nn.functional reference on NHWC input, channels-last shapes, and clear errors for
channels-first shapes and unsupported Keras arguments; the activation layers (LeakyReLU, ELU, ReLU's
options, PReLU) against outputs of real Keras (fixtures/keras_activations.npz)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.core.errors import ConfigError, RegistryError, ShapeError
from cnnlab.keras import layers
from cnnlab.keras.models import Sequential

FIXTURES = Path(__file__).parent / "fixtures"


def _mnist_convnet() -> Sequential:
    """keras.io's "Simple MNIST convnet" (34,826 parameters), written with model.add as the course does."""
    model = Sequential()
    model.add(layers.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(64, (3, 3), activation="relu"))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Flatten())
    model.add(layers.Dropout(0.5))
    model.add(layers.Dense(10, activation="softmax"))
    return model


def _dlwp_mnist() -> Sequential:
    """Deep Learning with Python (ch. 5): three convs, then Dense(64) and Dense(10); the book prints 93,322."""
    model = Sequential()
    model.add(layers.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(64, (3, 3), activation="relu"))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(64, (3, 3), activation="relu"))
    model.add(layers.Flatten())
    model.add(layers.Dense(64, activation="relu"))
    model.add(layers.Dense(10, activation="softmax"))
    return model


def _dlwp_cats_vs_dogs() -> Sequential:
    """Deep Learning with Python (ch. 5): the 150x150 cats-vs-dogs convnet; the book prints 3,453,121."""
    model = Sequential()
    model.add(layers.Conv2D(32, (3, 3), activation="relu", input_shape=(150, 150, 3)))
    model.add(layers.MaxPooling2D((2, 2)))
    for filters in (64, 128, 128):
        model.add(layers.Conv2D(filters, (3, 3), activation="relu"))
        model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Flatten())
    model.add(layers.Dense(512, activation="relu"))
    model.add(layers.Dense(1, activation="sigmoid"))
    return model


@pytest.mark.parametrize(
    ("build", "total"),
    [(_mnist_convnet, 34_826), (_dlwp_mnist, 93_322), (_dlwp_cats_vs_dogs, 3_453_121)],
    ids=["keras-io-mnist", "dlwp-mnist", "dlwp-cats-vs-dogs"],
)
def test_parameter_counts_equal_keras_published_counts(build, total) -> None:
    model = build()
    assert model.count_params() == total
    assert sum(w.size for w in model.get_weights()) == total


def test_counts_follow_keras_rules_for_batchnorm_depthwise_separable_and_conv1d() -> None:
    model = Sequential(
        [
            layers.Input(shape=(32, 32, 3)),
            layers.Conv2D(16, 3, use_bias=False),  # 3*3*3*16
            layers.BatchNormalization(),  # gamma, beta trainable; moving mean/variance not: 4*16
            layers.DepthwiseConv2D(3, depth_multiplier=2),  # 3*3*16*2 + 32
            layers.SeparableConv2D(8, 3),  # 3*3*32 + 32*8 + 8
        ]
    )
    assert [layer.count_params() for layer in model.layers] == [432, 64, 320, 552]
    assert sum(w.numel() for w in model.non_trainable_weights) == 32
    assert Sequential([layers.Conv1D(64, 3, input_shape=(100, 1))]).count_params() == 3 * 64 + 64
    assert (
        Sequential([layers.Conv2DTranspose(8, 3, strides=2, input_shape=(4, 4, 2))]).count_params() == 3 * 3 * 8 * 2 + 8
    )


def test_fixed_keras_weights_give_the_torch_reference_outputs() -> None:
    """Weights set in Keras' layouts; the reference runs F.* on the NHWC input, permuting as Keras would."""
    rng = np.random.default_rng(0)
    model = Sequential(
        [
            layers.Input(shape=(8, 8, 2)),
            layers.Conv2D(4, (3, 3), padding="same", activation="relu"),
            layers.BatchNormalization(epsilon=1e-3),
            layers.DepthwiseConv2D((3, 3), depth_multiplier=2),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            layers.Dense(5, activation="softmax"),
        ]
    )
    weights = [rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()]
    weights[5] = np.abs(weights[5]) + 0.5  # BatchNormalization's moving variance is positive
    model.set_weights(weights)
    k1, b1, gamma, beta, mean, var, kd, bd, kdense, bdense = (torch.from_numpy(w) for w in weights)
    x = rng.normal(size=(3, 8, 8, 2)).astype(np.float32)

    t = torch.from_numpy(x).permute(0, 3, 1, 2)  # NHWC -> NCHW for F.conv2d
    t = F.relu(F.conv2d(t, k1.permute(3, 2, 0, 1), b1, padding=1))  # (kh, kw, in, out) -> (out, in, kh, kw)
    t = (t - mean[:, None, None]) / torch.sqrt(var[:, None, None] + 1e-3) * gamma[:, None, None] + beta[:, None, None]
    depthwise = kd.permute(2, 3, 0, 1).reshape(8, 1, 3, 3)  # (kh, kw, C, m) -> (C*m, 1, kh, kw)
    t = F.max_pool2d(F.conv2d(t, depthwise, bd, groups=4), 2)  # (3, 8, 3, 3)
    t = t.permute(0, 2, 3, 1).reshape(3, -1)  # Keras flattens (H, W, C)
    expected = torch.softmax(t @ kdense + bdense, dim=1).numpy()

    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-6)
    assert [w.shape for w in model.get_weights()] == [w.shape for w in weights]


def test_image_outputs_and_transposed_conv_match_the_reference_channels_last() -> None:
    rng = np.random.default_rng(1)
    model = Sequential([layers.Conv2DTranspose(3, (3, 3), strides=2, input_shape=(4, 4, 2))])
    kernel, bias = rng.normal(size=(3, 3, 3, 2)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    model.set_weights([kernel, bias])  # Keras' transposed kernel is (kh, kw, out, in)
    x = rng.normal(size=(2, 4, 4, 2)).astype(np.float32)
    ref = F.conv_transpose2d(
        torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(kernel).permute(3, 2, 0, 1), stride=2
    )
    expected = (ref + torch.from_numpy(bias)[:, None, None]).permute(0, 2, 3, 1).numpy()  # back to NHWC
    out = model.predict(x, verbose=0)
    assert out.shape == (2, 9, 9, 3)  # Keras: (4 - 1) * 2 + 3
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_weights_are_in_keras_layouts_and_set_weights_checks_shapes() -> None:
    conv = Sequential([layers.Conv2D(32, (3, 3), input_shape=(28, 28, 1))]).layers[0]
    assert [w.shape for w in conv.get_weights()] == [(3, 3, 1, 32), (32,)]
    dense = Sequential([layers.Dense(10, input_shape=(64,))]).layers[0]
    assert [w.shape for w in dense.get_weights()] == [(64, 10), (10,)]
    bn = Sequential([layers.BatchNormalization(input_shape=(4, 4, 8))]).layers[0]
    gamma, beta, mean, var = bn.get_weights()
    assert (gamma == 1).all() and (beta == 0).all() and (mean == 0).all() and (var == 1).all()
    assert (dense.get_weights()[1] == 0).all()  # Keras' zero bias
    with pytest.raises(ShapeError, match=r"\(64, 10\)"):
        dense.set_weights([np.zeros((10, 64)), np.zeros(10)])


def test_shapes_are_channels_last() -> None:
    x = layers.Input(shape=(8, 8, 3))
    assert layers.channels_last(layers.Concatenate()([x, layers.Conv2D(5, 1)(x)]).shape) == (8, 8, 8)
    assert layers.channels_last(layers.Concatenate(axis=1)([x, x]).shape) == (16, 8, 3)
    assert layers.channels_last(layers.Reshape((4, 4, 12))(x).shape) == (4, 4, 12)
    flat = layers.Flatten()(torch.arange(12.0).reshape(1, 3, 2, 2))  # NCHW (C=3)
    assert flat.tolist()[0][:3] == [0.0, 4.0, 8.0]  # the first pixel's three channels come first
    # Reshape reads its target channels-last: a Dense output reshaped to (2, 2, 3) keeps the NHWC order.
    reshaped = layers.Reshape((2, 2, 3))(torch.arange(12.0)[None])  # (1, C=3, 2, 2)
    assert reshaped.permute(0, 2, 3, 1).flatten().tolist() == list(map(float, range(12)))


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 16, 16, 16)])
def test_channels_first_shapes_are_refused_with_the_keras_order(shape) -> None:
    with pytest.raises(ShapeError, match=r"looks channels-first; Keras shapes are \(H, W, C\)") as err:
        layers.Conv2D(8, 3, input_shape=shape)
    assert str((*shape[1:], shape[0])) in str(err.value)
    with pytest.raises(ShapeError, match="channels-first"):
        layers.Input(shape=shape)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: layers.Dense(10, kernel_regularizer="l2"), "kernel_regularizer is not supported.*AdamW"),
        (lambda: layers.Conv2D(8, 3, dtype="float16"), "dtype is not supported.*float32"),
        (lambda: layers.Conv2D(8, 3, data_format="channels_first"), "channels-last layout only"),
        (lambda: layers.Dropout(0.5, noise_shape=(1, 1, 8)), "noise_shape.*SpatialDropout2D"),
        (lambda: layers.BatchNormalization(axis=0), "0 is the batch axis.*axis=-1"),
        (lambda: layers.Conv2D(8, 3, kernel_size_typo=3), "no argument 'kernel_size_typo'"),
        (lambda: layers.Dense(10, activaton="relu"), "did you mean 'activation'"),
        (lambda: layers.Input(shape=(None, None, 3)), "variable sizes"),
    ],
    ids=["regularizer", "dtype", "channels_first", "noise_shape", "bn-axis", "unknown", "typo", "none-size"],
)
def test_unsupported_keras_arguments_are_named_with_the_nearest_option(make, message) -> None:
    with pytest.raises(ConfigError, match=message):
        make()


def test_keras_defaults_are_accepted() -> None:
    dense = layers.Dense(4, kernel_regularizer=None, bias_initializer="zeros", dtype="float32", input_dim=3)
    assert dense.input_shape == (3,)
    assert layers.BatchNormalization().momentum == 0.99 and layers.BatchNormalization().epsilon == 1e-3
    assert layers.ReLU(6.0).activation == "relu6" and layers.Softmax().activation == "softmax"
    with pytest.raises(RegistryError, match="did you mean 'Dense'"):
        layers.layer_from_config({"layer": "Dence", "units": 2})


def test_trainable_false_freezes_and_a_frozen_batchnorm_runs_in_inference_mode() -> None:
    model = Sequential([layers.Dense(4, input_shape=(3,)), layers.BatchNormalization(), layers.Dense(2)])
    first, bn, _ = model.layers
    first.trainable = False
    assert not any(p.requires_grad for p in first.parameters())
    assert sum(w.numel() for w in model.trainable_weights) == 2 * 4 + 4 * 2 + 2
    bn.set_weights([np.ones(4), np.zeros(4), np.full(4, 2.0), np.full(4, 4.0)])
    bn.trainable = False
    bn.train()
    out = bn(torch.full((5, 4), 4.0))
    torch.testing.assert_close(out, torch.full((5, 4), 2 / (4 + 1e-3) ** 0.5))  # moving statistics used
    assert bn.get_weights()[2].tolist() == [2.0] * 4  # and not updated
    config = layers.layer_from_config(first.get_config())
    assert config.trainable is False and config.name == first.name


_ACTIVATIONS = {  # the fixture's keys -> the same layer here (benchmarks/keras_reference.py fixture (h))
    "leaky_relu_default": lambda: layers.LeakyReLU(),
    "leaky_relu_0_1": lambda: layers.LeakyReLU(negative_slope=0.1),
    "leaky_relu_alpha_0_05": lambda: layers.LeakyReLU(alpha=0.05),
    "elu_default": lambda: layers.ELU(),
    "elu_0_5": lambda: layers.ELU(alpha=0.5),
    "relu_all": lambda: layers.ReLU(max_value=1.0, negative_slope=0.1, threshold=0.5),
    "relu_slope": lambda: layers.ReLU(negative_slope=0.2),
    "relu_threshold": lambda: layers.ReLU(threshold=0.3),
    "relu_max6": lambda: layers.ReLU(max_value=6.0),
    "relu_max_slope": lambda: layers.ReLU(max_value=2.0, negative_slope=0.1),
}


@pytest.mark.filterwarnings("ignore:Argument `alpha` is deprecated")
@pytest.mark.parametrize("name", list(_ACTIVATIONS))
def test_activation_layers_give_real_kerass_outputs(name) -> None:
    keras = np.load(FIXTURES / "keras_activations.npz")
    model = Sequential([layers.Input(shape=(6, 6, 3)), _ACTIVATIONS[name]()])
    np.testing.assert_allclose(model.predict(keras["x"], verbose=0), keras[f"y_{name}"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("name", "shared_axes"), [("prelu", None), ("prelu_shared", [1, 2])])
def test_prelu_has_kerass_weights_and_outputs(name, shared_axes) -> None:
    keras = np.load(FIXTURES / "keras_activations.npz")
    model = Sequential([layers.Input(shape=(6, 6, 3)), layers.PReLU(shared_axes=shared_axes)])
    assert model.count_params() == int(keras[f"count_params_{name}"])
    model.set_weights([keras[f"alpha_{name}"]])  # Keras' layout: (H, W, C), or (1, 1, C) shared
    np.testing.assert_allclose(model.predict(keras["x"], verbose=0), keras[f"y_{name}"], rtol=1e-6, atol=1e-6)
    fresh = layers.PReLU(input_shape=(3,))
    fresh.build((3,))
    assert not np.any(fresh.get_weights()[0])  # alpha starts at Keras' zeros: a plain ReLU


def test_leaky_relu_takes_kerass_default_slope_and_keras_2s_alpha_with_a_warning() -> None:
    keras = np.load(FIXTURES / "keras_activations.npz")
    assert layers.LeakyReLU().negative_slope == float(keras["leaky_relu_default_slope"]) == 0.3
    with pytest.warns(UserWarning, match="Argument `alpha` is deprecated. Use `negative_slope` instead."):
        layer = layers.LeakyReLU(alpha=0.1)
    assert layer.negative_slope == 0.1 and layer.get_config()["negative_slope"] == 0.1  # saved under Keras 3's name
    assert layers.layer_from_config(layers.ReLU(threshold=0.5).get_config()).threshold == 0.5
    with pytest.raises(ConfigError, match="negative_slope must be a number >= 0"):
        layers.LeakyReLU(negative_slope=-1.0)


def test_the_course_tf2_notebook_models_build_with_its_counts() -> None:
    """Course 4 week 1, the TF2 version: `happyModel` (Sequential, `MaxPool2D`, `ReLU`, `ZeroPadding2D(padding=3)`)
    prints 37,633 parameters (64 non-trainable); `convolutional_model` prints 1,310."""
    from cnnlab import keras

    tfl = keras.layers
    happy = keras.Sequential(
        [
            tfl.ZeroPadding2D(padding=3, input_shape=(64, 64, 3)),
            tfl.Conv2D(32, 7, strides=1),
            tfl.BatchNormalization(axis=3),
            tfl.ReLU(),
            tfl.MaxPool2D(),
            tfl.Flatten(),
            tfl.Dense(1, activation="sigmoid"),
        ]
    )
    assert happy.count_params() == 37_633
    assert sum(w.numel() for w in happy.non_trainable_weights) == 64
    image = keras.Input(shape=(64, 64, 3))
    x = tfl.MaxPool2D(pool_size=(8, 8), strides=(8, 8), padding="same")(
        tfl.ReLU()(tfl.Conv2D(8, (4, 4), padding="same")(image))
    )
    x = tfl.MaxPool2D(pool_size=(4, 4), strides=(4, 4), padding="same")(
        tfl.ReLU()(tfl.Conv2D(16, (2, 2), padding="same")(x))
    )
    assert keras.Model(image, tfl.Dense(units=6, activation="softmax")(tfl.Flatten()(x))).count_params() == 1_310
    assert tfl.AvgPool2D is tfl.AveragePooling2D and tfl.GlobalAvgPool2D is tfl.GlobalAveragePooling2D
