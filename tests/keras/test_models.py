"""cnnlab.keras.models: Keras' return types and conventions for compile / fit / evaluate / predict /
summary / save, checked against hand computations (losses from predictions, which samples Keras'
validation_split holds out), plus functional graphs, 1-D and 3-D models, generators and callbacks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import cnnlab.layers as channels_first_layers
from cnnlab.core.errors import ConfigError, DataError, RegistryError, ShapeError, WeightsError
from cnnlab.keras import callbacks, layers, losses, optimizers
from cnnlab.keras.models import History, Model, Sequential, load_model


def _convnet(classes: int = 3) -> Sequential:
    model = Sequential()
    model.add(layers.Conv2D(4, (3, 3), activation="relu", input_shape=(8, 8, 1)))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Flatten())
    model.add(layers.Dense(classes, activation="softmax"))
    return model


def _bars(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """NHWC 8x8 images with a horizontal (class 0) or vertical (class 1) bright bar, plus noise."""
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


def _residual() -> Model:
    inputs = layers.Input(shape=(8, 8, 1))
    x = layers.Conv2D(4, (3, 3), padding="same", activation="relu")(inputs)
    y = layers.BatchNormalization()(layers.Conv2D(4, (3, 3), padding="same")(x))
    x = layers.Activation("relu")(layers.Add()([x, y]))
    return Model(inputs, layers.Dense(2, activation="softmax")(layers.GlobalAveragePooling2D()(x)))


def test_summary_prints_keras_columns_shapes_and_totals() -> None:
    lines: list[str] = []
    model = Sequential(
        [
            layers.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
            layers.BatchNormalization(),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    for expected in ("Layer (type)", "Output Shape", "Param #", "conv2d (Conv2D)", "(None, 26, 26, 32)"):
        assert expected in text
    assert "(None, 5408)" in text and "batch_normalization (BatchNormalization)" in text
    total = 320 + 128 + 5408 * 10 + 10
    assert f"Total params: {total:,}" in text
    assert f"Trainable params: {total - 64:,}" in text and "Non-trainable params: 64 " in text
    model.trainable = False
    lines.clear()
    model.summary(print_fn=lines.append)
    assert "Trainable params: 0 " in "\n".join(lines)


def test_fit_returns_a_history_with_exactly_keras_keys_and_learns() -> None:
    x, y = _bars(96)
    model = _convnet(2)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=4, batch_size=16, validation_split=0.25, verbose=0)
    assert isinstance(history, History)
    assert list(history.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert history.epoch == [0, 1, 2, 3] and all(len(v) == 4 for v in history.history.values())
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert list(model.fit(x, y, verbose=0).history) == ["loss", "accuracy"]
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert list(model.fit(x, y, verbose=0, validation_data=(x[:8], y[:8])).history) == ["loss", "val_loss"]


def test_validation_split_holds_out_the_last_fraction_with_keras_rounding() -> None:
    """10 samples, validation_split=0.15: Keras trains on floor(10 * 0.85) = 8 and validates on the last 2."""
    seen: dict[bool, list[float]] = {True: [], False: []}

    def recording_loss(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        seen[torch.is_grad_enabled()].extend(y_true.flatten().tolist())  # no gradients: validation
        return (y_pred[:, 0] - y_true).square().mean()

    model = Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile(optimizer="sgd", loss=recording_loss)
    x, y = np.random.default_rng(0).normal(size=(10, 2)), np.arange(10, dtype=np.float32)
    model.fit(x, y, epochs=2, batch_size=3, validation_split=0.15, verbose=0)
    assert sorted(seen[True]) == sorted(list(range(8)) * 2)
    assert seen[False] == [8.0, 9.0, 8.0, 9.0]


def test_evaluate_returns_keras_types_and_the_loss_computed_from_predictions() -> None:
    x, y = _bars(20)
    one_hot = np.eye(2, dtype=np.float32)[y]
    model = _convnet(2)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    loss, accuracy = model.evaluate(x, one_hot, verbose=0)
    p = model.predict(x, verbose=0)
    assert loss == pytest.approx(-np.mean(np.log(np.clip(p[np.arange(20), y], 1e-7, 1))), rel=1e-5)
    assert accuracy == pytest.approx(np.mean(p.argmax(1) == y))
    assert model.evaluate(x, one_hot, verbose=0, return_dict=True) == {"loss": loss, "accuracy": accuracy}
    assert model.metrics_names == ["loss", "accuracy"]
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    assert isinstance(model.evaluate(x, one_hot, verbose=0), float)


def test_binary_crossentropy_takes_labels_as_n_or_n_by_1() -> None:
    x, y = _bars(24)
    model = Sequential([layers.Flatten(input_shape=(8, 8, 1)), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=1, verbose=0)
    p = model.predict(x, verbose=0)[:, 0].astype(np.float64)
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    for labels in (y, y[:, None]):
        loss, accuracy = model.evaluate(x, labels, verbose=0)
        assert loss == pytest.approx(expected, rel=1e-4)
        assert accuracy == pytest.approx(np.mean((p > 0.5) == y))


def test_save_and_load_model_predict_identically_and_keep_the_compile_settings(tmp_path) -> None:
    x, y = _bars(16)
    for model in (_convnet(2), _residual()):
        model.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=1, verbose=0)
        path = tmp_path / f"{type(model).__name__}.h5"  # the course's suffix; the file is cnnlab's safe format
        model.save(path)
        loaded = load_model(path)
        assert type(loaded) is type(model) and [la.name for la in loaded.layers] == [la.name for la in model.layers]
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
        assert loaded.optimizer.learning_rate == 0.01
        assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))
    (tmp_path / "not-cnnlab.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(32))
    with pytest.raises(WeightsError, match="written by Keras itself"):
        load_model(tmp_path / "not-cnnlab.h5")


def test_get_and_set_weights_copy_a_model() -> None:
    x, _ = _bars(4)
    a, b = _convnet(), _convnet()
    b.set_weights(a.get_weights())
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))
    with pytest.raises(ShapeError, match="has 4 weight arrays"):
        b.set_weights(a.get_weights()[:2])


def test_functional_residual_block_trains_and_summarises() -> None:
    x, y = _bars(32)
    model = _residual()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert math.isfinite(history.history["loss"][0])
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    assert lines[0] == 'Model: "functional"' and any(
        "add (Add)" in line and "(None, 8, 8, 4)" in line for line in lines
    )


@pytest.mark.parametrize(
    ("first", "shape"),
    [(layers.Conv1D(4, 5, activation="relu", input_shape=(100, 1)), (100, 1)), (None, (16, 16, 16, 1))],
    ids=["conv1d", "conv3d"],
)
def test_one_and_three_dimensional_models_fit_one_epoch(first, shape) -> None:
    if first is None:
        model = Sequential([layers.Conv3D(2, 3, activation="relu", input_shape=shape), layers.MaxPooling3D(2)])
        model.add(layers.GlobalAveragePooling3D())
    else:
        model = Sequential([first, layers.MaxPooling1D(2), layers.GlobalAveragePooling1D()])
    model.add(layers.Dense(2, activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).random((8, *shape), dtype=np.float32)
    history = model.fit(x, np.arange(8) % 2, epochs=1, batch_size=4, verbose=0)
    assert math.isfinite(history.history["loss"][0]) and model.predict(x, verbose=0).shape == (8, 2)


def test_fit_takes_generators_with_steps_per_epoch_and_keras_sequences() -> None:
    x, y = _bars(16)
    pulled = []

    def batches():
        while True:
            pulled.append(1)
            yield x[:8], y[:8]

    model = _convnet(2)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(batches(), steps_per_epoch=3, epochs=2, verbose=0)
    assert len(pulled) == 6

    class Batches:  # what keras.utils.Sequence and ImageDataGenerator.flow look like
        epochs_ended = 0

        def __len__(self) -> int:
            return 2

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            return x[8 * i : 8 * i + 8], y[8 * i : 8 * i + 8]

        def on_epoch_end(self) -> None:
            self.epochs_ended += 1

    sequence = Batches()
    history = model.fit(sequence, epochs=2, validation_data=sequence, verbose=0)
    assert sequence.epochs_ended >= 2 and list(history.history)[-1] == "val_accuracy"
    assert model.predict(Batches(), verbose=0).shape == (16, 2)
    with pytest.raises(ConfigError, match="steps_per_epoch"):
        model.fit(iter([(x, y)]), verbose=0)


def test_callbacks_see_keras_logs_and_control_the_learning_rate_and_stopping() -> None:
    x, y = _bars(16)
    model = _convnet(2)
    model.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss="sparse_categorical_crossentropy", metrics=["acc"])
    logs_seen: list[set[str]] = []
    history = model.fit(
        x,
        y,
        epochs=5,
        verbose=0,
        validation_split=0.25,
        callbacks=[
            callbacks.LearningRateScheduler(lambda epoch, lr: lr / 2),
            callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: logs_seen.append(set(logs))),
            callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: setattr(model, "stop_training", epoch == 1)),
        ],
    )
    assert history.epoch == [0, 1]  # stopped through model.stop_training
    # Keras 3.15's names: compiled with metrics=["acc"], it logs acc and val_acc (checked with real Keras)
    assert logs_seen[0] == {"loss", "acc", "val_loss", "val_acc", "learning_rate"}
    assert model.optimizer.learning_rate == pytest.approx(0.025)  # two halvings, in the live torch optimizer
    torch_lr = model.optimizer.build(model.parameters()).param_groups[0]["lr"]
    assert torch_lr == pytest.approx(0.025)


def test_keras_optimizer_and_loss_defaults_and_names() -> None:
    adam, rmsprop, sgd = optimizers.get("adam"), optimizers.get("rmsprop"), optimizers.get("sgd")
    assert (adam.learning_rate, adam.epsilon, rmsprop.rho, rmsprop.epsilon) == (0.001, 1e-7, 0.9, 1e-7)
    assert (sgd.learning_rate, sgd.momentum, optimizers.AdamW().weight_decay) == (0.01, 0.0, 0.004)
    with pytest.raises(RegistryError, match="did you mean 'adam'"):
        optimizers.get("adma")
    with pytest.raises(ConfigError, match="did you mean 'learning_rate'"):
        optimizers.Adam(lr=0.01)
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([2]))
    got = losses.SparseCategoricalCrossentropy(from_logits=True)(torch.tensor([2]), logits)
    torch.testing.assert_close(got, expected)


def test_mistakes_get_keras_worded_errors() -> None:
    x, y = _bars(8)
    model = _convnet(2)
    with pytest.raises(ConfigError, match="not compiled"):
        model.fit(x, y, verbose=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    with pytest.raises(DataError, match="to_categorical"):
        model.fit(x, y, verbose=0)  # integer labels with the one-hot loss
    with pytest.raises(ShapeError, match=r"\(None, 8, 8, 1\).*channels-last"):
        model.predict(np.moveaxis(x, -1, 1), verbose=0)  # NCHW data
    with pytest.raises(ConfigError, match="loss_weights is not supported"):
        model.compile(optimizer="adam", loss="mse", loss_weights=[1.0])
    with pytest.raises(ConfigError, match=r"cnnlab\.keras\.layers"):
        Sequential([channels_first_layers.Dense(2, input_shape=(3,))])


def test_on_batch_methods_and_get_layer_as_keras() -> None:
    """train_on_batch returns the batch's loss before the step (equal to evaluate then) and steps as fit does;
    Adam's state carries over between calls; test_on_batch and predict_on_batch are evaluate and predict."""
    x, y = _bars(16)

    def model() -> Sequential:
        torch.manual_seed(0)
        built = _convnet(2)
        built.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return built

    a, b = model(), model()
    before = a.evaluate(x, y, batch_size=16, verbose=0)
    assert a.train_on_batch(x, y) == pytest.approx(before, abs=1e-6)
    b.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, atol=1e-6)
    a.train_on_batch(x, y)
    b.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_allclose(a.get_weights()[0], b.get_weights()[0], atol=1e-6)  # the same Adam moments
    assert a.test_on_batch(x, y, return_dict=True) == a.evaluate(x, y, verbose=0, return_dict=True)
    np.testing.assert_array_equal(a.predict_on_batch(x), a.predict(x, verbose=0))
    assert a.get_layer("flatten") is a.layers[2] and a.get_layer(index=-1) is a.layers[-1]
    with pytest.raises(ConfigError, match="did you mean 'flatten'"):
        a.get_layer("flaten")


