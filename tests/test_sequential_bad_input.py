"""Bad input to the Keras-style facade: empty data, and Keras' channels-last shapes given to channels-first layers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.core.errors import DataError, ShapeError
from cnnlab.data.loader import TensorLoader
from cnnlab.layers import Conv2D, Conv3D, Dense, Flatten, Input
from cnnlab.sequential import Model, Sequential, load_model_yaml


@pytest.fixture
def model() -> Sequential:
    net = Sequential([Input((1, 8, 8)), Flatten(), Dense(2)])
    net.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return net


def empty_loader() -> TensorLoader:
    return TensorLoader(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long), batch_size=4)


NO_X = np.zeros((0, 8, 8, 1), np.float32)
NO_Y = np.zeros(0, np.int64)
SOME_X = np.zeros((4, 8, 8, 1), np.float32)
SOME_Y = np.zeros(4, np.int64)


# --- 5. no samples ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.fit(NO_X, NO_Y, verbose=0), "fit: no training samples: x has 0 rows"),
        (lambda m: m.fit(empty_loader(), verbose=0), "fit: no training samples: the batch source is empty"),
        (
            lambda m: m.fit(SOME_X, SOME_Y, validation_data=(NO_X, NO_Y), verbose=0),
            "validation_data: no samples: x has 0 rows",
        ),
        (lambda m: m.evaluate(NO_X, NO_Y), "evaluate: no samples: x has 0 rows"),
        (lambda m: m.evaluate(empty_loader()), "evaluate: no samples: the batch source is empty"),
        (lambda m: m.predict(NO_X), "predict: no samples: x has 0 rows"),
        (lambda m: m.predict(empty_loader()), "predict: no samples: the batch source is empty"),
    ],
    ids=["fit", "fit-source", "validation", "evaluate", "evaluate-source", "predict", "predict-source"],
)
def test_no_samples_is_a_clear_error(
    model: Sequential, one_thread: None, call: Callable[[Sequential], object], message: str
) -> None:
    with pytest.raises(DataError) as info:
        call(model)
    assert str(info.value) == f"{message}. Fix: pass at least one sample"


def test_an_unbuilt_model_is_refused_empty_data_too(one_thread: None) -> None:
    net = Sequential([Flatten(), Dense(2)])
    net.compile()
    with pytest.raises(DataError, match="fit: no training samples"):
        net.fit(NO_X, NO_Y, verbose=0)


# --- 6. Keras' channels-last shapes ---------------------------------------------------------------------
def _yaml(tmp_path: Path) -> None:
    spec = tmp_path / "model.yaml"
    spec.write_text("input_shape: [28, 28, 1]\nlayers:\n  - {layer: Conv2D, filters: 4, kernel_size: 3}\n")
    load_model_yaml(spec)


@pytest.mark.parametrize(
    "build",
    [
        lambda tmp_path: Sequential([Input((28, 28, 1)), Conv2D(32, 3)]),
        lambda tmp_path: Sequential([Conv2D(32, 3, input_shape=(28, 28, 1))]),
        lambda tmp_path: Sequential([Conv2D(32, 3), Flatten()], input_shape=(28, 28, 1)),
        lambda tmp_path: Model(Input((28, 28, 1)), Conv2D(32, 3)(Input((1, 28, 28)))),
        _yaml,
    ],
    ids=["Input", "layer-input_shape", "model-input_shape", "functional", "yaml"],
)
def test_a_keras_shape_is_named_as_channels_last_before_any_kernel_complaint(tmp_path: Path, build) -> None:
    with pytest.raises(ShapeError) as info:
        build(tmp_path)
    text = str(info.value)
    assert text.startswith(
        "input_shape (28, 28, 1) looks channels-last (Keras order H, W, C); cnnlab.layers takes (C, H, W)"
    )
    assert text.endswith("Fix: use (1, 28, 28)") and "window" not in text


def test_an_rgb_keras_shape_that_would_build_is_refused_too() -> None:
    # (28, 28, 3) read channels-first is 28 channels of 28x3 pixels: a 3x3 kernel fits, so nothing else complains
    with pytest.raises(ShapeError, match=r"input_shape \(28, 28, 3\) looks channels-last.*use \(3, 28, 28\)"):
        Sequential([Conv2D(8, 3)], input_shape=(28, 28, 3))


def test_a_channels_last_volume_names_the_3d_order() -> None:
    pattern = r"\(16, 16, 16, 1\) looks channels-last \(Keras order D, H, W, C\); cnnlab.layers takes \(C, D, H, W\)"
    with pytest.raises(ShapeError, match=pattern + r".*use \(1, 16, 16, 16\)"):
        Sequential([Input((16, 16, 16, 1)), Conv3D(4, 3)])


def test_an_nhwc_torch_batch_into_an_unbuilt_model_says_to_permute(one_thread: None) -> None:
    net = Sequential([Conv2D(4, 3), Flatten()])
    with pytest.raises(ShapeError, match=r"input shape \(28, 28, 3\) looks channels-last.*x\.permute\(0, 3, 1, 2\)"):
        net(torch.zeros(2, 28, 28, 3))


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (8, 4, 4), (64, 3, 3), (16, 1)])
def test_channels_first_shapes_are_still_taken(shape: tuple[int, ...]) -> None:
    assert Input(shape).shape == shape
