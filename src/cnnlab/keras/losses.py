"""Keras losses (``keras.losses``) by string or object: categorical, sparse categorical and binary
cross-entropy, mean squared and mean absolute error.

A loss is called as in Keras, ``loss(y_true, y_pred, sample_weight=None)``, and returns Keras'
``"sum_over_batch_size"`` reduction: the per-sample losses (``call``), each multiplied by its weight,
summed and divided by their number (the batch size, not the sum of the weights). Inside cnnlab the
tensors are channels-first: class scores are ``(N, classes)`` and image outputs ``(N, C, H, W)``, so
the class axis is axis 1.

``from_logits=False`` (Keras' default) reads ``y_pred`` as probabilities: they are divided by their
sum, clipped to ``[1e-7, 1 - 1e-7]`` and logged, as Keras does. ``prepare_targets`` turns labels
given in Keras' layout into what the loss takes (checked against the model's output shape) once,
before training.

>>> import torch
>>> p = torch.tensor([[0.7, 0.2, 0.1]])
>>> round(get("categorical_crossentropy")(torch.tensor([[1.0, 0.0, 0.0]]), p).item(), 4)   # -log(0.7)
0.3567
>>> round(SparseCategoricalCrossentropy()(torch.tensor([0]), p).item(), 4)
0.3567
>>> get("categorial_crossentropy")
Traceback (most recent call last):
...
cnnlab.core.errors.RegistryError: unknown loss 'categorial_crossentropy'; did you mean 'categorical_crossentropy'...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.core.registry import Registry

Shape = tuple[int, ...]
#: Keras' loss strings -> class; ``get`` reads it.
LOSSES: Registry[type[Loss]] = Registry("loss")
EPSILON = 1e-7  # Keras' backend.epsilon(): probabilities are clipped to [EPSILON, 1 - EPSILON]


class Loss:
    """Base class: a loss over ``(y_true, y_pred)`` with Keras' arguments."""

    #: The Keras string of the loss (also its default ``name``).
    keras_name: ClassVar[str] = ""
    #: What ``prepare_targets`` says when the labels do not fit.
    target_fix: ClassVar[str] = "pass targets shaped like the model output"

    def __init__(self, reduction: str = "sum_over_batch_size", name: str | None = None) -> None:
        if reduction not in ("sum_over_batch_size", "auto"):
            raise ConfigError(
                f"{type(self).__name__}: only the batch mean is supported. Received: reduction={reduction!r}",
                fix="drop reduction (Keras' default 'sum_over_batch_size')",
            )
        self.reduction = reduction
        self.name = name or self.keras_name

    def __call__(
        self, y_true: torch.Tensor, y_pred: torch.Tensor, sample_weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The weighted batch loss: ``sum(call(y_true, y_pred) * sample_weight) / count`` (Keras' reduction).

        >>> loss = MeanSquaredError()
        >>> loss(torch.tensor([[1.0], [2.0]]), torch.zeros(2, 1), sample_weight=torch.tensor([1.0, 3.0])).item()
        6.5
        """
        return reduce_weighted(self.call(y_true, y_pred.float()), sample_weight)

    def call(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        """The loss of every sample, unreduced: ``(N,)`` (``(N, H, W)`` for image outputs) (subclasses)."""
        raise NotImplementedError(f"Loss {type(self).__name__} does not implement `call(y_true, y_pred)`")

    def prepare_targets(self, y: torch.Tensor, output_shape: Shape | None, what: str) -> torch.Tensor:
        """Float targets in the model's layout: channels-last image targets ``(N, H, W, C)`` become
        ``(N, C, H, W)``; ``(N,)`` fits a one-unit output ``(N, 1)``.

        >>> MeanSquaredError().prepare_targets(torch.zeros(4, 8, 8, 3), (3, 8, 8), "fit").shape
        torch.Size([4, 3, 8, 8])
        """
        t = y.float()
        if t.dim() >= 3:
            t = t.movedim(-1, 1)  # (N, H, W, C) -> (N, C, H, W)
        if output_shape is None:
            return t
        if t.dim() == 1 and output_shape == (1,):
            t = t[:, None]
        if tuple(t.shape[1:]) != tuple(output_shape):
            raise DataError(
                f"{what}: {self.name} needs targets of shape (N, {', '.join(map(str, _keras(output_shape)))}) "
                f"like the model output; received {tuple(y.shape)}",
                fix=self.target_fix,
            )
        return t

    def get_config(self) -> dict[str, Any]:
        """``{"class_name": ..., "config": arguments}`` (what a saved model stores)."""
        return {"class_name": type(self).__name__, "config": dict(vars(self))}


def reduce_weighted(values: torch.Tensor, sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Keras' ``"sum_over_batch_size"``: ``sum(values * sample_weight) / values.numel()``.

    ``sample_weight`` holds one weight per sample (``(N,)``), spread over the other axes of ``values``;
    a scalar loss (a custom function that reduces itself) is scaled by the mean weight, as Keras' broadcast does.

    >>> reduce_weighted(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([0.0, 1.0, 1.0, 0.0])).item()   # 5 / 4
    1.25
    """
    if sample_weight is None:
        return values.mean()
    weight = sample_weight.to(device=values.device, dtype=values.dtype).reshape(-1)
    if values.dim() == 0:
        return values * weight.mean()
    weight = weight.reshape(len(weight), *([1] * (values.dim() - 1)))
    return (values * weight).sum() / values.numel()


def _register(cls: type[Loss]) -> type[Loss]:
    LOSSES.add(cls.keras_name, cls)
    return cls


def _keras(shape: Shape) -> Shape:
    """A per-sample channels-first shape in Keras' channels-last order."""
    return (*shape[1:], shape[0]) if len(shape) > 1 else shape


def _log_probabilities(y_pred: torch.Tensor, from_logits: bool) -> torch.Tensor:
    """Log-probabilities over the class axis (1), as Keras computes them from logits or probabilities."""
    if from_logits:
        return F.log_softmax(y_pred, dim=1)
    p = y_pred / y_pred.sum(dim=1, keepdim=True)
    return torch.log(p.clamp(EPSILON, 1 - EPSILON))


def _mean_over_units(values: torch.Tensor) -> torch.Tensor:
    """Keras averages element-wise losses over the last (channel) axis: axis 1 here."""
    return values.mean(dim=1) if values.dim() > 1 else values


def _check_smoothing(name: str, label_smoothing: float) -> float:
    if not 0 <= label_smoothing < 1:
        raise ConfigError(f"{name}: label_smoothing must be in [0, 1). Received: {label_smoothing}", fix="e.g. 0.1")
    return float(label_smoothing)


@_register
class CategoricalCrossentropy(Loss):
    """Cross-entropy with one-hot (or soft) targets ``(N, classes)``.

    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0]])
    >>> loss = CategoricalCrossentropy(from_logits=True)(torch.tensor([[1.0, 0.0]]), logits)
    >>> round(loss.item(), 4) == round(torch.nn.functional.cross_entropy(logits, torch.tensor([0])).item(), 4)
    True
    """

    keras_name = "categorical_crossentropy"
    target_fix = (
        "one-hot encode integer labels (keras.utils.to_categorical(y, classes)), "
        "or compile with loss='sparse_categorical_crossentropy'"
    )

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        reduction: str = "sum_over_batch_size",
        name: str | None = None,
    ) -> None:
        super().__init__(reduction, name)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _check_smoothing(type(self).__name__, label_smoothing)

    def call(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        y = y_true.float()
        if self.label_smoothing:
            y = y * (1 - self.label_smoothing) + self.label_smoothing / y.shape[1]
        return -(y * _log_probabilities(y_pred, self.from_logits)).sum(dim=1)


@_register
class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy with integer class labels ``(N,)`` (or ``(N, 1)``; ``(N, H, W)`` for image outputs).

    >>> SparseCategoricalCrossentropy().prepare_targets(torch.tensor([[2], [0]]), (3,), "fit").tolist()
    [2, 0]
    """

    keras_name = "sparse_categorical_crossentropy"
    target_fix = "pass integer class labels, or compile with loss='categorical_crossentropy' for one-hot labels"

    def __init__(
        self, from_logits: bool = False, reduction: str = "sum_over_batch_size", name: str | None = None
    ) -> None:
        super().__init__(reduction, name)
        self.from_logits = bool(from_logits)

    def call(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        return F.nll_loss(_log_probabilities(y_pred, self.from_logits), y_true.long(), reduction="none")

    def prepare_targets(self, y: torch.Tensor, output_shape: Shape | None, what: str) -> torch.Tensor:
        if y.is_floating_point() and not bool((y == y.round()).all()):
            raise DataError(f"{what}: {self.name} needs integer class labels; got fractions", fix=self.target_fix)
        t = y.long()
        if output_shape is None:
            return t[:, 0] if t.dim() == 2 and t.shape[1] == 1 else t
        classes, spatial = output_shape[0], tuple(output_shape[1:])
        if t.dim() == len(spatial) + 2 and t.shape[-1] == 1:
            t = t[..., 0]  # (N, 1) -> (N,); (N, H, W, 1) -> (N, H, W)
        if tuple(t.shape[1:]) != spatial:
            want = ", ".join(map(str, ("N", *spatial)))
            raise DataError(
                f"{what}: {self.name} needs class labels of shape ({want}) for a {classes}-class output; "
                f"received {tuple(y.shape)}",
                fix=self.target_fix,
            )
        if len(t) and (int(t.min()) < 0 or int(t.max()) >= classes):
            raise DataError(
                f"{what}: labels must be in [0, {classes}) for a {classes}-class output; "
                f"found {int(t.min())}..{int(t.max())}",
                fix="make the last layer as wide as the number of classes",
            )
        return t


@_register
class BinaryCrossentropy(Loss):
    """Cross-entropy of 0/1 labels ``(N,)`` or ``(N, 1)`` against a sigmoid output ``(N, 1)``.

    >>> p = torch.tensor([[0.8], [0.4]])
    >>> round(BinaryCrossentropy()(torch.tensor([[1.0], [0.0]]), p).item(), 4)   # -(log 0.8 + log 0.6) / 2
    0.367
    """

    keras_name = "binary_crossentropy"
    target_fix = "pass 0/1 labels, one per output unit"

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        reduction: str = "sum_over_batch_size",
        name: str | None = None,
    ) -> None:
        super().__init__(reduction, name)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _check_smoothing(type(self).__name__, label_smoothing)

    def call(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        y = y_true.float().reshape(y_pred.shape)
        if self.label_smoothing:
            y = y * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        if self.from_logits:
            values = F.binary_cross_entropy_with_logits(y_pred, y, reduction="none")
        else:
            p = y_pred.clamp(EPSILON, 1 - EPSILON)
            values = -(y * torch.log(p) + (1 - y) * torch.log(1 - p))
        return _mean_over_units(values)


@_register
class MeanSquaredError(Loss):
    """Mean of ``(y_true - y_pred) ** 2``.

    >>> MeanSquaredError()(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]])).item()
    2.5
    """

    keras_name = "mean_squared_error"

    def call(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        return _mean_over_units((y_pred - y_true.float().reshape(y_pred.shape)).square())


@_register
class MeanAbsoluteError(Loss):
    """Mean of ``|y_true - y_pred|``.

    >>> MeanAbsoluteError()(torch.tensor([[1.0, -2.0]]), torch.tensor([[0.0, 0.0]])).item()
    1.5
    """

    keras_name = "mean_absolute_error"

    def call(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        return _mean_over_units((y_pred - y_true.float().reshape(y_pred.shape)).abs())


_SHORT_NAMES = {"mse": "mean_squared_error", "mae": "mean_absolute_error"}

#: A loss ``fit`` can use: a :class:`Loss`, or any function ``f(y_true, y_pred) -> scalar tensor``.
LossLike = Loss | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def get(identifier: str | LossLike) -> LossLike:
    """A loss from a Keras string (``'categorical_crossentropy'``, ``'mse'``, ...), object or function.

    Functions ``f(y_true, y_pred)`` get torch tensors in cnnlab's layout (class axis 1).

    >>> type(get("mse")).__name__, type(get("binary_crossentropy")).__name__
    ('MeanSquaredError', 'BinaryCrossentropy')
    """
    if isinstance(identifier, str):
        return LOSSES.get(_SHORT_NAMES.get(identifier, identifier))(name=identifier)
    if callable(identifier):
        return identifier
    raise ConfigError(
        f"loss must be a string, a cnnlab.keras.losses object or a function. Received: {identifier!r}",
        fix="e.g. loss='sparse_categorical_crossentropy'",
    )


def from_config(config: dict[str, Any]) -> Loss:
    """Rebuild a loss from :meth:`Loss.get_config`."""
    classes = {LOSSES.get(name).__name__: LOSSES.get(name) for name in LOSSES}
    if config["class_name"] not in classes:
        raise ConfigError(f"unknown loss class {config['class_name']!r}", fix=f"use one of {', '.join(classes)}")
    return classes[config["class_name"]](**config["config"])


__all__ = [
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "Loss",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "SparseCategoricalCrossentropy",
    "from_config",
    "get",
    "reduce_weighted",
]
