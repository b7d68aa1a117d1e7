"""``keras.datasets.fashion_mnist``: Fashion-MNIST from local files, as Keras returns it.

The files are read from ``$CNNLAB_DATA/fashion-mnist/`` (default ``~/.cnnlab/data/fashion-mnist/``)
or ``path``, as in :mod:`cnnlab.keras.datasets.mnist`; nothing is downloaded. Class names, in label
order, are :data:`CLASS_NAMES`.

>>> CLASS_NAMES[9]
'Ankle boot'
"""

from __future__ import annotations

from pathlib import Path

from cnnlab.data.datasets import FASHION_MNIST_CLASSES
from cnnlab.keras.datasets.mnist import Arrays, read_named

CLASS_NAMES = tuple(FASHION_MNIST_CLASSES)


def load_data(path: str | Path | None = None) -> Arrays:
    """Fashion-MNIST as ``(x_train, y_train), (x_test, y_test)``: uint8 ``(60000, 28, 28)``, ``(60000,)``,
    ``(10000, 28, 28)``, ``(10000,)``, labels 0..9."""
    return read_named("fashion-mnist", path)
