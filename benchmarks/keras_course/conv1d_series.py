"""Course 5: a Conv1D classifier of synthetic time series (sine / square / sawtooth + noise, seeded).

Written exactly as a Keras user writes it; the runner swaps the ``from keras import`` line for
``from cnnlab.keras import``.
"""

import json
import os
import time

import numpy as np
from keras import layers, models, utils

QUICK = os.environ.get("KERAS_COURSE_QUICK") == "1"  # the runner's --quick: a smoke test on a few series
N_TRAIN = 512 if QUICK else 6_000
N_TEST = 256 if QUICK else 1_500
LENGTH = 128
epochs = 2


def make_series(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` series of ``LENGTH`` steps, 1 channel; label 0 sine, 1 square, 2 sawtooth; random frequency/phase."""
    t = np.arange(LENGTH) / LENGTH
    labels = rng.integers(0, 3, n)
    freq = rng.uniform(2, 8, (n, 1))
    phase = rng.uniform(0, 1, (n, 1))
    cycle = (freq * t + phase) % 1.0
    sine = np.sin(2 * np.pi * cycle)
    square = np.where(cycle < 0.5, 1.0, -1.0)
    saw = 2 * cycle - 1
    x = np.choose(labels[:, None], [sine, square, saw]) + rng.normal(0, 0.3, (n, LENGTH))
    return x[..., None].astype("float32"), labels


rng = np.random.default_rng(0)
utils.set_random_seed(0)
x_train, y_train = make_series(N_TRAIN, rng)
x_test, y_test = make_series(N_TEST, rng)

model = models.Sequential(
    [
        layers.Conv1D(16, 5, activation="relu", input_shape=(LENGTH, 1)),
        layers.MaxPooling1D(2),
        layers.Conv1D(32, 5, activation="relu"),
        layers.GlobalAveragePooling1D(),
        layers.Dense(3, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

start = time.perf_counter()
model.fit(x_train, y_train, batch_size=32, epochs=epochs, verbose=2)
fit_seconds = time.perf_counter() - start

loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
print("Test accuracy:", accuracy)

print(
    json.dumps(
        {
            "script": "conv1d_series",
            "train_images_per_s": len(x_train) * epochs / fit_seconds,
            "final_accuracy": float(accuracy),
            "fit_seconds": fit_seconds,
        }
    )
)
