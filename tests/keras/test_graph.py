"""Keras' graph handles: ``layer.output`` / ``layer.input``, ``model.input(s)`` / ``model.output(s)``, and
functional models with several outputs (``predict`` returns a list), the way course code builds
feature extractors from a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab import keras
from cnnlab.core.errors import ConfigError
from cnnlab.keras import layers
from cnnlab.sequential import Input as CnnlabInput
from cnnlab.sequential import Model as CnnlabModel


def convnet() -> keras.Sequential:
    model = keras.Sequential()
    model.add(layers.Conv2D(4, 3, activation="relu", input_shape=(12, 12, 1)))
    model.add(layers.MaxPooling2D())
    model.add(layers.Flatten())
    model.add(layers.Dense(3, activation="softmax"))
    return model


def two_heads() -> tuple[keras.Model, keras.Model, keras.Model]:
    inputs = keras.Input(shape=(6,))
    shared = layers.Dense(8, activation="relu")(inputs)
    a, b = layers.Dense(2)(shared), layers.Dense(3, activation="softmax")(shared)
    return keras.Model(inputs, [a, b]), keras.Model(inputs, a), keras.Model(inputs, b)


def test_a_model_over_a_trained_sequentials_layers_shares_its_weights() -> None:
    model = convnet()
    x = np.random.default_rng(0).random((5, 12, 12, 1), dtype=np.float32)
    model.compile("adam", "sparse_categorical_crossentropy")
    activation_model = keras.Model(inputs=model.input, outputs=[layer.output for layer in model.layers[:2]])
    model.fit(x, np.arange(5) % 3, epochs=1, verbose=0)  # trained after the activation model was made
    conv, pooled = activation_model.predict(x, verbose=0)
    assert conv.shape == (5, 10, 10, 4) and pooled.shape == (5, 5, 5, 4)
    with torch.no_grad():  # the layer by hand, channels-first, from the trained weights
        expected = torch.relu(model.layers[0].conv(torch.from_numpy(x).permute(0, 3, 1, 2))).permute(0, 2, 3, 1)
    np.testing.assert_allclose(conv, expected.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pooled, conv.reshape(5, 5, 2, 5, 2, 4).max(axis=(2, 4)), rtol=1e-6)


def test_a_sequential_built_by_fit_links_its_layers() -> None:
    model = keras.Sequential([layers.Dense(4, activation="relu"), layers.Dense(2)])
    with pytest.raises(ConfigError, match="has never been called"):
        _ = model.layers[0].output
    with pytest.raises(ConfigError, match="has no defined input or output yet"):
        _ = model.input
    model.compile("sgd", "mse")
    model.fit(np.zeros((4, 3), "float32"), np.zeros((4, 2), "float32"), verbose=0)
    assert model.layers[0].output.shape == (4,) and model.output.shape == (2,)
    assert model.layers[1].input is model.layers[0].output
    assert model.inputs == [model.input] and model.outputs == [model.output]


def test_several_outputs_predict_as_a_list_equal_to_each_heads_model(tmp_path: Path) -> None:
    both, first, second = two_heads()
    x = np.random.default_rng(1).random((7, 6), dtype=np.float32)
    a, b = both.predict(x, verbose=0)
    np.testing.assert_allclose(a, first.predict(x, verbose=0), rtol=1e-6)
    np.testing.assert_allclose(b, second.predict(x, verbose=0), rtol=1e-6)
    called = both(x)
    assert isinstance(called, list) and [o.shape for o in called] == [(7, 2), (7, 3)]
    assert len(both.outputs) == 2 and both.output == both.outputs
    both.save(tmp_path / "both.keras")
    loaded = keras.models.load_model(tmp_path / "both.keras")
    for got, expected in zip(loaded.predict(x, verbose=0), (a, b), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_several_outputs_refuse_training_and_nesting_with_what_to_do() -> None:
    both, _, _ = two_heads()
    with pytest.raises(ConfigError, match="one output; this one has 2"):
        both.compile("adam", "mse")
    with pytest.raises(ConfigError, match="cannot be a layer of another model"):
        both(keras.Input(shape=(6,)))


def test_cnnlabs_own_functional_model_returns_a_list_for_several_outputs() -> None:
    from cnnlab.layers import Conv2D, GlobalAveragePooling2D

    x = CnnlabInput((3, 8, 8))
    features = Conv2D(4, 3, padding="same")(x)
    model = CnnlabModel(x, [features, GlobalAveragePooling2D()(features)])
    maps, pooled = model(torch.randn(2, 3, 8, 8))
    torch.testing.assert_close(pooled, maps.mean(dim=(2, 3)))
    assert model.get_config()["outputs"] == [1, 2]


def vgg16() -> Any:
    return keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))


def test_vgg_inner_outputs_are_the_relu_after_each_convolution_and_the_pools() -> None:
    vgg = vgg16()
    names = ["block1_conv1", "block3_conv2", "block5_pool"]
    extractor = keras.Model([vgg.input], [vgg.get_layer(name).output for name in names])
    x = np.random.default_rng(2).random((2, 32, 32, 3), dtype=np.float32) * 255
    first, middle, last = extractor.predict(x, verbose=0)
    assert middle.shape == (2, 8, 8, 256)
    kernel, bias = vgg.get_layer("block1_conv1").get_weights()  # Keras' layouts: (3, 3, 3, 64), (64,)
    normalised = (torch.from_numpy(x).permute(0, 3, 1, 2) - vgg.mean) / vgg.std  # the application's own input step
    conv = F.conv2d(normalised, torch.from_numpy(kernel).permute(3, 2, 0, 1), torch.from_numpy(bias), padding=1)
    np.testing.assert_allclose(first, torch.relu(conv).permute(0, 2, 3, 1).numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(last, vgg.predict(x), rtol=1e-6)  # block5_pool is the base's output


def test_inner_outputs_share_one_pass_stop_early_and_pass_gradients_to_the_image() -> None:
    vgg = vgg16()
    calls: list[str] = []
    convs = [m for m in vgg.net.features if isinstance(m, torch.nn.Conv2d)]
    convs[0].register_forward_hook(lambda *_: calls.append("first"))
    convs[-1].register_forward_hook(lambda *_: calls.append("last"))
    extractor = keras.Model(vgg.input, [vgg.get_layer(n).output for n in ["block1_conv1", "block2_conv2"]])
    image = torch.rand(1, 3, 32, 32, requires_grad=True)
    calls.clear()
    features = extractor(image)
    assert calls == ["first"]  # one pass for both outputs, stopped after block2_conv2
    sum(f.square().mean() for f in features).backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert extractor.count_params() == sum(w.numel() for w in vgg.weights[:8])  # conv1_1 .. conv2_2, once each
    weights = extractor.get_weights()
    assert [w.shape for w in weights] == [tuple(w.shape) for w in vgg.weights[:8]]
    extractor.set_weights([np.zeros_like(w) for w in weights])
    assert not vgg.get_layer("block2_conv2").get_weights()[0].any()  # written through to the application


def test_a_head_on_the_base_output_trains_with_the_base_frozen() -> None:
    base = vgg16()
    base.trainable = False
    before = [w.copy() for w in base.get_weights()]
    pooled = layers.GlobalAveragePooling2D()(base.output)
    model = keras.Model(base.input, layers.Dense(2, activation="softmax")(pooled))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(np.random.default_rng(3).random((4, 32, 32, 3), dtype=np.float32), np.array([0, 1, 0, 1]), verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, base.get_weights(), strict=True))
    assert len(model.trainable_weights) == 2


def test_inner_outputs_of_other_nets_and_saving_them_are_refused_with_what_to_do(tmp_path: Path) -> None:
    mobilenet = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(96, 96, 3))
    with pytest.raises(ConfigError, match="kept for VGG16 and VGG19, not mobilenet_v2"):
        _ = mobilenet.get_layer("block_1_expand").output
    vgg = vgg16()
    with pytest.raises(ConfigError, match="did you mean 'block1_conv"):
        vgg.get_layer("block1_conv")
    extractor = keras.Model(vgg.input, vgg.get_layer("block1_conv1").output)
    with pytest.raises(ConfigError, match="cannot be saved"):
        extractor.save(tmp_path / "extractor.keras")
    assert not (tmp_path / "extractor.keras").exists()