def test_accuracy_is_logged_as_compiled_acc_or_accuracy() -> None:
    """Real Keras 3.15: metrics=['acc'] gives history keys acc / val_acc (Chollet's `history.history['acc']`),
    metrics=['accuracy'] gives accuracy / val_accuracy; a monitor in either spelling finds it."""
    x, y = _bars(16)
    for spelling in ("acc", "accuracy"):
        model = _convnet(2)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=[spelling])
        stop = callbacks.EarlyStopping(monitor="val_accuracy", patience=5)
        history = model.fit(x, y, epochs=2, verbose=0, validation_split=0.25, callbacks=[stop])
        assert list(history.history) == ["loss", spelling, "val_loss", f"val_{spelling}"]
        assert model.metrics_names == ["loss", spelling]
        assert list(model.evaluate(x, y, verbose=0, return_dict=True)) == ["loss", spelling]
        assert stop.best is not None  # it saw the monitored value


def test_keras_2_generator_methods_and_float_steps_run_with_tensorflows_warning() -> None:
    """Course code from the Keras 2 days: fit_generator / evaluate_generator / predict_generator (TensorFlow's
    Keras warned, Keras 3 dropped them), steps_per_epoch=len(x) / 32 (a float), and predict_classes (removed in
    TF 2.6: an error naming what replaced it)."""
    from cnnlab.keras.preprocessing.image import ImageDataGenerator

    x, y = _bars(16)
    model = _convnet(2)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    flow = ImageDataGenerator().flow(x, y, batch_size=8, shuffle=False)
    with pytest.warns(DeprecationWarning, match=r"`Model.fit_generator` is deprecated.*use `Model.fit`"):
        history = model.fit_generator(flow, steps_per_epoch=len(x) / 8, epochs=1, verbose=0)
    assert history.params["steps"] == 2
    with pytest.warns(DeprecationWarning, match="evaluate_generator"):
        scores = model.evaluate_generator(flow, steps=2, verbose=0)
    assert scores == pytest.approx(model.evaluate(x, y, verbose=0), abs=1e-6)
    with pytest.warns(DeprecationWarning, match="predict_generator"):
        outputs = model.predict_generator(flow, steps=2, verbose=0)
    np.testing.assert_allclose(outputs, model.predict(x, verbose=0), atol=1e-6)
    with pytest.raises(ConfigError, match=r"predict_classes was removed.*np.argmax\(model.predict\(x\), axis=-1\)"):
        model.predict_classes(x)
