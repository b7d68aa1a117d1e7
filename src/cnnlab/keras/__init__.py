"""The Keras drop-in: Keras code runs on cnnlab by changing its imports.

``from keras import layers, models`` becomes ``from cnnlab.keras import layers, models`` (or
``from cnnlab import keras``); the rest stays as written: channels-last shapes and arrays, Keras'
layer names and defaults, ``compile`` / ``fit`` / ``evaluate`` / ``predict`` / ``summary`` with
Keras' return types, Keras callbacks, optimizers, losses and metrics. It maps Keras' names and
conventions onto :mod:`cnnlab.layers`, :mod:`cnnlab.sequential` and :class:`cnnlab.train.Trainer`.

>>> from cnnlab import keras
>>> model = keras.Sequential([keras.Input(shape=(28, 28, 1)), keras.layers.Conv2D(32, (3, 3), activation="relu")])
>>> model.count_params()
320
"""

from cnnlab.keras import (
    applications,
    callbacks,
    datasets,
    initializers,
    layers,
    losses,
    metrics,
    mixed_precision,
    models,
    optimizers,
    preprocessing,
    saving,
    utils,
)
from cnnlab.keras.layers import Input
from cnnlab.keras.models import Model, Sequential

__all__ = [
    "Input",
    "Model",
    "Sequential",
    "applications",
    "callbacks",
    "datasets",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "mixed_precision",
    "models",
    "optimizers",
    "preprocessing",
    "saving",
    "utils",
]
