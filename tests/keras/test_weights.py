"""Weighted losses (``sample_weight``, ``class_weight``) against REAL Keras' numbers
(``fixtures/keras_sample_weight.npz``, benchmarks/keras_reference.py fixture (i)), and the optimizer state that
``model.save`` keeps: a loaded model trains on exactly as the saved one would, as in Keras."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.core.errors import ConfigError
from cnnlab.keras import layers, mixed_precision, optimizers
from cnnlab.keras.models import Sequential, load_model

FIXTURE = Path(__file__).parent / "fixtures" / "keras_sample_weight.npz"


@pytest.fixture(autouse=True)
def float32_policy():
    """Keras computes in float32; so does the drop-in under Keras' own policy name."""
    before = mixed_precision.global_policy().name
    mixed_precision.set_global_policy("float32")
    yield
    mixed_precision.set_global_policy(before)


def _dense(keras: np.lib.npyio.NpzFile, kind: str) -> Sequential:
    units, activation, loss = (1, "sigmoid", "binary_crossentropy") if kind == "binary" else (3, "softmax", None)
    model = Sequential([layers.Input(shape=(4,)), layers.Dense(units, activation=activation)])
    model.set_weights([keras[f"{kind}_w0"], keras[f"{kind}_b0"]])
    model.compile(
        optimizer=optimizers.SGD(learning_rate=0.1), loss=loss or "categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def _assert_weights(model: Sequential, keras: np.lib.npyio.NpzFile, kind: str) -> None:
    for ours, theirs in zip(model.get_weights(), (keras[f"{kind}_w1"], keras[f"{kind}_b1"]), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_class_weight_multiplies_each_samples_loss_as_keras_does() -> None:
    """Keras: loss = sum(class_weight[y_i] * loss_i) / batch_size (not / the sum of the weights)."""
    keras = np.load(FIXTURE)
    model = _dense(keras, "binary")
    x, y = keras["x"], keras["y_binary"]
    assert model.evaluate(x, y, verbose=0)[0] == pytest.approx(float(keras["binary_loss_before"]), rel=1e-6)
    history = model.fit(x, y, class_weight={0: 1.0, 1: 5.0}, batch_size=5, shuffle=False, verbose=0)
    assert history.history["loss"][0] == pytest.approx(float(keras["binary_class_weight_history_loss"]), rel=1e-5)
    assert history.history["accuracy"][0] == pytest.approx(float(keras["binary_class_weight_history_accuracy"]))
    _assert_weights(model, keras, "binary")  # the gradient steps were weighted the same way


def test_sample_weight_in_evaluate_and_in_fit_with_validation_split_as_keras_does() -> None:
    keras = np.load(FIXTURE)
    model = _dense(keras, "categorical")
    x, w = keras["x"], keras["sample_weight"]
    y = np.eye(3, dtype=np.float32)[keras["y_class"]]
    loss, accuracy = model.evaluate(x, y, sample_weight=w, batch_size=5, verbose=0)
    assert loss == pytest.approx(float(keras["categorical_evaluate_weighted_loss"]), rel=1e-5)
    assert accuracy == pytest.approx(float(keras["categorical_evaluate_accuracy"]))  # metrics stay unweighted
    assert model.evaluate(x, y, batch_size=5, verbose=0)[0] == pytest.approx(
        float(keras["categorical_evaluate_loss"]), rel=1e-5
    )
    history = model.fit(x, y, sample_weight=w, validation_split=0.25, batch_size=4, shuffle=False, verbose=0)
    for key, values in history.history.items():  # val_loss: the held-out quarter keeps its weights
        assert values[0] == pytest.approx(float(keras[f"categorical_sample_weight_history_{key}"]), rel=1e-5), key
    _assert_weights(model, keras, "categorical")


def test_weights_from_generators_and_validation_tuples_and_keras_errors() -> None:
    keras = np.load(FIXTURE)
    model = _dense(keras, "categorical")
    x, w = keras["x"], keras["sample_weight"]
    y = np.eye(3, dtype=np.float32)[keras["y_class"]]
    weighted = model.evaluate(x, y, sample_weight=w, verbose=0)[0]
    assert model.evaluate(iter([(x, y, w)]), steps=1, verbose=0)[0] == pytest.approx(weighted, rel=1e-6)
    history = model.fit(x, y, epochs=1, validation_data=(x, y, w), verbose=0, shuffle=False)
    assert history.history["val_loss"][0] == pytest.approx(model.evaluate(x, y, sample_weight=w, verbose=0)[0])
    # class_weight: a class missing from the dict weighs 1.0 (Keras' class_weight_to_sample_weights)
    half = model.evaluate(x, y, sample_weight=np.where(keras["y_class"] == 0, 0.5, 1.0), batch_size=12, verbose=0)[0]
    probe = Sequential([layers.Input(shape=(4,)), layers.Dense(3, activation="softmax")])
    probe.set_weights(model.get_weights())
    probe.compile(optimizer=optimizers.SGD(learning_rate=1e-30), loss="categorical_crossentropy")
    first = probe.fit(x, y, class_weight={0: 0.5}, batch_size=12, shuffle=False, verbose=0).history["loss"][0]
    assert first == pytest.approx(half, rel=1e-6)
    batches = probe.fit(iter([(x, y)]), steps_per_epoch=1, class_weight={0: 0.5}, verbose=0)  # a generator, too
    assert batches.history["loss"][0] == pytest.approx(half, rel=1e-6)
    with pytest.raises(ConfigError, match="You cannot `class_weight` and `sample_weight` at the same time"):
        model.fit(x, y, class_weight={0: 1.0}, sample_weight=w, verbose=0)
    with pytest.raises(ConfigError, match="sample_weight is for arrays"):
        model.evaluate(iter([(x, y)]), steps=1, sample_weight=w, verbose=0)
    with pytest.raises(ConfigError, match="one number per sample"):
        model.fit(x, y, sample_weight=np.ones((12, 3)), verbose=0)


def _convnet() -> Sequential:
    torch.manual_seed(0)
    model = Sequential(
        [
            layers.Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1)),
            layers.BatchNormalization(),
            layers.Flatten(),
            layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy")
    return model


def test_a_loaded_model_trains_on_with_the_saved_adam_moments(tmp_path) -> None:
    """Keras saves the optimizer's variables with the model: 1 epoch, save, load, 1 epoch == 2 epochs."""
    rng = np.random.default_rng(0)
    x, y = rng.random((40, 8, 8, 1), dtype=np.float32), np.arange(40) % 3
    straight = _convnet()
    straight.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    halfway = _convnet()
    halfway.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    halfway.save(tmp_path / "halfway.keras")
    resumed = load_model(tmp_path / "halfway.keras")
    resumed.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    for ours, theirs in zip(resumed.get_weights(), straight.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    state = resumed.optimizer.built_optimizer.state_dict()["state"]
    assert int(state[0]["step"]) == 10  # 5 batches before the save, 5 after
    fresh = load_model(tmp_path / "halfway.keras")
    fresh.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy")  # new state
    fresh.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    assert not np.allclose(fresh.get_weights()[0], straight.get_weights()[0], atol=1e-4)  # so the state mattered
