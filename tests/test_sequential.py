"""The Keras-style facade: building, layouts, losses against sklearn, functional graphs that train,
save / load, YAML specs, and (slow, data) Fashion-MNIST above 90% in 2 epochs."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss

from cnnlab.core.errors import ConfigError, DataError, RegistryError, ShapeError, WeightsError
from cnnlab.data.idx import read_idx
from cnnlab.data.loader import TensorLoader
from cnnlab.layers import (
    Add,
    BatchNormalization,
    Concatenate,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    Input,
    MaxPooling2D,
    Rescaling,
)
from cnnlab.sequential import Model, Sequential, load_model_yaml


def _small_sequential(softmax: bool = True) -> Sequential:
    return Sequential(
        [
            Input((1, 8, 8)),
            Conv2D(4, 3, padding="same", activation="relu"),
            MaxPooling2D(),
            Flatten(),
            Dense(3, activation="softmax" if softmax else None),
        ]
    )


def _inception_residual() -> Model:
    """Stem, an Inception-style block (1x1 | 3x3 | 5x5 | pool->1x1, concatenated), a residual add, a head."""
    x = Input((1, 8, 8))
    stem = Conv2D(8, 3, padding="same", activation="relu")(x)
    b1 = Conv2D(2, 1, activation="relu")(stem)
    b3 = Conv2D(2, 3, padding="same", activation="relu")(Conv2D(2, 1, activation="relu")(stem))
    b5 = Conv2D(2, 5, padding="same", activation="relu")(Conv2D(2, 1, activation="relu")(stem))
    bp = Conv2D(2, 1, activation="relu")(MaxPooling2D(3, strides=1, padding="same")(stem))
    mixed = Concatenate()([b1, b3, b5, bp])  # (8, 8, 8)
    y = Add()([stem, BatchNormalization(momentum=0.9)(mixed)])
    return Model(x, Dense(2, activation="softmax")(GlobalAveragePooling2D()(y)))


def _bars(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """NHWC 8x8 images with a bright horizontal (class 0) or vertical (class 1) bar, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(0, 0.3, (n, 8, 8, 1)).astype(np.float32)
    pos = rng.integers(1, 7, n)
    for i in range(n):
        if y[i] == 0:
            x[i, pos[i], :, 0] += 2
        else:
            x[i, :, pos[i], 0] += 2
    return x, y


def test_sequential_names_and_shapes() -> None:
    model = _small_sequential()
    assert [layer.name for layer in model.layers] == ["conv2d", "max_pooling2d", "flatten", "dense"]
    assert [layer.output_shape for layer in model.layers] == [(4, 8, 8), (4, 4, 4), (64,), (3,)]
    assert model.input_shape == (1, 8, 8) and model.output_shape == (3,)
    with pytest.raises(ConfigError, match="two layers are named 'a'"):
        Sequential([Dense(2, name="a", input_shape=(3,)), Dense(2, name="a")])
    with pytest.raises(ConfigError, match="functional Model"):
        Sequential([Add()])


