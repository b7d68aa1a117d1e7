"""Course 6: a Conv3D classifier of synthetic 16x16x16 volumes (a solid ball vs a hollow shell + noise, seeded).

Written exactly as a Keras user writes it; the runner swaps the ``from keras import`` line for
``from cnnlab.keras import``.
"""

import json
import os
import time

import numpy as np
from keras import layers, models, utils

QUICK = os.environ.get("KERAS_COURSE_QUICK") == "1"  # the runner's --quick: a smoke test on a few volumes
N_TRAIN = 128 if QUICK else 1_200
N_TEST = 64 if QUICK else 300
SIZE = 16
epochs = 2


def make_volumes(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` volumes ``(SIZE, SIZE, SIZE, 1)``; label 0 a solid ball, 1 a hollow shell, random centre and size."""
    grid = np.stack(np.meshgrid(*[np.arange(SIZE)] * 3, indexing="ij"), -1)  # (S, S, S, 3)
    labels = rng.integers(0, 2, n)
    centres = rng.uniform(5, SIZE - 5, (n, 1, 1, 1, 3))
    radii = rng.uniform(2.5, 4.5, (n, 1, 1, 1))
    offsets = grid[None] - centres
    distance = np.sqrt((offsets**2).sum(-1))
    ball = distance <= radii
    shell = ball & (distance >= radii - 1.2)
    x = np.where(labels[:, None, None, None] == 0, ball, shell).astype("float32")
    x += rng.normal(0, 0.3, x.shape)
    return x[..., None].astype("float32"), labels


rng = np.random.default_rng(0)
utils.set_random_seed(0)
x_train, y_train = make_volumes(N_TRAIN, rng)
x_test, y_test = make_volumes(N_TEST, rng)

model = models.Sequential(
    [
        layers.Conv3D(8, 3, activation="relu", input_shape=(SIZE, SIZE, SIZE, 1)),
        layers.MaxPooling3D(2),
        layers.Conv3D(16, 3, activation="relu"),
        layers.GlobalAveragePooling3D(),
        layers.Dense(2, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

start = time.perf_counter()
model.fit(x_train, y_train, batch_size=16, epochs=epochs, verbose=2)
fit_seconds = time.perf_counter() - start

loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
print("Test accuracy:", accuracy)

print(
    json.dumps(
        {
            "script": "conv3d_volumes",
            "train_images_per_s": len(x_train) * epochs / fit_seconds,
            "final_accuracy": float(accuracy),
            "fit_seconds": fit_seconds,
        }
    )
)
