"""keras.initializers: the distributions Keras defines (limits, variances, the cut at two standard deviations),
seeded initializers repeat their values, objects work as ``kernel_initializer`` and survive save/load, and
the course's ResNet-50 notebook code (``glorot_uniform(seed=0)``, ``BatchNormalization(axis=3)``) builds with
the parameter count the notebook prints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cnnlab.core.errors import ConfigError, ShapeError
from cnnlab.keras import initializers, layers
from cnnlab.keras.models import Model, Sequential, load_model

SHAPE = (3, 3, 64, 128)  # fan_in 576, fan_out 1152
FAN_IN, FAN_OUT = 576, 1152


@pytest.mark.parametrize(
    ("init", "std"),
    [
        (initializers.GlorotUniform(), math.sqrt(2 / (FAN_IN + FAN_OUT))),
        (initializers.GlorotNormal(), math.sqrt(2 / (FAN_IN + FAN_OUT))),
        (initializers.HeNormal(), math.sqrt(2 / FAN_IN)),
        (initializers.HeUniform(), math.sqrt(2 / FAN_IN)),
        (initializers.LecunNormal(), math.sqrt(1 / FAN_IN)),
        (initializers.RandomNormal(stddev=0.05), 0.05),
        (initializers.RandomUniform(), 0.05 / math.sqrt(3)),
    ],
    ids=repr,
)
def test_each_distribution_has_the_variance_keras_defines(init: initializers.Initializer, std: float) -> None:
    torch.manual_seed(0)
    values = init(SHAPE)
    assert values.shape == SHAPE and values.dtype == torch.float32
    assert float(values.mean()) == pytest.approx(0.0, abs=std * 0.02)
    assert float(values.std()) == pytest.approx(std, rel=0.02)


def test_truncated_normals_are_cut_at_two_standard_deviations_of_the_asked_std() -> None:
    values = initializers.TruncatedNormal(mean=1.0, stddev=0.1, seed=3)((200_000,))
    assert float(values.min()) >= 0.8 and float(values.max()) <= 1.2
    std = math.sqrt(2 / FAN_IN) / initializers.TRUNCATED_STD  # He normal: the untruncated std, cut at 2 of it
    he = initializers.HeNormal(seed=0)(SHAPE)
    assert float(he.abs().max()) <= 2 * std + 1e-6


@pytest.mark.parametrize("name", ["he_normal", "glorot_normal", "HeNormal"])
@pytest.mark.parametrize("layer", ["Conv2D", "Dense"])
def test_a_normal_initializer_by_name_draws_keras_truncated_normal(name: str, layer: str) -> None:
    """By name as by object: Keras 3.15 drew std 0.0834, |w| <= 0.1894 for Conv2D(64, 3, 'he_normal') on 32
    channels (cut at 2 untruncated std); torch's kaiming_normal_ has the same std but tails to ~4 std."""
    fan_in, fan_out, shape = (9 * 32, 9 * 64, (28, 28, 32)) if layer == "Conv2D" else (288, 64, (288,))
    make = (
        layers.Conv2D(64, 3, kernel_initializer=name)
        if layer == "Conv2D"
        else layers.Dense(64, kernel_initializer=name)
    )
    torch.manual_seed(0)
    kernel = Sequential([layers.Input(shape), make]).layers[0].get_weights()[0]
    std = math.sqrt(2 / fan_in) if name.lower().startswith("he") else math.sqrt(2 / (fan_in + fan_out))
    assert float(kernel.std()) == pytest.approx(std, rel=0.04)
    assert float(np.abs(kernel).max()) <= 2 * std / initializers.TRUNCATED_STD + 1e-6


def test_seeds_repeat_and_constants_identity_orthogonal() -> None:
    a, b = initializers.glorot_uniform(seed=0)(SHAPE), initializers.glorot_uniform(seed=0)(SHAPE)
    assert torch.equal(a, b) and not torch.equal(a, initializers.glorot_uniform(seed=1)(SHAPE))
    assert torch.equal(initializers.constant(0.5)((2, 3)), torch.full((2, 3), 0.5))
    assert torch.equal(initializers.identity(2.0)((3, 3)), 2 * torch.eye(3))
    q = initializers.Orthogonal(seed=0)((6, 4)).numpy()
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-5)


def test_names_objects_and_saved_forms_give_the_same_initializer() -> None:
    assert type(initializers.get("glorot_uniform")) is type(initializers.get("GlorotUniform"))
    saved = initializers.serialize(initializers.RandomNormal(stddev=0.01, seed=7))
    assert saved == {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 0.01, "seed": 7}}
    assert torch.equal(initializers.get(saved)((4,)), initializers.RandomNormal(stddev=0.01, seed=7)((4,)))
    with pytest.raises(ConfigError, match="did you mean 'glorot_uniform'"):
        initializers.get("glorot_unifrom")


def test_an_initializer_object_sets_the_kernel_and_survives_save_and_load(tmp_path) -> None:
    def model() -> Sequential:
        return Sequential(
            [
                layers.Conv2D(4, 3, input_shape=(8, 8, 1), kernel_initializer=initializers.glorot_uniform(seed=0)),
                layers.Flatten(),
                layers.Dense(2, kernel_initializer="random_normal"),
            ]
        )

    first, second = model(), model()
    kernel = first.layers[0].get_weights()[0]
    np.testing.assert_array_equal(kernel, second.layers[0].get_weights()[0])  # the seed, not the global RNG
    np.testing.assert_array_equal(kernel, initializers.glorot_uniform(seed=0)(kernel.shape).numpy())
    assert not first.layers[0].get_weights()[1].any()  # the bias stays zero
    assert first.layers[2].get_weights()[0].std() == pytest.approx(0.05, rel=0.3)
    first.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    first.save(tmp_path / "m.cnnlab")
    loaded = load_model(tmp_path / "m.cnnlab")
    x = np.random.default_rng(0).random((2, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), first.predict(x, verbose=0), atol=1e-6)