def test_unbuilt_sequential_builds_from_the_data() -> None:
    model = Sequential([Conv2D(2, 3), Flatten(), Dense(2)])
    model.compile(precision="fp32")
    model.fit(np.zeros((4, 6, 6, 3), np.float32), np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    assert model.input_shape == (3, 6, 6) and model.layers[-1].input_shape == (2 * 4 * 4,)


def test_numpy_is_nhwc_and_torch_is_nchw() -> None:
    model = _small_sequential()
    x_nchw = torch.randn(5, 1, 8, 8)
    expected = model.eval()(x_nchw).detach().numpy()
    nhwc = x_nchw.permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(model.predict(nhwc), expected, atol=2e-2)  # predict runs the bf16 plan
    np.testing.assert_array_equal(model.predict(nhwc[..., 0]), model.predict(nhwc))  # (N, H, W) grayscale
    np.testing.assert_array_equal(model.predict(x_nchw), model.predict(nhwc))
    with pytest.raises(ShapeError, match=r"numpy arrays are NHWC.*\(N, 8, 8, 1\).*\(N, 1, 8, 8\)"):
        model.predict(np.zeros((5, 1, 8, 8, 2)))
    with pytest.raises(ShapeError, match=r"torch tensors are NCHW"):
        model.predict(torch.zeros(5, 8, 8, 1))


@pytest.mark.parametrize("softmax", [True, False])
def test_loss_matches_sklearn_log_loss(softmax: bool) -> None:
    model = _small_sequential(softmax)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"], precision="fp32")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 8, 8, 1)).astype(np.float32), rng.integers(0, 3, 40)
    out = model.predict(x)
    probs = out if softmax else torch.softmax(torch.from_numpy(out), dim=1).numpy()
    result = model.evaluate(x, y)
    assert result["loss"] == pytest.approx(log_loss(y, probs, labels=[0, 1, 2]), rel=1e-5)
    assert result["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == y))
    one_hot = np.eye(3)[y]
    model.compile(loss="categorical_crossentropy", precision="fp32")
    assert model.evaluate(x, one_hot)["loss"] == pytest.approx(result["loss"], rel=1e-6)


def test_compile_and_data_errors() -> None:
    model = _small_sequential()
    x, y = np.zeros((4, 8, 8, 1), np.float32), np.array([0, 1, 2, 3])
    with pytest.raises(ConfigError, match="not compiled"):
        model.fit(x, y)
    with pytest.raises(ConfigError, match="unknown optimizer 'adan' \\(did you mean 'adam'\\?\\)"):
        model.compile(optimizer="adan")
    with pytest.raises(ConfigError, match="unknown option 'shedule'; did you mean 'schedule'"):
        model.compile(shedule="cosine")
    model.compile()
    with pytest.raises(DataError, match=r"labels must be in \[0, 3\) for a 3-way output; found 0..3"):
        model.fit(x, y, verbose=0)
    with pytest.raises(DataError, match="x has 4 samples but y has 3"):
        model.fit(x, y[:3], verbose=0)


def test_functional_inception_and_residual_model_trains() -> None:
    torch.manual_seed(0)
    model = _inception_residual()
    assert model.output_shape == (2,)
    assert sum(isinstance(layer, Conv2D) for layer in model.layers) == 7
    x, y = _bars(128)
    model.compile(optimizer="adam", learning_rate=1e-2, precision="fp32")
    history = model.fit(x, y, batch_size=32, epochs=4, validation_split=0.25, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.7 * losses[0]
    assert history.history["val_accuracy"][-1] >= 0.9
    # The validation set is the last 25%, evaluated with the final weights.
    assert model.evaluate(x[96:], y[96:])["loss"] == pytest.approx(history.history["val_loss"][-1], rel=1e-5)


def test_optimizer_state_carries_over_between_fits() -> None:
    model = _small_sequential()
    model.compile()
    x, y = _bars(32)
    model.fit(x, y % 3, batch_size=8, epochs=1, verbose=0)
    model.fit(TensorLoader(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(y), batch_size=8), verbose=0)
    steps = [s["step"].item() for s in model._optimizer_state["state"].values()]
    assert steps and set(steps) == {8.0}  # Adam's step counter kept counting: 4 + 4 batches


@pytest.mark.parametrize("factory", [_small_sequential, _inception_residual])
def test_save_load_round_trips_predictions(factory, tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = factory()
    model.compile()
    x, y = _bars(16)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # moves BatchNorm statistics too
    model.save(tmp_path / "model.pt")
    loaded = type(model).load(tmp_path / "model.pt")
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_load_checks_the_model_kind(tmp_path: Path) -> None:
    _inception_residual().save(tmp_path / "functional.pt")
    with pytest.raises(WeightsError, match="holds a Model, not a Sequential"):
        Sequential.load(tmp_path / "functional.pt")
    torch.save({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="not a saved cnnlab Keras-style model"):
        Sequential.load(tmp_path / "other.pt")


def test_yaml_spec_builds_a_sequential(tmp_path: Path) -> None:
    spec = tmp_path / "model.yaml"
    spec.write_text(
        "input_shape: [3, 32, 32]\n"
        "layers:\n"
        "  - {layer: Conv2D, filters: 16, kernel_size: 3, strides: 2, padding: same, activation: relu}\n"
        "  - {layer: BatchNormalization}\n"
        "  - {layer: GlobalAveragePooling2D}\n"
        "  - {layer: Dense, units: 10, activation: softmax}\n"
    )
    model = load_model_yaml(spec)
    assert [layer.output_shape for layer in model.layers] == [(16, 16, 16), (16, 16, 16), (16,), (10,)]
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("layers:\n  - {layer: Conv2d, filters: 4, kernel_size: 3}\n", RegistryError, "did you mean 'Conv2D'"),
        (
            "input_shape: [1, 8, 8]\nlayers:\n  - {layer: Flatten}\n  - {layer: Dense, unit: 3}\n",
            ConfigError,
            r"Dense has no argument 'unit'; did you mean 'units'\? \[.*model.yaml: layers\[1\]\]",
        ),
        (
            "input_shape: [1, 4, 4]\nlayers:\n  - {layer: Conv2D, filters: 4, kernel_size: 5}\n",
            ShapeError,
            r"Conv2D 'conv2d'.*input_shape=\(1, 4, 4\).*\[.*model.yaml\]",
        ),
        ("input_shape: [1, 4, 4]\nlayer: []\n", ConfigError, "non-empty 'layers' list"),
        ("layers: [\n", ConfigError, "invalid YAML"),
    ],
)
def test_yaml_spec_errors_say_where(tmp_path: Path, text: str, error: type[Exception], message: str) -> None:
    spec = tmp_path / "model.yaml"
    spec.write_text(text)
    with pytest.raises(error, match=message):
        load_model_yaml(spec)


@pytest.mark.measure
@pytest.mark.data
def test_fashion_mnist_sequential_above_90_percent_in_two_epochs(shared_data: Path) -> None:
    folder = shared_data / "fashion-mnist"
    x_train, y_train = read_idx(folder / "train-images-idx3-ubyte.gz"), read_idx(folder / "train-labels-idx1-ubyte.gz")
    x_test, y_test = read_idx(folder / "t10k-images-idx3-ubyte.gz"), read_idx(folder / "t10k-labels-idx1-ubyte.gz")
    torch.manual_seed(0)
    model = Sequential(
        [
            Input((1, 28, 28)),
            Rescaling(1 / 255),
            Conv2D(64, 3, activation="relu"),
            MaxPooling2D(2),
            Dropout(0.2),
            Flatten(),
            Dense(128, activation="relu"),
            Dropout(0.3),
            Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        learning_rate=3e-3,
        schedule="onecycle",  # warm up, then anneal: what makes 2 epochs enough
        seed=0,
    )
    started = time.perf_counter()
    model.fit(x_train[..., None], y_train, batch_size=32, epochs=2, verbose=0)  # NHWC uint8
    accuracy = model.evaluate(x_test[..., None], y_test)["accuracy"]
    print(f"Fashion-MNIST test accuracy {accuracy:.4f} after 2 epochs, {time.perf_counter() - started:.1f} s")
    assert accuracy > 0.90
