"""Course 4: a functional-API model with a residual block (Conv-BN-ReLU-Conv-BN + identity, Add) on MNIST.

Written exactly as a Keras user writes it; the runner swaps the ``from keras import`` line for
``from cnnlab.keras import``.
"""

import json
import os
import time

from keras import Input, Model, datasets, layers, utils

QUICK = os.environ.get("KERAS_COURSE_QUICK") == "1"  # the runner's --quick: a smoke test on a few images
N_TRAIN = 1_024 if QUICK else 12_000
N_TEST = 1_000 if QUICK else 10_000
epochs = 1

utils.set_random_seed(0)
(x_train, y_train), (x_test, y_test) = datasets.mnist.load_data()
x_train = x_train[:N_TRAIN].reshape(-1, 28, 28, 1).astype("float32") / 255
x_test = x_test[:N_TEST].reshape(-1, 28, 28, 1).astype("float32") / 255
y_train, y_test = y_train[:N_TRAIN], y_test[:N_TEST]

inputs = Input(shape=(28, 28, 1))
x = layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
x = layers.MaxPooling2D(2)(x)
shortcut = x
x = layers.Conv2D(32, 3, padding="same")(x)
x = layers.BatchNormalization()(x)
x = layers.Activation("relu")(x)
x = layers.Conv2D(32, 3, padding="same")(x)
x = layers.BatchNormalization()(x)
x = layers.Add()([x, shortcut])
x = layers.Activation("relu")(x)
x = layers.MaxPooling2D(2)(x)
x = layers.Flatten()(x)
outputs = layers.Dense(10, activation="softmax")(x)
model = Model(inputs, outputs, name="residual_mnist")
model.summary()

model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

start = time.perf_counter()
model.fit(x_train, y_train, batch_size=64, epochs=epochs, verbose=2)
fit_seconds = time.perf_counter() - start

loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
print("Test accuracy:", accuracy)

print(
    json.dumps(
        {
            "script": "functional_residual",
            "train_images_per_s": len(x_train) * epochs / fit_seconds,
            "final_accuracy": float(accuracy),
            "fit_seconds": fit_seconds,
        }
    )
)
