"""Keras-style Fashion-MNIST classifier with cnnlab's Sequential facade (about a minute on 2 CPU cores).

    python examples/fashion_mnist_sequential.py [--data ../shared/data/fashion-mnist] [--epochs 2]

The images are read as numpy uint8 arrays, (N, 28, 28): NHWC without the channel axis, the
Keras convention. ``Rescaling(1 / 255)`` turns them into [0, 1] floats inside the model.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cnnlab.data.idx import read_idx
from cnnlab.layers import Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D, Rescaling
from cnnlab.sequential import Sequential

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-mnist"


def build_model() -> Sequential:
    """Conv2D -> MaxPooling2D -> Dropout -> Flatten -> Dense -> Dropout -> Dense(softmax)."""
    return Sequential(
        [
            Input((1, 28, 28)),  # per-sample shape, channels-first
            Rescaling(1 / 255),
            Conv2D(64, 3, activation="relu"),
            MaxPooling2D(2),
            Dropout(0.2),
            Flatten(),
            Dense(128, activation="relu"),
            Dropout(0.3),
            Dense(10, activation="softmax"),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with the four IDX .gz files")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()

    x_train = read_idx(args.data / "train-images-idx3-ubyte.gz")  # (60000, 28, 28) uint8
    y_train = read_idx(args.data / "train-labels-idx1-ubyte.gz")
    x_test = read_idx(args.data / "t10k-images-idx3-ubyte.gz")
    y_test = read_idx(args.data / "t10k-labels-idx1-ubyte.gz")

    model = build_model()
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        learning_rate=3e-3,
        schedule="onecycle",  # warm up, then anneal: what makes 2 epochs enough
        seed=0,
    )
    started = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=32, epochs=args.epochs, validation_split=0.1)
    result = model.evaluate(x_test, y_test)
    print(f"val_accuracy per epoch: {[round(a, 4) for a in history.history['val_accuracy']]}")
    print(f"test loss {result['loss']:.4f}  test accuracy {result['accuracy']:.4f}")
    print(f"fit + evaluate: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