def _identity_block(x, f: int, filters: list[int], stage: int, block: str):
    """The course's ResNet identity block, as the notebook writes it."""
    conv_name_base, bn_name_base = f"res{stage}{block}_branch", f"bn{stage}{block}_branch"
    f1, f2, f3 = filters
    shortcut = x
    x = layers.Conv2D(f1, (1, 1), strides=(1, 1), padding="valid", name=conv_name_base + "2a",
                      kernel_initializer=initializers.glorot_uniform(seed=0))(x)  # fmt: skip
    x = layers.BatchNormalization(axis=3, name=bn_name_base + "2a")(x)
    x = layers.Activation("relu")(x)
    x = layers.Conv2D(f2, (f, f), strides=(1, 1), padding="same", name=conv_name_base + "2b",
                      kernel_initializer=initializers.glorot_uniform(seed=0))(x)  # fmt: skip
    x = layers.BatchNormalization(axis=3, name=bn_name_base + "2b")(x)
    x = layers.Activation("relu")(x)
    x = layers.Conv2D(f3, (1, 1), strides=(1, 1), padding="valid", name=conv_name_base + "2c",
                      kernel_initializer=initializers.glorot_uniform(seed=0))(x)  # fmt: skip
    x = layers.BatchNormalization(axis=3, name=bn_name_base + "2c")(x)
    return layers.Activation("relu")(layers.Add()([x, shortcut]))


def _convolutional_block(x, f: int, filters: list[int], stage: int, block: str, s: int = 2):
    conv_name_base, bn_name_base = f"res{stage}{block}_branch", f"bn{stage}{block}_branch"
    f1, f2, f3 = filters
    glorot = initializers.glorot_uniform
    shortcut = x
    x = layers.Conv2D(f1, (1, 1), strides=(s, s), name=conv_name_base + "2a", kernel_initializer=glorot(seed=0))(x)
    x = layers.Activation("relu")(layers.BatchNormalization(axis=3, name=bn_name_base + "2a")(x))
    x = layers.Conv2D(f2, (f, f), padding="same", name=conv_name_base + "2b", kernel_initializer=glorot(seed=0))(x)
    x = layers.Activation("relu")(layers.BatchNormalization(axis=3, name=bn_name_base + "2b")(x))
    x = layers.Conv2D(f3, (1, 1), name=conv_name_base + "2c", kernel_initializer=glorot(seed=0))(x)
    x = layers.BatchNormalization(axis=3, name=bn_name_base + "2c")(x)
    shortcut = layers.Conv2D(f3, (1, 1), strides=(s, s), name=conv_name_base + "1",
                             kernel_initializer=glorot(seed=0))(shortcut)  # fmt: skip
    shortcut = layers.BatchNormalization(axis=3, name=bn_name_base + "1")(shortcut)
    return layers.Activation("relu")(layers.Add()([x, shortcut]))


def test_the_course_resnet50_builds_with_the_notebooks_parameter_count() -> None:
    """Course 4 week 2's ResNet50(input_shape=(64, 64, 3), classes=6): the notebook prints 23,600,006."""
    x_input = layers.Input((64, 64, 3))
    x = layers.ZeroPadding2D((3, 3))(x_input)
    x = layers.Conv2D(64, (7, 7), strides=(2, 2), name="conv1", kernel_initializer=initializers.glorot_uniform(0))(x)
    x = layers.Activation("relu")(layers.BatchNormalization(axis=3, name="bn_conv1")(x))
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    stages = [([64, 64, 256], "bc", 1), ([128, 128, 512], "bcd", 2), ([256, 256, 1024], "bcdef", 2)]
    stages.append(([512, 512, 2048], "bc", 2))
    for stage, (filters, blocks, stride) in enumerate(stages, start=2):
        x = _convolutional_block(x, 3, filters, stage, "a", s=stride)
        for block in blocks:
            x = _identity_block(x, 3, filters, stage, block)
    x = layers.Flatten()(layers.AveragePooling2D((2, 2), name="avg_pool")(x))
    x = layers.Dense(6, activation="softmax", name="fc6", kernel_initializer=initializers.glorot_uniform(seed=0))(x)
    model = Model(inputs=x_input, outputs=x, name="ResNet50")
    assert model.count_params() == 23_600_006
    assert sum(w.numel() for w in model.non_trainable_weights) == 53_120  # the notebook's non-trainable params
    assert model.predict(np.zeros((1, 64, 64, 3), np.float32), verbose=0).shape == (1, 6)


def test_batch_normalization_axis_must_be_the_channel_axis() -> None:
    assert layers.BatchNormalization(axis=3).build((8, 5, 5)) == (8, 5, 5)  # axis 3 of (N, H, W, C)
    assert layers.BatchNormalization(axis=1).build((10,)) == (10,)  # after a Dense
    with pytest.raises(ShapeError, match=r"axis=1 of inputs with 4 axes .* not their last.*use axis=-1 \(or 3"):
        layers.BatchNormalization(axis=1).build((8, 5, 5))
    with pytest.raises(ConfigError, match="0 is the batch axis"):
        layers.BatchNormalization(axis=0)
