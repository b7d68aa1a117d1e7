"""Course 1: the classic Keras MNIST convnet (keras.io "Simple MNIST convnet"), one epoch on 12,000 images.

Written exactly as a Keras user writes it; ``benchmarks/keras_course.py`` runs it on real Keras (TensorFlow
and torch backends) and, with the ``import keras`` line swapped for ``from cnnlab import keras``, on cnnlab.
"""

import json
import os
import time

import keras
import numpy as np

QUICK = os.environ.get("KERAS_COURSE_QUICK") == "1"  # the runner's --quick: a smoke test on a few images
N_TRAIN = 1_024 if QUICK else 12_000
N_TEST = 1_000 if QUICK else 10_000

num_classes = 10
input_shape = (28, 28, 1)
batch_size = 128
epochs = 1

(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train, y_train = x_train[:N_TRAIN], y_train[:N_TRAIN]
x_test, y_test = x_test[:N_TEST], y_test[:N_TEST]

# Scale images to the [0, 1] range and make sure they have shape (28, 28, 1).
x_train = x_train.astype("float32") / 255
x_test = x_test.astype("float32") / 255
x_train = np.expand_dims(x_train, -1)
x_test = np.expand_dims(x_test, -1)
print("x_train shape:", x_train.shape)
print(x_train.shape[0], "train samples")
print(x_test.shape[0], "test samples")

# Convert class vectors to binary class matrices.
y_train = keras.utils.to_categorical(y_train, num_classes)
y_test = keras.utils.to_categorical(y_test, num_classes)

model = keras.Sequential(
    [
        keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu", input_shape=input_shape),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(num_classes, activation="softmax"),
    ]
)
model.summary()

model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

start = time.perf_counter()
model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=2)
fit_seconds = time.perf_counter() - start

score = model.evaluate(x_test, y_test, verbose=0)
print("Test loss:", score[0])
print("Test accuracy:", score[1])

print(
    json.dumps(
        {
            "script": "convnet_mnist",
            "train_images_per_s": len(x_train) * epochs / fit_seconds,
            "final_accuracy": float(score[1]),
            "fit_seconds": fit_seconds,
        }
    )
)
