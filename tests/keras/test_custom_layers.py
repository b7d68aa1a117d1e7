"""Your own layers (``keras.layers.Layer`` subclasses, Keras' ``build`` / ``call`` / ``get_config`` pattern)
in models that train, save and load with ``custom_objects``, following Keras 3's documented semantics: a saved
custom class is found in ``custom_objects`` or among classes registered with
``keras.saving.register_keras_serializable``, else loading fails naming the class; a layer without
``get_config`` whose constructor takes plain values still round-trips (Keras 3 records the arguments; checked
with Keras 3.15.1: such a layer saves and loads with ``custom_objects``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnlab import keras
from cnnlab.core.errors import ConfigError
from cnnlab.keras import layers


class Scale(layers.Layer):
    """The Keras docs' pattern: arguments in __init__, weights in build, get_config adds the arguments."""

    def __init__(self, factor: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.seen_shape = tuple(input_shape)
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")
        self.offset = self.add_weight(shape=(1,), initializer="zeros", trainable=False, name="offset")
        super().build(input_shape)

    def call(self, inputs):
        return inputs * self.w * self.factor + self.offset

    def get_config(self):
        config = super().get_config()
        config.update({"factor": self.factor})
        return config


class ShiftedScale(Scale):
    """A subclass whose build calls the parent's build through super(), as Keras code does."""

    def build(self, input_shape):
        super().build(input_shape)
        self.shift = self.add_weight(shape=(), initializer="zeros", name="shift")

    def call(self, inputs):
        return super().call(inputs) + self.shift


class ChannelMean(layers.Layer):
    """No get_config, no build: Keras 3 records the constructor's plain arguments."""

    def __init__(self, keepdims: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.keepdims = keepdims

    def call(self, inputs):
        return inputs.mean(dim=-1, keepdim=self.keepdims)  # channels-last, as in Keras: -1 is the channel axis


def _model() -> keras.Sequential:
    return keras.Sequential(
        [
            keras.Input(shape=(4, 4, 3)),
            Scale(3.0),
            ShiftedScale(0.5, name="shifted"),
            ChannelMean(),
            layers.Flatten(),
            layers.Dense(2),
        ]
    )


def test_custom_layers_build_with_kerass_shapes_and_see_channels_last_tensors() -> None:
    model = _model()
    scale, shifted, mean = model.layers[:3]
    assert scale.seen_shape == (None, 4, 4, 3) and scale.name == "scale" and mean.name == "channel_mean"
    x = np.random.default_rng(0).random((2, 4, 4, 3), dtype=np.float32)
    assert model.layers[2].output_shape == (1, 4, 4)  # (H, W, 1) channels-last: the mean over the channels
    shifted.set_weights([np.array([1.0, 2.0, 3.0], np.float32), np.zeros(1, np.float32), np.float32(0.5)])
    head = keras.Sequential([keras.Input(shape=(4, 4, 3)), scale, shifted, mean])
    expected = (x * 3.0 * np.array([1.0, 2.0, 3.0]) * 0.5 + 0.5).mean(axis=-1, keepdims=True)
    np.testing.assert_allclose(head.predict(x, verbose=0), expected, rtol=1e-6)
    assert [w.shape for w in model.get_weights()][:5] == [(3,), (1,), (3,), (1,), ()]
    assert model.count_params() == 3 + 1 + 3 + 1 + 1 + 16 * 2 + 2
    assert sum(w.numel() for w in model.non_trainable_weights) == 2  # the two offsets


def test_custom_layers_train_and_frozen_weights_stay(one_thread) -> None:
    model = _model()
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(1).random((8, 4, 4, 3), dtype=np.float32)
    model.fit(x, np.ones((8, 2), np.float32), epochs=2, batch_size=4, verbose=0)
    scale = model.layers[0]
    assert not torch.equal(scale.w.detach(), torch.ones(3)) and float(scale.offset) == 0.0
    scale.trainable = False
    assert not scale.w.requires_grad and len(scale.trainable_weights) == 0


def test_load_model_names_the_missing_class_and_rebuilds_it_from_custom_objects(tmp_path) -> None:
    model = _model()
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(2).random((4, 4, 4, 3), dtype=np.float32)
    model.fit(x, np.zeros((4, 2), np.float32), verbose=0)
    model.save(tmp_path / "custom.keras")
    with pytest.raises(ConfigError, match=r"custom class 'Scale'.*custom_objects=\{'Scale': Scale\}"):
        keras.models.load_model(tmp_path / "custom.keras")
    with pytest.raises(ConfigError, match="custom class 'ShiftedScale'"):
        keras.models.load_model(tmp_path / "custom.keras", custom_objects={"Scale": Scale})
    objects = {"Scale": Scale, "ShiftedScale": ShiftedScale, "ChannelMean": ChannelMean}
    loaded = keras.saving.load_model(tmp_path / "custom.keras", custom_objects=objects)
    assert [type(layer) for layer in loaded.layers[:3]] == [Scale, ShiftedScale, ChannelMean]
    assert loaded.layers[0].factor == 3.0 and loaded.layers[1].name == "shifted" and loaded.layers[2].keepdims
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.optimizer is not None  # compiled again, with its optimizer state


def test_registered_classes_load_without_custom_objects(tmp_path) -> None:
    @keras.saving.register_keras_serializable(package="cnnlab_tests")
    class Doubler(layers.Layer):
        def call(self, inputs):
            return inputs * 2

    model = keras.Sequential([keras.Input(shape=(3,)), Doubler(), layers.Dense(1)])
    model.save(tmp_path / "registered.keras")
    loaded = keras.models.load_model(tmp_path / "registered.keras")
    assert type(loaded.layers[0]) is Doubler
    assert keras.saving.get_registered_name(Doubler) == "cnnlab_tests>Doubler"


def test_keras_errors_for_custom_layers() -> None:
    with pytest.raises(ConfigError, match=r"Unrecognized keyword arguments passed to Scale: \{'colour': 'red'\}"):
        Scale(colour="red")

    class Unsaveable(layers.Layer):
        def __init__(self, table, **kwargs):
            super().__init__(**kwargs)
            self.table = table

        def call(self, inputs):
            return inputs

    with pytest.raises(ConfigError, match="get_config\\(\\) cannot be made from its constructor arguments"):
        Unsaveable(torch.zeros(2)).get_config()
