"""Course 2: a convnet built with ``model.add(...)`` on Fashion-MNIST, integer labels, one epoch.

Written exactly as a Keras user writes it; ``benchmarks/keras_course.py`` swaps the ``from keras import``
line for ``from cnnlab.keras import`` to run it on cnnlab.
"""

import json
import os
import time

from keras import datasets, layers, models

QUICK = os.environ.get("KERAS_COURSE_QUICK") == "1"  # the runner's --quick: a smoke test on a few images
N_TRAIN = 1_024 if QUICK else 12_000
N_TEST = 1_000 if QUICK else 10_000

(train_images, train_labels), (test_images, test_labels) = datasets.fashion_mnist.load_data()
train_images, train_labels = train_images[:N_TRAIN], train_labels[:N_TRAIN]
test_images, test_labels = test_images[:N_TEST], test_labels[:N_TEST]

# Normalize pixel values to be between 0 and 1, and add the channel axis.
train_images = train_images.reshape((-1, 28, 28, 1)).astype("float32") / 255.0
test_images = test_images.reshape((-1, 28, 28, 1)).astype("float32") / 255.0

model = models.Sequential()
model.add(layers.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)))
model.add(layers.MaxPooling2D((2, 2)))
model.add(layers.Conv2D(64, (3, 3), activation="relu"))
model.add(layers.MaxPooling2D((2, 2)))
model.add(layers.Conv2D(64, (3, 3), activation="relu"))
model.add(layers.Flatten())
model.add(layers.Dense(64, activation="relu"))
model.add(layers.Dense(10, activation="softmax"))
model.summary()

model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

epochs = 1
start = time.perf_counter()
history = model.fit(train_images, train_labels, epochs=epochs, batch_size=64, verbose=2)
fit_seconds = time.perf_counter() - start

test_loss, test_acc = model.evaluate(test_images, test_labels, verbose=0)
print("Test accuracy:", test_acc)

print(
    json.dumps(
        {
            "script": "model_add_convnet",
            "train_images_per_s": len(train_images) * epochs / fit_seconds,
            "final_accuracy": float(test_acc),
            "fit_seconds": fit_seconds,
        }
    )
)
