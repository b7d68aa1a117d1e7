"""The drop-in against REAL Keras: fixtures written by Keras 3.15.1 on TensorFlow 2.21 (CPU) with
``benchmarks/keras_reference.py`` (see ``tests/keras/fixtures/README.md``). The same architecture is
written here with ``cnnlab.keras``, given Keras' own weights through ``set_weights``, and must give
Keras' outputs, parameter counts and, for one epoch of SGD, Keras' updated weights."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cnnlab import keras
from cnnlab.keras import layers, mixed_precision

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def float32_policy():
    """Keras computes in float32; so does the drop-in under Keras' own policy name."""
    before = mixed_precision.global_policy().name
    mixed_precision.set_global_policy("float32")
    yield
    mixed_precision.set_global_policy(before)


def mnist_convnet(dropout: bool = True) -> keras.Sequential:
    """keras.io's "Simple MNIST convnet", as the fixture script builds it."""
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            *([layers.Dropout(0.5)] if dropout else []),
            layers.Dense(10, activation="softmax"),
        ]
    )


def residual_block() -> keras.Model:
    inputs = keras.Input(shape=(16, 16, 3))
    h = layers.Conv2D(8, 3, padding="same", name="conv1")(inputs)
    h = layers.BatchNormalization(name="bn1")(h)
    h = layers.ReLU(name="relu1")(h)
    h = layers.Conv2D(8, 3, padding="same", name="conv2")(h)
    shortcut = layers.Conv2D(8, 1, name="shortcut")(inputs)
    h = layers.Add(name="add")([h, shortcut])
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    outputs = layers.Dense(5, activation="softmax", name="head")(h)
    return keras.Model(inputs, outputs)


def conv1d() -> keras.Sequential:
    return keras.Sequential(
        [
            layers.Conv1D(4, 5, activation="relu", input_shape=(50, 2)),
            layers.MaxPooling1D(),
            layers.Flatten(),
            layers.Dense(3),
        ]
    )


def conv3d() -> keras.Sequential:
    return keras.Sequential(
        [
            layers.Conv3D(4, 3, activation="relu", input_shape=(8, 8, 8, 1)),
            layers.GlobalAveragePooling3D(),
            layers.Dense(2),
        ]
    )


def weights(data: np.lib.npyio.NpzFile, prefix: str = "weight_") -> list[np.ndarray]:
    """``weight_00``, ``weight_01``, ... (Keras' ``get_weights()`` order) of a fixture."""
    return [data[k] for k in sorted(k for k in data.files if re.fullmatch(prefix + r"\d+", k))]


@pytest.mark.parametrize(
    ("fixture", "build"),
    [
        ("keras_mnist_convnet", mnist_convnet),
        ("keras_residual_block", residual_block),
        ("keras_conv1d", conv1d),
        ("keras_conv3d", conv3d),
    ],
)
def test_keras_weights_give_keras_outputs(fixture: str, build: Callable[[], keras.Model]) -> None:
    data = np.load(FIXTURES / f"{fixture}.npz")
    model = build()
    assert model.count_params() == int(data["count_params"])
    assert [w.shape for w in model.get_weights()] == [w.shape for w in weights(data)]
    model.set_weights(weights(data))
    np.testing.assert_allclose(model.predict(data["x"], verbose=0), data["y"], rtol=1e-5, atol=1e-6)


def test_one_epoch_of_sgd_updates_the_weights_as_keras_does() -> None:
    data = np.load(FIXTURES / "keras_sgd_one_epoch.npz")
    start = weights(np.load(FIXTURES / "keras_mnist_convnet.npz"))
    model = mnist_convnet(dropout=False)
    model.set_weights(start)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=float(data["learning_rate"])), loss="categorical_crossentropy"
    )
    x = data["x_uint8"].astype("float32") / 255
    y = keras.utils.to_categorical(data["labels"], 10)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(float(data["loss_before"]), rel=1e-5)
    history = model.fit(x, y, batch_size=int(data["batch_size"]), epochs=1, shuffle=False, verbose=0)
    assert history.history["loss"][0] == pytest.approx(float(data["history_loss"]), rel=1e-5)
    for ours, theirs, initial in zip(model.get_weights(), weights(data, "weight_after_"), start, strict=True):
        step = theirs - initial  # ~1e-3: compare the updates, not the weights they are added to
        rounding = 8 * np.finfo(np.float32).eps * np.abs(initial).max()  # float32 weights round the sum
        np.testing.assert_allclose(ours - initial, step, rtol=1e-3, atol=rounding)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(float(data["loss_after"]), rel=1e-5)


@pytest.mark.parametrize("spelling", ["input", "inputs"])
def test_chollets_activation_model_returns_keras_activations(spelling: str) -> None:
    """Deep Learning with Python 5.4: a model over the first four layers' outputs. Keras 3.15 takes only
    ``model.inputs`` for a Sequential (``model.input`` is an AttributeError there); cnnlab takes both."""
    model = mnist_convnet()
    model.set_weights(weights(np.load(FIXTURES / "keras_mnist_convnet.npz")))
    data = np.load(FIXTURES / "keras_activation_model.npz")
    activation_model = keras.Model(
        inputs=getattr(model, spelling), outputs=[layer.output for layer in model.layers[:4]]
    )
    activations = activation_model.predict(data["x"], verbose=0)
    assert len(activations) == 4
    for i, got in enumerate(activations):
        np.testing.assert_allclose(got, data[f"act_{i}"], rtol=1e-5, atol=1e-5)
