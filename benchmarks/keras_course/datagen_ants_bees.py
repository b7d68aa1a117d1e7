"""Course 3: ``ImageDataGenerator`` + ``flow_from_directory`` on ants vs bees, a small convnet, 2 epochs.

The Keras blog's "image classification with very little data" recipe (150x150 inputs, shear / zoom / flip
augmentation, 3 conv blocks, binary head). Written exactly as a Keras user writes it; the runner swaps the
``import keras`` line for ``from cnnlab import keras``. ``HYMENOPTERA`` points at the data (``train/``, ``val/``).
"""

import json
import os
import time

import keras

QUICK = os.environ.get("KERAS_COURSE_QUICK") == "1"  # the runner's --quick: one epoch, smaller images
DATA = os.environ.get("HYMENOPTERA", "../shared/data/hymenoptera")
img_width, img_height = (64, 64) if QUICK else (150, 150)
epochs = 1 if QUICK else 2
batch_size = 16

train_datagen = keras.preprocessing.image.ImageDataGenerator(
    rescale=1.0 / 255, shear_range=0.2, zoom_range=0.2, horizontal_flip=True
)
test_datagen = keras.preprocessing.image.ImageDataGenerator(rescale=1.0 / 255)

train_generator = train_datagen.flow_from_directory(
    os.path.join(DATA, "train"), target_size=(img_width, img_height), batch_size=batch_size, class_mode="binary"
)
validation_generator = test_datagen.flow_from_directory(
    os.path.join(DATA, "val"), target_size=(img_width, img_height), batch_size=batch_size, class_mode="binary"
)

model = keras.Sequential(
    [
        keras.layers.Conv2D(32, (3, 3), activation="relu", input_shape=(img_width, img_height, 3)),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Conv2D(32, (3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Conv2D(64, (3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(1, activation="sigmoid"),
    ]
)
model.compile(loss="binary_crossentropy", optimizer="rmsprop", metrics=["accuracy"])

start = time.perf_counter()
model.fit(train_generator, epochs=epochs, verbose=2)
fit_seconds = time.perf_counter() - start

val_loss, val_acc = model.evaluate(validation_generator, verbose=0)
print("Validation accuracy:", val_acc)

print(
    json.dumps(
        {
            "script": "datagen_ants_bees",
            "train_images_per_s": train_generator.samples * epochs / fit_seconds,
            "final_accuracy": float(val_acc),
            "fit_seconds": fit_seconds,
        }
    )
)
