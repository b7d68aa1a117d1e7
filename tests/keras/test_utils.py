"""keras.utils: to_categorical against real Keras, image_dataset_from_directory, set_random_seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.keras.utils import image_dataset_from_directory, set_random_seed, to_categorical

FIXTURES = Path(__file__).parent / "fixtures"


def test_to_categorical_equals_real_keras():
    reference = np.load(FIXTURES / "keras_to_categorical.npz")
    out = to_categorical(reference["labels"], int(reference["num_classes"]))
    assert out.dtype == reference["y"].dtype and np.array_equal(out, reference["y"])


def test_to_categorical_keras_documented_example_and_shapes():
    assert np.array_equal(to_categorical([0, 1, 2, 3], num_classes=4), np.eye(4))
    assert to_categorical(np.array([[1], [2]])).shape == (2, 3)  # a trailing axis of 1 is dropped
    assert to_categorical(np.zeros((2, 5), int), 3).shape == (2, 5, 3)
    with pytest.raises(DataError, match="label 4 is out of range for num_classes=3"):
        to_categorical([0, 4], 3)
    with pytest.raises(DataError, match="must be >= 0"):
        to_categorical([-1, 0])


def _folder(root: Path, counts: dict[str, int]) -> Path:
    for c, (name, count) in enumerate(counts.items()):
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (7, 5), (40 * c + i, 0, 0)).save(root / name / f"{i}.png")
    return root


def test_image_dataset_from_directory_batches_like_keras(tmp_path, capsys):
    root = _folder(tmp_path, {"dog": 3, "cat": 2})
    data = image_dataset_from_directory(root, image_size=(6, 4), batch_size=2, shuffle=False)
    assert capsys.readouterr().out == "Found 5 files belonging to 2 classes.\n"
    batches = list(data)
    assert data.class_names == ["cat", "dog"] and len(data) == len(batches) == 3
    x, y = batches[0]
    assert x.shape == (2, 6, 4, 3) and x.dtype == np.float32 and y.dtype == np.int32
    assert np.concatenate([b[1] for b in batches]).tolist() == [0, 0, 1, 1, 1]
    assert x[0, 0, 0].tolist() == [40.0, 0.0, 0.0]  # 0..255, not rescaled


@pytest.mark.parametrize(
    ("mode", "shape", "dtype"), [("categorical", (5, 2), np.float32), ("binary", (5, 1), np.float32)]
)
def test_image_dataset_label_modes(tmp_path, mode, shape, dtype):
    root = _folder(tmp_path, {"dog": 3, "cat": 2})
    _, y = next(iter(image_dataset_from_directory(root, label_mode=mode, image_size=(4, 4), verbose=False)))
    assert y.shape == shape and y.dtype == dtype


def test_image_dataset_without_labels_and_in_grayscale(tmp_path):
    root = _folder(tmp_path, {"a": 2, "b": 1})
    data = image_dataset_from_directory(root, labels=None, color_mode="grayscale", image_size=(4, 4), verbose=False)
    x = next(iter(data))
    assert isinstance(x, np.ndarray) and x.shape == (3, 4, 4, 1)


def test_image_dataset_validation_split_is_disjoint_and_seeded(tmp_path):
    root = _folder(tmp_path, {"a": 5, "b": 5})
    options = {"image_size": (4, 4), "validation_split": 0.2, "seed": 7, "verbose": False}
    train = image_dataset_from_directory(root, subset="training", **options)
    val = image_dataset_from_directory(root, subset="validation", **options)
    both = image_dataset_from_directory(root, subset="both", **options)
    assert len(val.file_paths) == 2 and len(train.file_paths) == 8
    assert not set(train.file_paths) & set(val.file_paths)
    assert [d.file_paths for d in both] == [train.file_paths, val.file_paths]
    first, again = (np.concatenate([y for _, y in train]) for _ in range(2))
    assert sorted(first) == sorted(again)  # each pass is a new shuffle of the same samples
    with pytest.raises(ConfigError, match="needs a seed"):
        image_dataset_from_directory(root, validation_split=0.2, subset="training")
    with pytest.raises(ConfigError, match="go together"):
        image_dataset_from_directory(root, validation_split=0.2, seed=1)


def test_set_random_seed_repeats_numpy_and_torch():
    set_random_seed(3)
    a = (np.random.rand(), torch.rand(1).item())
    set_random_seed(3)
    assert a == (np.random.rand(), torch.rand(1).item())


def test_plot_model_draws_every_layer_and_connection_without_graphviz(tmp_path) -> None:
    from PIL import Image

    from cnnlab.core.errors import ConfigError
    from cnnlab.keras import Model, Sequential, layers
    from cnnlab.keras.plotting import model_graph
    from cnnlab.keras.utils import model_to_dot, plot_model

    inputs = layers.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = layers.Add()([x, layers.Conv2D(4, 1)(inputs)])  # a shortcut: two parents
    model = Model(inputs, layers.Dense(2)(layers.Flatten()(x)))
    names, parents = [layer.name for layer in model_graph(model)[0]], model_graph(model)[1]
    assert names == ["input", "conv2d", "conv2d_1", "add", "flatten", "dense"]
    assert parents == [(), (0,), (0,), (1, 2), (3,), (4,)]
    chain = Sequential([layers.Conv2D(4, 3, input_shape=(8, 8, 1)), layers.Flatten()])
    assert model_graph(chain)[1] == [(), (0,)]

    svg = tmp_path / "model.svg"
    assert plot_model(model, to_file=svg, show_shapes=True, show_layer_names=True) is None  # no notebook here
    text = svg.read_text()
    assert all(f"{name} (" in text for name in names[1:]) and "(None, 8, 8, 4)" in text
    assert text.count("InputLayer") == 1
    plot_model(model, to_file=tmp_path / "tb.png")
    plot_model(model, to_file=tmp_path / "lr.png", rankdir="LR")
    tall, wide = Image.open(tmp_path / "tb.png").size, Image.open(tmp_path / "lr.png").size
    assert wide[0] / wide[1] > 2 * tall[0] / tall[1]  # left to right: ranks along the width
    with pytest.raises(ConfigError, match="rankdir must be 'TB' or 'LR'"):
        plot_model(model, to_file=tmp_path / "x.png", rankdir="BT")
    with pytest.raises(ConfigError, match=r"pydot and Graphviz.*plot_model"):
        model_to_dot(model)
