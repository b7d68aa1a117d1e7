"""``fit(verbose=...)`` prints what Keras prints: ``Epoch k/N`` and a line per epoch with Keras' names."""

from __future__ import annotations

import re

import numpy as np
import pytest

from cnnlab import keras
from cnnlab.core.errors import ConfigError
from cnnlab.keras import layers


def small_model() -> keras.Sequential:
    model = keras.Sequential([layers.Dense(3, activation="softmax", input_shape=(4,))])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


DATA = (np.random.default_rng(0).random((40, 4), dtype=np.float32), np.arange(40) % 3)


def test_verbose_1_prints_epochs_and_kerass_finished_lines(capsys: pytest.CaptureFixture[str]) -> None:
    small_model().fit(*DATA, epochs=2, batch_size=16, validation_split=0.2)
    lines = capsys.readouterr().out.splitlines()  # not a terminal: only the finished lines, as a log would hold
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    pattern = r"2/2 ━{20} \d+s \d+(ms|us|s)/step - accuracy: [\d.]{6} - loss: [\d.]{6} - val_accuracy: [\d.]{6}"
    assert re.fullmatch(pattern + r" - val_loss: [\d.]{6}", lines[1]), lines[1]


def test_verbose_2_prints_a_line_per_epoch_numbered_from_initial_epoch(capsys: pytest.CaptureFixture[str]) -> None:
    small_model().fit(*DATA, epochs=4, initial_epoch=2, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 3/4" and lines[2] == "Epoch 4/4"
    assert re.fullmatch(r"2/2 - \d+s - \d+(ms|us|s)/step - accuracy: [\d.]{6} - loss: [\d.]{6}", lines[3]), lines[3]


def test_verbose_0_is_silent_and_other_values_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    model = small_model()
    model.fit(*DATA, verbose=0)
    assert capsys.readouterr().out == ""
    with pytest.raises(ConfigError, match="verbose must be 'auto', 0, 1 or 2"):
        model.fit(*DATA, verbose=3)
