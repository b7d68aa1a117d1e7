"""ImageDataGenerator (flow, flow_from_directory), load_img, and the Random* preprocessing layers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.data.cache import DataWarning
from cnnlab.keras.preprocessing.image import ImageDataGenerator, img_to_array, load_img
from cnnlab.keras.preprocessing_layers import RandomFlip, RandomRotation, RandomZoom


def _folder(root: Path, counts: dict[str, int], size: tuple[int, int] = (10, 12)) -> Path:
    """``root/<class>/<i>.png``: image i of class c is a flat grey of value 10 * c_index + i."""
    for c, (name, count) in enumerate(counts.items()):
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", size, (10 * c + i,) * 3).save(root / name / f"{i}.png")
    return root


def test_flow_from_directory_has_keras_shapes_and_alphabetical_class_indices(tmp_path):
    root = _folder(tmp_path, {"dogs": 3, "cats": 2, "birds": 1})
    it = ImageDataGenerator().flow_from_directory(root, target_size=(8, 6), batch_size=4, shuffle=False)
    assert it.class_indices == {"birds": 0, "cats": 1, "dogs": 2}
    assert it.samples == 6 and len(it) == 2 and it.classes.tolist() == [0, 1, 1, 2, 2, 2]
    assert it.filenames[:2] == [str(Path("birds", "0.png")), str(Path("cats", "0.png"))]
    x, y = next(it)
    assert x.shape == (4, 8, 6, 3) and x.dtype == np.float32 and y.shape == (4, 3) and y.dtype == np.float32
    assert y.argmax(1).tolist() == [0, 1, 1, 2] and y.sum(1).tolist() == [1.0] * 4  # one-hot
    assert next(it)[0].shape == (2, 8, 6, 3)
    assert next(it)[0].shape == (4, 8, 6, 3)  # endless, as Keras: a new epoch starts
    assert it.image_shape == (8, 6, 3) and x.max() <= 255


@pytest.mark.parametrize(("mode", "shape"), [("binary", (3,)), ("sparse", (3,)), ("categorical", (3, 2))])
def test_flow_from_directory_label_shapes(tmp_path, mode, shape):
    root = _folder(tmp_path, {"a": 2, "b": 1})
    _, y = ImageDataGenerator().flow_from_directory(root, (4, 4), class_mode=mode, batch_size=8, shuffle=False)[0]
    assert y.shape == shape and y.dtype == np.float32
    if mode != "categorical":
        assert y.tolist() == [0.0, 0.0, 1.0]


def test_flow_from_directory_without_labels_grayscale_and_input_mode(tmp_path):
    root = _folder(tmp_path, {"a": 2, "b": 1})
    datagen = ImageDataGenerator(rescale=1 / 255)
    x = datagen.flow_from_directory(root, (4, 4), color_mode="grayscale", class_mode=None, batch_size=8)[0]
    assert isinstance(x, np.ndarray) and x.shape == (3, 4, 4, 1) and x.max() <= 1.0
    a, b = datagen.flow_from_directory(root, (4, 4), class_mode="input")[0]
    assert np.array_equal(a, b)


def test_binary_labels_need_two_classes(tmp_path):
    root = _folder(tmp_path, {"a": 1, "b": 1, "c": 1})
    with pytest.raises(DataError, match="binary labels need exactly 2 classes, found 3"):
        ImageDataGenerator().flow_from_directory(root, (4, 4), class_mode="binary")


def test_flow_from_directory_skips_unreadable_files_with_a_warning(tmp_path):
    root = _folder(tmp_path, {"a": 2, "b": 1})
    (root / "a" / "broken.png").write_bytes(b"")
    with pytest.warns(DataWarning, match="broken.png"):
        it = ImageDataGenerator().flow_from_directory(root, (4, 4))
    assert it.samples == 3


def test_validation_subsets_take_the_first_part_of_each_class(tmp_path):
    root = _folder(tmp_path, {"a": 4, "b": 2})
    datagen = ImageDataGenerator(validation_split=0.5)
    train = datagen.flow_from_directory(root, (4, 4), subset="training")
    val = datagen.flow_from_directory(root, (4, 4), subset="validation")
    assert val.filenames == [str(Path("a", "0.png")), str(Path("a", "1.png")), str(Path("b", "0.png"))]
    assert not set(train.filenames) & set(val.filenames) and train.samples + val.samples == 6
    with pytest.raises(ConfigError, match="needs a validation_split"):
        ImageDataGenerator().flow_from_directory(root, (4, 4), subset="training")


def test_flow_keeps_images_and_labels_together_through_shuffle_and_augmentation():
    x = np.arange(10, dtype=np.float32)[:, None, None, None] * np.ones((1, 6, 6, 3), np.float32)
    datagen = ImageDataGenerator(horizontal_flip=True, vertical_flip=True, rotation_range=30, fill_mode="nearest")
    it = datagen.flow(x, np.arange(10), batch_size=4, seed=3)
    for _ in range(len(it)):
        batch_x, batch_y = next(it)
        assert np.allclose(batch_x[:, 3, 3, 0], batch_y, atol=1e-4)  # flat images stay flat: value = label
    seen = sorted(int(v) for i in range(len(it)) for v in it[i][1])
    assert seen == list(range(10))


def test_flow_validation_subset_is_the_first_part_and_augmentation_is_seeded():
    x = np.random.default_rng(0).random((10, 8, 8, 1), dtype=np.float32) * 255
    datagen = ImageDataGenerator(rotation_range=40, zoom_range=0.2, validation_split=0.3)
    val = datagen.flow(x, np.arange(10), shuffle=False, subset="validation")
    assert val[0][1].tolist() == [0, 1, 2]
    a = datagen.flow(x, seed=1, subset="training")[0]
    b = datagen.flow(x, seed=1, subset="training")[0]
    assert a.shape == (7, 8, 8, 1) and np.array_equal(a, b) and not np.allclose(np.sort(a, axis=0), np.sort(x[3:], 0))


def test_standardize_follows_keras_order():
    x = np.full((2, 2, 2, 1), 10.0, np.float32)
    datagen = ImageDataGenerator(preprocessing_function=lambda image: image + 245, rescale=1 / 255)
    assert np.allclose(datagen.flow(x, shuffle=False)[0], 1.0)  # (10 + 245) / 255: the function runs first
    rng = np.random.default_rng(1)
    data = rng.random((20, 4, 4, 3), dtype=np.float32) * [1, 10, 100]
    featurewise = ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True)
    featurewise.fit(data)
    out = featurewise.flow(data, batch_size=20, shuffle=False)[0]
    assert np.allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-4) and np.allclose(out.std(axis=(0, 1, 2)), 1, atol=1e-3)
    samplewise = ImageDataGenerator(samplewise_center=True, samplewise_std_normalization=True)
    out = samplewise.flow(data, batch_size=20, shuffle=False)[0]
    assert np.allclose(out.mean(axis=(1, 2, 3)), 0, atol=1e-4)
    with pytest.warns(UserWarning, match="hasn't been fit on any training data"):
        ImageDataGenerator(featurewise_center=True).flow(data)[0]


def test_unsupported_arguments_are_named():
    with pytest.raises(ConfigError, match="zca_whitening=True is not supported"):
        ImageDataGenerator(zca_whitening=True)
    with pytest.raises(ConfigError, match="unknown argument 'rotation'"):
        ImageDataGenerator(rotation=10)
    with pytest.raises(ConfigError, match="fill_mode 'wrap' is not supported"):
        ImageDataGenerator(fill_mode="wrap")
    ImageDataGenerator(zca_whitening=False, cval=0.0)  # Keras defaults pass


def test_load_img_and_img_to_array(tmp_path):
    Image.new("L", (6, 4), 7).save(tmp_path / "g.png")
    gray = img_to_array(load_img(tmp_path / "g.png", color_mode="grayscale"))
    rgb = img_to_array(load_img(tmp_path / "g.png", target_size=(2, 3)))
    assert gray.shape == (4, 6, 1) and rgb.shape == (2, 3, 3) and rgb.dtype == np.float32 and rgb.max() == 7


def _dot_batch() -> torch.Tensor:
    x = torch.zeros(4, 1, 5, 5)
    x[:, 0, 2, 4] = 1.0  # a dot right of centre
    return x


def test_preprocessing_layers_are_the_identity_in_eval_mode():
    x = _dot_batch()
    for layer in (RandomFlip(), RandomRotation(0.2), RandomZoom(0.3)):
        assert torch.equal(layer.eval()(x), x)
        assert layer.train()(x).shape == x.shape


def test_random_rotation_and_flip_move_pixels_in_training():
    x = _dot_batch()
    turned = RandomRotation((0.25, 0.25), fill_mode="constant").train()(x)  # a quarter turn, counter-clockwise
    assert [tuple(turned[i, 0].nonzero()[0].tolist()) for i in range(4)] == [(0, 2)] * 4
    flipped = RandomFlip("horizontal", seed=0).train()(x)
    assert {tuple(flipped[i, 0].nonzero()[0].tolist()) for i in range(4)} <= {(2, 4), (2, 0)}
    assert RandomFlip("vertical", seed=1).train()(x)[:, 0, :, 4].sum() == 4  # only rows move


def test_random_zoom_out_shrinks_content_and_seeds_repeat():
    x = torch.ones(2, 3, 8, 8)
    out = RandomZoom((0.5, 0.5), fill_mode="constant").train()(x)  # content scaled to 1 / 1.5
    assert out[:, :, 0, 0].eq(0).all() and out[:, :, 4, 4].eq(1).all()
    a = RandomZoom(0.3, seed=5).train()(torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    b = RandomZoom(0.3, seed=5).train()(torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(a, b)


def test_preprocessing_layers_rebuild_from_their_config():
    from cnnlab.keras import layers

    layer = layers.RandomRotation(0.1, input_shape=(32, 24, 3))  # Keras' channels-last shape
    again = layers.layer_from_config(layer.get_config())
    assert isinstance(again, layers.RandomRotation) and again.input_shape == (3, 32, 24)
    assert again.factor == 0.1 and again.fill_mode == "reflect"
    assert RandomZoom(0.2, None, "nearest", "bilinear", 3).seed == 3  # Keras' positional order
    with pytest.raises(ConfigError, match="fill_mode='wrap' is not supported"):
        RandomZoom(0.1, fill_mode="wrap")
