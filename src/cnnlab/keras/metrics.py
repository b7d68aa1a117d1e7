"""Keras metrics (``keras.metrics``) by string or object: accuracy in its three kinds, MAE and MSE.

A metric is called as in Keras, ``metric(y_true, y_pred)``, on one batch and returns its mean;
``fit`` and ``evaluate`` average it over the samples of an epoch (as Keras' running means do).
Tensors are in cnnlab's layout: class axis 1.

``'accuracy'`` (or ``'acc'``) picks its kind from the shapes, as Keras does: one output unit means
binary accuracy (threshold 0.5), labels with fewer axes than the output mean sparse categorical
accuracy (class indices), anything else categorical accuracy (arg-max of both).

>>> import torch
>>> probs = torch.tensor([[0.8, 0.2], [0.3, 0.7]])
>>> acc = get("accuracy")
>>> acc(torch.tensor([0, 0]), probs).item(), acc(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), probs).item()
(0.5, 1.0)
>>> acc(torch.tensor([[1.0], [0.0]]), torch.tensor([[0.9], [0.6]])).item()    # binary
0.5
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from cnnlab.core.errors import ConfigError
from cnnlab.core.registry import Registry

MetricFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Metric:
    """A named batch metric ``fn(y_true, y_pred) -> 0-d tensor``; ``name`` is its key in the logs."""

    def __init__(self, fn: MetricFn, name: str) -> None:
        self.fn, self.name = fn, name

    def __call__(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        return self.fn(y_true, y_pred.float())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def binary_accuracy(y_true: torch.Tensor, y_pred: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Share of outputs on the same side of ``threshold`` as their 0/1 label.

    >>> binary_accuracy(torch.tensor([1.0, 0.0]), torch.tensor([[0.7], [0.7]])).item()
    0.5
    """
    return ((y_pred > threshold).float() == y_true.float().reshape(y_pred.shape)).float().mean()


def categorical_accuracy(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """Share of samples whose arg-max over the class axis matches the one-hot label's."""
    return (y_pred.argmax(dim=1) == y_true.argmax(dim=1)).float().mean()


def sparse_categorical_accuracy(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """Share of samples whose arg-max over the class axis equals the integer label."""
    return (y_pred.argmax(dim=1) == y_true.reshape(y_pred.argmax(dim=1).shape)).float().mean()


def accuracy(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """Keras' ``'accuracy'``: binary, sparse or categorical accuracy, chosen from the shapes."""
    if y_pred.dim() == 1 or y_pred.shape[1] == 1:
        return binary_accuracy(y_true, y_pred)
    if y_true.dim() < y_pred.dim() or (y_true.dim() == 2 and y_true.shape[1] == 1):
        return sparse_categorical_accuracy(y_true, y_pred)
    return categorical_accuracy(y_true, y_pred)


def mean_absolute_error(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """Mean of ``|y_true - y_pred|``."""
    return (y_pred - y_true.float().reshape(y_pred.shape)).abs().mean()


def mean_squared_error(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """Mean of ``(y_true - y_pred) ** 2``."""
    return (y_pred - y_true.float().reshape(y_pred.shape)).square().mean()


#: Keras' metric strings -> function; the string is the metric's name in the logs.
METRICS: Registry[MetricFn] = Registry("metric")
for _name, _fn in {
    "accuracy": accuracy,
    "acc": accuracy,
    "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "mean_absolute_error": mean_absolute_error,
    "mae": mean_absolute_error,
    "mean_squared_error": mean_squared_error,
    "mse": mean_squared_error,
}.items():
    METRICS.add(_name, _fn)


class BinaryAccuracy(Metric):
    """``keras.metrics.BinaryAccuracy(name='binary_accuracy', threshold=0.5)``."""

    def __init__(self, name: str = "binary_accuracy", threshold: float = 0.5) -> None:
        super().__init__(lambda y_true, y_pred: binary_accuracy(y_true, y_pred, threshold), name)


class CategoricalAccuracy(Metric):
    """``keras.metrics.CategoricalAccuracy(name='categorical_accuracy')``: one-hot labels."""

    def __init__(self, name: str = "categorical_accuracy") -> None:
        super().__init__(categorical_accuracy, name)


class SparseCategoricalAccuracy(Metric):
    """``keras.metrics.SparseCategoricalAccuracy(name='sparse_categorical_accuracy')``: integer labels."""

    def __init__(self, name: str = "sparse_categorical_accuracy") -> None:
        super().__init__(sparse_categorical_accuracy, name)


class MeanAbsoluteError(Metric):
    """``keras.metrics.MeanAbsoluteError(name='mean_absolute_error')``."""

    def __init__(self, name: str = "mean_absolute_error") -> None:
        super().__init__(mean_absolute_error, name)


class MeanSquaredError(Metric):
    """``keras.metrics.MeanSquaredError(name='mean_squared_error')``."""

    def __init__(self, name: str = "mean_squared_error") -> None:
        super().__init__(mean_squared_error, name)


def get(identifier: str | Metric | MetricFn) -> Metric:
    """A metric from a Keras string, a :class:`Metric`, or a function ``f(y_true, y_pred)`` (named after it).

    >>> get("mae").name, get(mean_squared_error).name
    ('mae', 'mean_squared_error')
    >>> get("accuracyy")
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.RegistryError: unknown metric 'accuracyy'; did you mean 'accuracy' or ...
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        return Metric(METRICS.get(identifier), identifier)
    if callable(identifier):
        return Metric(identifier, getattr(identifier, "__name__", type(identifier).__name__))
    raise ConfigError(
        f"a metric must be a string, a cnnlab.keras.metrics object or a function. Received: {identifier!r}",
        fix="e.g. metrics=['accuracy']",
    )


def serialize(metric: Metric) -> str | None:
    """The string that rebuilds ``metric`` with :func:`get` (None for objects and custom functions)."""
    return metric.name if metric.name in METRICS and metric.fn is METRICS.get(metric.name) else None


__all__ = [
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "Metric",
    "SparseCategoricalAccuracy",
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "get",
    "mean_absolute_error",
    "mean_squared_error",
    "serialize",
]
