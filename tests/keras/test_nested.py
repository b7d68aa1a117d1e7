"""Models inside models, the course's transfer pattern: ``Sequential([conv_base, Flatten(), Dense(...)])``,
``model.add(conv_base)``, a functional model called inside another, and ``keras.applications`` as the base.
Rows, parameter counts and trainable counts are REAL Keras' (``fixtures/keras_nested.npz``,
benchmarks/keras_reference.py fixture (k)); training, freezing and saving are checked here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab import keras
from cnnlab.core.errors import ConfigError
from cnnlab.keras import layers

FIXTURE = Path(__file__).parent / "fixtures" / "keras_nested.npz"


def _conv_base() -> keras.Sequential:
    return keras.Sequential(
        [
            keras.Input(shape=(8, 8, 3)),
            layers.Conv2D(4, 3, activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling2D(),
        ],
        name="conv_base",
    )


def _rows(model: keras.Model) -> list[list[str]]:
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    rules = [i for i, line in enumerate(lines) if line.startswith("=")]  # the table's rows lie between the two
    return [line.split() for line in lines[rules[0] + 1 : rules[1]]]


def _check(case: str, model: keras.Model, skip_input: bool = False) -> None:
    expected = np.load(FIXTURE)
    names, types, params = (expected[f"{case}_{key}"].tolist() for key in ("names", "types", "params"))
    if skip_input:  # Keras lists the InputLayer of a functional model as a row with no weights
        names, types, params = names[1:], types[1:], params[1:]
    rows = [row for row in _rows(model) if row[1] != "(Input)"]
    nested = {n: t for n, t in zip(names, types, strict=True) if t in ("Sequential", "Functional")}
    for row, name, kind, count in zip(rows, names, types, params, strict=True):
        assert row[-1] == f"{count:,}"  # one row per nested model, with all its parameters
        if name in nested:
            assert row[:2] == [name, f"({kind})"]
    trainable = sum(w.numel() for w in model.trainable_weights)
    assert model.count_params() == int(expected[f"{case}_total"])
    assert trainable == int(expected[f"{case}_trainable"])
    assert model.count_params() - trainable == int(expected[f"{case}_non_trainable"])


def test_a_frozen_sequential_base_in_a_sequential_counts_as_in_keras() -> None:
    base = _conv_base()
    base.trainable = False
    model = keras.Sequential([base, layers.Flatten(), layers.Dense(8, activation="relu"), layers.Dense(1, "sigmoid")])
    assert model.layers[0] is base and model.input_shape == base.input_shape
    _check("sequential", model)
    added = keras.Sequential()
    added.add(keras.Input(shape=(8, 8, 3)))
    added.add(base)
    added.add(layers.Flatten())
    added.add(layers.Dense(1, activation="sigmoid"))
    _check("add", added)
    lines: list[str] = []
    added.summary(print_fn=lines.append, show_trainable=True)
    rules = [i for i, line in enumerate(lines) if line.startswith("=")]
    assert [line.split()[-1] for line in lines[rules[0] + 1 : rules[1]]] == ["N", "-", "Y"]  # '-': no weights


def test_a_functional_model_called_in_another_counts_as_in_keras() -> None:
    inputs = keras.Input(shape=(8, 8, 3))
    inner = keras.Model(inputs, layers.GlobalAveragePooling2D()(layers.Conv2D(2, 1)(inputs)), name="inner")
    outer_in = keras.Input(shape=(8, 8, 3))
    outer = keras.Model(outer_in, layers.Dense(3)(inner(outer_in)))
    _check("functional", outer, skip_input=True)
    inner.trainable = False
    _check("functional_frozen", outer, skip_input=True)
    outer.compile(optimizer="sgd", loss="mse")
    frozen = inner.get_weights()
    outer.fit(np.ones((4, 8, 8, 3), np.float32), np.zeros((4, 3), np.float32), verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(frozen, inner.get_weights(), strict=True))
    unnamed = keras.Model(inputs, layers.Conv2D(2, 1)(inputs))
    outer = keras.Model(outer_in, layers.Flatten()(unnamed(outer_in)))
    assert [layer.name for layer in outer.layers][1] == "functional"  # Keras' name for an unnamed one


def test_fit_trains_the_head_and_leaves_the_frozen_base_and_its_statistics_alone() -> None:
    base = _conv_base()
    base.trainable = False
    model = keras.Sequential([base, layers.Flatten(), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).random((16, 8, 8, 3), dtype=np.float32)
    before, head = base.get_weights(), model.layers[-1].get_weights()
    history = model.fit(x, np.arange(16) % 2, epochs=2, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert all(np.array_equal(a, b) for a, b in zip(before, base.get_weights(), strict=True))  # BN stats too
    assert not np.array_equal(head[0], model.layers[-1].get_weights()[0])
    base.trainable = True  # Keras: unfreezing the base (fine-tuning) trains it on the next fit
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, np.arange(16) % 2, epochs=1, batch_size=4, verbose=0)
    assert not np.array_equal(before[0], base.get_weights()[0])


def test_nested_models_save_and_load_with_their_freeze_flags(tmp_path) -> None:
    base = _conv_base()
    base.layers[0].trainable = False  # one frozen layer inside a trainable base: flags are per layer
    model = keras.Sequential([base, layers.Flatten(), layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(1).random((4, 8, 8, 3), dtype=np.float32)
    model.fit(x, np.arange(4) % 2, verbose=0)
    model.save(tmp_path / "nested.keras")
    loaded = keras.models.load_model(tmp_path / "nested.keras")
    assert type(loaded.layers[0]) is keras.Sequential and loaded.layers[0].name == "conv_base"
    assert [layer.trainable for layer in loaded.layers[0].layers] == [False, True, True]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ConfigError, match="cannot be added to itself"):
        model.add(model)


def test_an_application_nests_like_kerass_mobilenetv2(one_thread, tmp_path) -> None:
    """MobileNetV2 without its top at 96x96 (random weights): Keras' name, row, counts and weight shapes."""
    conv_base = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(96, 96, 3))
    conv_base.trainable = False
    model = keras.Sequential([conv_base, layers.GlobalAveragePooling2D(), layers.Dense(1, activation="sigmoid")])
    _check("mobilenet", model)
    shapes = np.load(FIXTURE)["mobilenet_weight_shapes"].tolist()
    assert [str(tuple(w.shape)) for w in conv_base.weights] == shapes  # Keras' order and layouts
    model.save(tmp_path / "transfer.keras")
    loaded = keras.models.load_model(tmp_path / "transfer.keras")  # the zoo file is not needed to load it
    x = np.random.default_rng(2).random((1, 96, 96, 3), dtype=np.float32) * 255
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert not loaded.layers[0].trainable and torch.equal(loaded.layers[0].std, conv_base.std)
