"""Keras layers (``keras.layers``) with Keras' conventions, over :mod:`cnnlab.layers`.

Each class here is the cnnlab layer of the same name with a Keras face:

- shapes you give are **channels-last**, as in Keras: ``input_shape=(28, 28, 1)``, ``Input(shape=(H, W, C))``,
  ``(steps, channels)`` for 1-D and ``(D, H, W, C)`` for 3-D data, ``Reshape((7, 7, 64))``. Inside, the
  layers compute channels-first like torch (a model transposes its numpy input once), so
  ``layer.output_shape`` is cnnlab's ``(C, H, W)``; ``model.summary()`` prints Keras' order.
- ``data_format`` may only be ``'channels_last'``; ``Concatenate(axis=-1)``, ``BatchNormalization(axis=-1)``
  and ``Softmax(axis=-1)`` mean the channel axis; ``Flatten`` flattens in ``(H, W, C)`` order, so the
  weights of a ``Dense`` after it line up with Keras'.
- ``get_weights()`` / ``set_weights()`` use Keras' layouts: a ``Conv2D`` kernel is ``(kh, kw, in, out)``,
  a ``Dense`` kernel ``(in, out)``, ``BatchNormalization`` gives ``[gamma, beta, moving_mean, moving_variance]``.
- ``layer.trainable = False`` freezes the layer (a frozen ``BatchNormalization`` also runs in inference
  mode, as in Keras).
- Keras arguments with no cnnlab counterpart (``kernel_regularizer``, ``dtype='float16'``, ...) raise a
  :class:`ConfigError` naming the argument and what to use instead; they are never silently dropped.
- your own layers subclass :class:`Layer` as in Keras (``build`` / ``call`` / ``get_config``); ``call``
  gets channels-last torch tensors.

>>> conv = Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1))
>>> conv.input_shape, conv.build(conv.input_shape), [w.shape for w in conv.get_weights()]
((1, 28, 28), (32, 26, 26), [(3, 3, 1, 32), (32,)])
>>> Conv2D(32, 3, input_shape=(1, 28, 28))     # doctest: +ELLIPSIS
Traceback (most recent call last):
...
cnnlab.core.errors.ShapeError: Conv2D: input_shape (1, 28, 28) looks channels-first; Keras shapes are (H, W, C) ...
>>> Dense(10, kernel_regularizer="l2")        # doctest: +ELLIPSIS
Traceback (most recent call last):
...
cnnlab.core.errors.ConfigError: Dense: kernel_regularizer is not supported. Received: kernel_regularizer='l2'. Fix: ...
"""

from __future__ import annotations

import difflib
import inspect
import math
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

import cnnlab.layers as cl
from cnnlab.core.errors import ConfigError, ShapeError
from cnnlab.core.registry import Registry
from cnnlab.keras import initializers
from cnnlab.keras import preprocessing_layers as pl
from cnnlab.keras.weight_lists import as_arrays, assign_weights
from cnnlab.layers.base import Shape, SymbolicTensor

#: Every Keras layer class by name: saved models are rebuilt through it.
KERAS_LAYERS: Registry[type[KerasLayer]] = Registry("Keras layer")

_WEIGHT_DECAY = "weight decay: optimizers.AdamW(weight_decay=...)"
_NO_CONSTRAINTS = "drop it (cnnlab.keras has no weight constraints)"
# Keras arguments with no cnnlab counterpart: the values that mean "Keras' default" (accepted), and the fix.
_UNSUPPORTED: dict[str, tuple[tuple[Any, ...], str]] = {
    "kernel_regularizer": ((None,), _WEIGHT_DECAY),
    "bias_regularizer": ((None,), _WEIGHT_DECAY),
    "depthwise_regularizer": ((None,), _WEIGHT_DECAY),
    "pointwise_regularizer": ((None,), _WEIGHT_DECAY),
    "beta_regularizer": ((None,), _WEIGHT_DECAY),
    "gamma_regularizer": ((None,), _WEIGHT_DECAY),
    "activity_regularizer": ((None,), "Dropout or BatchNormalization layers"),
    "kernel_constraint": ((None,), _NO_CONSTRAINTS),
    "bias_constraint": ((None,), _NO_CONSTRAINTS),
    "depthwise_constraint": ((None,), _NO_CONSTRAINTS),
    "pointwise_constraint": ((None,), _NO_CONSTRAINTS),
    "beta_constraint": ((None,), _NO_CONSTRAINTS),
    "gamma_constraint": ((None,), _NO_CONSTRAINTS),
    "bias_initializer": (("zeros",), "bias_initializer='zeros' (Keras' default)"),
    "beta_initializer": (("zeros",), "beta_initializer='zeros' (Keras' default)"),
    "gamma_initializer": (("ones",), "gamma_initializer='ones' (Keras' default)"),
    "moving_mean_initializer": (("zeros",), "the default 'zeros'"),
    "moving_variance_initializer": (("ones",), "the default 'ones'"),
    "dtype": ((None, "float32"), "drop dtype: cnnlab layers compute in float32"),
    "noise_shape": ((None,), "SpatialDropout2D to drop whole channels"),
    "seed": ((None,), "drop seed: dropout masks follow torch.manual_seed"),
    "output_padding": ((None,), "padding='same' or 'valid' (output_padding is chosen from them)"),
    "synchronized": ((False,), "drop synchronized (one process trains)"),
    "alpha_regularizer": ((None,), _WEIGHT_DECAY),
    "alpha_constraint": ((None,), _NO_CONSTRAINTS),
    "batch_size": ((None,), "drop batch_size: a model takes batches of any size"),
    "sparse": ((None, False), "dense arrays"),
    "tensor": ((None,), "call layers on Input(shape=...)"),
}
KERNEL_INITIALIZER_ARGS = ("kernel_initializer", "depthwise_initializer")
DRAWN_AS_KERAS = ("glorot_uniform", "he_uniform")
"""The initializer names cnnlab's layers draw exactly as Keras does; the normal ones (``'he_normal'``, ...) come
from :mod:`cnnlab.keras.initializers`, which truncates at 2 standard deviations as Keras does (torch does not)."""


def _kernel_initializer(config: dict[str, Any]) -> Any:
    """The kernel initializer of a Keras ``config`` when cnnlab's layer cannot take it by name (an object such
    as ``glorot_uniform(seed=0)``, a function, or a name cnnlab's layer draws otherwise): set on the kernel after
    the layer builds, and kept in ``config`` in Keras' saved form. ``None`` when the cnnlab layer takes it as it
    is (:data:`DRAWN_AS_KERAS`)."""
    keys = [k for k in KERNEL_INITIALIZER_ARGS if k in config]
    if not keys or (isinstance(config[keys[0]], str) and config[keys[0]] in DRAWN_AS_KERAS):
        return None
    init = initializers.get(config[keys[0]])
    if isinstance(init, initializers.Initializer):
        config[keys[0]] = initializers.serialize(init)
    return init


# Handled for every layer: the name, the freeze flag, the input shape and the layout.
_COMMON = ("name", "trainable", "input_shape", "batch_input_shape", "input_dim", "data_format")


# ----- shapes ----------------------------------------------------------------------------------
def channels_first(shape: Shape) -> Shape:
    """A per-sample Keras shape ``(..., C)`` in cnnlab's order ``(C, ...)`` (flat shapes stay).

    >>> channels_first((28, 28, 1)), channels_first((100, 2)), channels_first((784,))
    ((1, 28, 28), (2, 100), (784,))
    """
    return (shape[-1], *shape[:-1]) if len(shape) > 1 else tuple(shape)


def channels_last(shape: Shape) -> Shape:
    """A per-sample cnnlab shape ``(C, ...)`` in Keras' order ``(..., C)``.

    >>> channels_last((32, 26, 26))
    (26, 26, 32)
    """
    return (*shape[1:], shape[0]) if len(shape) > 1 else tuple(shape)


def keras_shape(shape: Any, where: str, what: str = "input_shape") -> Shape:
    """Check a per-sample Keras shape (fixed positive sizes, channels-last) and return it as a tuple.

    A rank-3 or rank-4 shape whose first size is 1 or 3 and last size above 4, such as ``(1, 28, 28)``
    or ``(3, 32, 32)``, looks channels-first (a grey or RGB image with the channels in front) and is refused.

    >>> keras_shape(784, "Dense"), keras_shape([32, 32, 3], "Conv2D")
    ((784,), (32, 32, 3))
    """
    values = (shape,) if isinstance(shape, int) else tuple(shape) if isinstance(shape, Sequence) else None
    if not values or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in values):
        raise ConfigError(
            f"{where}: {what} must be fixed positive sizes without the batch axis. Received: {what}={shape!r}",
            fix="give the per-sample shape channels-last, e.g. (28, 28, 1); variable sizes (None) are not supported",
        )
    if len(values) in (3, 4) and values[0] in (1, 3) and values[-1] > 4:
        raise ShapeError(
            f"{where}: {what} {values} looks channels-first; Keras shapes are (H, W, C) "
            f"(a first size of 1 or 3 with a last size above 4 reads as channels in front)",
            fix=f"use {(*values[1:], values[0])}",
        )
    return values


# ----- the Keras face shared by every layer ----------------------------------------------------
class KerasLayer:
    """Mixin over a cnnlab layer: Keras arguments in, Keras weights out, ``trainable``.

    ``keras_args`` is the order of Keras' positional arguments; subclasses translate arguments that
    differ from the cnnlab layer's in :meth:`_translate`.
    """

    keras_args: ClassVar[tuple[str, ...]] = ()
    _trainable: bool = True
    _kernel_init: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        if len(args) > len(cls.keras_args):
            raise ConfigError(
                f"{cls.__name__} takes at most {len(cls.keras_args)} positional arguments "
                f"({', '.join(cls.keras_args)}); received {len(args)}",
                fix="pass the others by keyword",
            )
        config = dict(zip(cls.keras_args, args, strict=False))
        for key, value in kwargs.items():
            if key in config:
                raise ConfigError(f"{cls.__name__}: {key} was given twice", fix="pass it once")
            config[key] = value
        trainable = config.get("trainable", True)
        if not isinstance(trainable, bool):
            raise ConfigError(f"{cls.__name__}: trainable must be True or False. Received: {trainable!r}")
        kernel_init = _kernel_initializer(config)
        arguments = {k: v for k, v in config.items() if kernel_init is None or k not in KERNEL_INITIALIZER_ARGS}
        object.__setattr__(self, "_kernel_init", kernel_init)  # before the layer may build in its __init__
        super().__init__(**cls._cnnlab_arguments(arguments))
        self.keras_config = config
        self.trainable = trainable

    @classmethod
    def _cnnlab_arguments(cls, config: dict[str, Any]) -> dict[str, Any]:
        """The cnnlab layer's arguments for the Keras ``config`` (checked; unsupported ones refused)."""
        name = cls.__name__
        config.pop("trainable", None)
        for key in [k for k in config if k in _UNSUPPORTED]:
            accepted, fix = _UNSUPPORTED[key]
            if config[key] not in accepted:
                raise ConfigError(f"{name}: {key} is not supported. Received: {key}={config[key]!r}", fix=f"use {fix}")
            del config[key]
        data_format = config.pop("data_format", None)
        if data_format not in (None, "channels_last"):
            raise ConfigError(
                f"{name}: cnnlab.keras uses Keras' channels-last layout only. Received: data_format={data_format!r}",
                fix="drop data_format and give shapes as (H, W, C), arrays as (N, H, W, C); "
                "for channels-first layers use cnnlab.layers",
            )
        shape = config.pop("input_shape", None)
        batch_shape = config.pop("batch_input_shape", None)
        input_dim = config.pop("input_dim", None)
        if batch_shape is not None:
            shape = tuple(batch_shape)[1:]
        elif input_dim is not None:
            shape = (input_dim,)
        arguments = cls._translate(config)
        if shape is not None:
            arguments["input_shape"] = channels_first(keras_shape(shape, name))
        known = _parent_arguments(cls)
        for key in arguments:
            if key not in known:
                choices = sorted({*known, *cls.keras_args, *_COMMON} - {"self"})
                close = difflib.get_close_matches(key, choices, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(f"{name} has no argument '{key}'{hint}", fix=f"known arguments: {', '.join(choices)}")
        return arguments

    @classmethod
    def _translate(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Keras-only arguments of this layer -> the cnnlab layer's (default: the same names)."""
        return config

    # ----- freezing -----------------------------------------------------------------------------
    @property
    def trainable(self) -> bool:
        """Whether ``fit`` updates this layer's weights (Keras' ``layer.trainable``)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        self._apply_trainable()

    def _apply_trainable(self) -> None:
        for p in self.parameters():
            p.requires_grad_(self._trainable)

    def create(self, input_shape: Any) -> None:
        super().create(input_shape)
        self._apply_trainable()

    def build(self, input_shape: Any) -> Any:
        first = not self.built
        out = super().build(input_shape)
        if first and self.built and self._kernel_init is not None:  # kernels (2+ axes) in Keras' layout
            with torch.no_grad():
                for weight in (w for w in self._keras_weights() if w.dim() >= 2):
                    weight.copy_(_initial_values(tuple(weight.shape), self._kernel_init))
        return out

    # ----- the graph: the tensors of the layer's first call -----------------------------------------
    def _call_symbolic(self, inputs: Any) -> SymbolicTensor:
        out = super()._call_symbolic(inputs)  # type: ignore[misc]
        if self.__dict__.get("_first_output") is None:
            self._first_output = out
        return out

    @property
    def output(self) -> SymbolicTensor:
        """The tensor the layer's first call in a graph returned (Keras' ``layer.output``): a functional model's
        layers, and a built ``Sequential``'s, have one, so ``Model(model.input, [layer.output for layer in
        model.layers[:4]])`` makes a model that returns the activations of the first four layers.

        >>> from cnnlab.keras import Sequential
        >>> model = Sequential([Input(shape=(8, 8, 1)), Conv2D(2, 3), Flatten()])
        >>> model.layers[0].output.shape        # cnnlab's channels-first per-sample shape
        (2, 6, 6)
        """
        out = self.__dict__.get("_first_output")
        if out is None:
            raise ConfigError(
                f"The layer {self.name or type(self).__name__} has never been called and thus has no defined output",
                fix="call it on a tensor of a functional graph (y = layer(x)), or give its Sequential an input shape "
                "(Input(shape=...) first, or input_shape= on the first layer)",
            )
        return out

    @output.setter
    def output(self, value: SymbolicTensor) -> None:  # Input's own tensor
        self._first_output = value

    @property
    def input(self) -> SymbolicTensor | list[SymbolicTensor]:
        """The tensor (a list for ``Add`` / ``Concatenate``) of the layer's first call (Keras' ``layer.input``)."""
        parents = self.output.parents
        if not parents:  # an Input is its own input
            return self.output
        return list(parents) if self.multi_input else parents[0]  # type: ignore[attr-defined]

    # ----- weights in Keras' layouts --------------------------------------------------------------
    def _keras_weights(self) -> list[torch.Tensor]:
        """Views of the weights in Keras' order and layouts (empty before the layer is built)."""
        return []

    @property
    def weights(self) -> list[torch.Tensor]:
        """The weights in Keras' layouts (torch views: writing to them writes the layer's weights)."""
        return self._keras_weights()

    @property
    def trainable_weights(self) -> list[torch.Tensor]:
        """The weights ``fit`` updates."""
        return [w for w in self._keras_weights() if w.requires_grad]

    @property
    def non_trainable_weights(self) -> list[torch.Tensor]:
        """Frozen weights and BatchNormalization's moving statistics."""
        return [w for w in self._keras_weights() if not w.requires_grad]

    def get_weights(self) -> list[np.ndarray]:
        """The weights as numpy arrays in Keras' layouts (copies)."""
        return as_arrays(self._keras_weights())

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set the weights from arrays in Keras' layouts (the order and shapes of :meth:`get_weights`)."""
        weights = list(weights)
        if weights and not self.built:
            raise ShapeError(
                f"{self.label}: cannot set weights before the layer is built", fix="give input_shape first"
            )
        assign_weights(self.label, self._keras_weights(), weights)

    def count_params(self) -> int:
        """Number of weight values, moving statistics included (Keras' count)."""
        if not self.built:
            raise ShapeError(f"{self.label}: count_params needs a built layer", fix="give input_shape first")
        return sum(w.numel() for w in self._keras_weights())

    def get_config(self) -> dict[str, Any]:
        """The Keras arguments as given (shapes channels-last), the name and the freeze flag."""
        config: dict[str, Any] = {"layer": type(self).__name__, **self.keras_config}
        config["name"] = self.name
        config["trainable"] = self.trainable
        return config


def _parent_arguments(cls: type) -> set[str]:
    """The argument names of the cnnlab layer under a Keras class."""
    parent = next(c for c in cls.__mro__ if issubclass(c, cl.Layer) and not issubclass(c, KerasLayer))
    return set(inspect.signature(parent.__init__).parameters) - {"self"}


def _register(cls: type[KerasLayer]) -> type[KerasLayer]:
    KERAS_LAYERS.add(cls.__name__, cls)
    return cls


def layer_from_config(config: dict[str, Any]) -> KerasLayer:
    """Rebuild a layer from :meth:`KerasLayer.get_config`.

    >>> layer_from_config(Dense(4, activation="relu").get_config()).activation
    'relu'
    """
    cls = KERAS_LAYERS.get(str(config["layer"]))
    return cls(**{k: v for k, v in config.items() if k != "layer"})


def _bias(module: torch.nn.Module) -> list[torch.Tensor]:
    return [] if module.bias is None else [module.bias]


def _kernel(weight: torch.Tensor) -> torch.Tensor:
    """A torch conv kernel ``(out, in, *k)`` (transposed conv: ``(in, out, *k)``) as Keras' ``(*k, in, out)``."""
    return weight.permute(*range(2, weight.dim()), 1, 0)


def _depthwise_kernel(weight: torch.Tensor, multiplier: int) -> torch.Tensor:
    """A depthwise torch kernel ``(C * m, 1, kh, kw)`` as Keras' ``(kh, kw, C, m)``."""
    return weight[:, 0].unflatten(0, (-1, multiplier)).permute(2, 3, 0, 1)


# ----- core layers -----------------------------------------------------------------------------
_DENSE_ARGS = (
    "units",
    "activation",
    "use_bias",
    "kernel_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "bias_constraint",
)


@_register
class Dense(KerasLayer, cl.Dense):
    """``Dense(units, activation=None, use_bias=True, kernel_initializer='glorot_uniform')``; kernel ``(in, out)``.

    >>> Dense(512, activation="relu", input_dim=784).input_shape
    (784,)
    """

    keras_args = _DENSE_ARGS

    def _keras_weights(self) -> list[torch.Tensor]:
        return [self.linear.weight.t(), *_bias(self.linear)] if self.built else []


@_register
class Flatten(KerasLayer, cl.Flatten):
    """Flatten in Keras' ``(H, W, C)`` order (a ``Dense`` after it has Keras' weight layout).

    >>> import torch
    >>> Flatten()(torch.arange(8.0).reshape(1, 2, 2, 2)).tolist()      # NCHW in, HWC order out
    [[0.0, 4.0, 1.0, 5.0, 2.0, 6.0, 3.0, 7.0]]
    """

    keras_args = ("data_format",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x.movedim(1, -1), 1)  # (N, C, H, W) -> (N, H, W, C) -> (N, H*W*C)


class _ChannelsLastReshape(cl.Layer):
    """Reshape to a per-sample ``target_shape`` read channels-last (Keras' meaning) on channels-first tensors."""

    def __init__(
        self, target_shape: int | Sequence[int], *, name: str | None = None, input_shape: Sequence[int] | None = None
    ) -> None:
        super().__init__(name=name, input_shape=input_shape)
        target = (target_shape,) if isinstance(target_shape, int) else tuple(target_shape)
        if not target or not all(isinstance(n, int) and (n >= 1 or n == -1) for n in target) or target.count(-1) > 1:
            raise ConfigError(
                "Reshape: target_shape must be positive sizes (one may be -1). "
                f"Received: target_shape={target_shape!r}",
                fix="e.g. Reshape((7, 7, 64)), channels-last, without the batch axis",
            )
        self.target_shape = target

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        total, known = math.prod(input_shape), math.prod(n for n in self.target_shape if n != -1)
        fits = total % known == 0 if -1 in self.target_shape else total == known
        if not fits:
            self.fail(
                f"cannot reshape {math.prod(input_shape)} values (input {channels_last(input_shape)}) "
                f"to {self.target_shape}",
                fix="the target must hold as many values as the input",
            )
        return channels_first(tuple(total // known if n == -1 else n for n in self.target_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert self.output_shape is not None
        if x.dim() > 2:
            x = x.movedim(1, -1)  # to channels-last, where the target shape is meant
        x = x.reshape(len(x), *channels_last(self.output_shape))
        return x.movedim(-1, 1) if x.dim() > 2 else x


@_register
class Reshape(KerasLayer, _ChannelsLastReshape):
    """``Reshape(target_shape)`` with a channels-last target, e.g. ``Reshape((7, 7, 64))`` after ``Dense(7*7*64)``.

    >>> Reshape((7, 7, 64)).build((3136,))
    (64, 7, 7)
    """

    keras_args = ("target_shape",)


@_register
class Dropout(KerasLayer, cl.Dropout):
    """``Dropout(rate)``."""

    keras_args = ("rate", "noise_shape", "seed")


@_register
class SpatialDropout2D(KerasLayer, cl.SpatialDropout2D):
    """``SpatialDropout2D(rate)``: drops whole channels."""

    keras_args = ("rate", "data_format", "seed")


@_register
class BatchNormalization(KerasLayer, cl.BatchNormalization):
    """``BatchNormalization(axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True)`` over the channels.

    Keras' ``momentum`` (the weight of the old moving average) is torch's ``1 - momentum``. Weights:
    ``[gamma, beta, moving_mean, moving_variance]`` (gamma only with ``scale``, beta only with ``center``).

    >>> bn = BatchNormalization(input_shape=(4, 4, 8))
    >>> _ = bn.build(bn.input_shape)
    >>> [w.shape for w in bn.get_weights()], bn.count_params()
    ([(8,), (8,), (8,), (8,)], 32)
    """

    keras_args = (
        "axis",
        "momentum",
        "epsilon",
        "center",
        "scale",
        "beta_initializer",
        "gamma_initializer",
        "moving_mean_initializer",
        "moving_variance_initializer",
        "beta_regularizer",
        "gamma_regularizer",
        "beta_constraint",
        "gamma_constraint",
        "synchronized",
    )

    @classmethod
    def _translate(cls, config: dict[str, Any]) -> dict[str, Any]:
        axis = config.pop("axis", -1)
        if isinstance(axis, bool) or not isinstance(axis, int) or axis == 0:
            raise ConfigError(
                f"BatchNormalization: axis must be a non-zero int (0 is the batch axis). Received: axis={axis!r}",
                fix="use axis=-1 (the C of (H, W, C))",
            )
        return config  # checked against the input rank in build: axis=3 of (N, H, W, C) is the channel axis

    def build(self, input_shape: Any) -> Shape:
        rank = len(input_shape)  # per-sample axes
        axis = self.keras_config.get("axis", -1)
        if (axis + rank + 1 if axis < 0 else axis) != rank:
            self.fail(
                f"normalises the channel axis only; axis={axis} of inputs with {rank + 1} axes (batch included) "
                f"is not their last",
                fix=f"use axis=-1 (or {rank}: the C of {channels_last(tuple(input_shape))})",
            )
        return super().build(input_shape)

    def _keras_weights(self) -> list[torch.Tensor]:
        if not self.built:
            return []
        bn = self.bn
        affine = [*([bn.weight] if self.scale else []), *([bn.bias] if self.center else [])]
        return [*affine, bn.running_mean, bn.running_var]

    def _apply_trainable(self) -> None:
        super()._apply_trainable()
        if self.built and self.bn.affine:  # gamma without scale, beta without center: fixed at 1 and 0
            self.bn.weight.requires_grad_(self._trainable and self.scale)
            self.bn.bias.requires_grad_(self._trainable and self.center)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._trainable or not self.training:
            return super().forward(x)
        # Keras: a frozen BatchNormalization runs in inference mode (moving statistics, no updates).
        bn = self.bn
        return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


@_register
class Activation(KerasLayer, cl.Activation):
    """``Activation('relu')`` and the other names of :data:`cnnlab.layers.ACTIVATIONS`."""

    keras_args = ("activation",)


class _KerasReLU(cl.Layer):
    """Keras' ``relu(x, negative_slope, max_value, threshold)`` as a layer (any layout: it is element-wise)."""

    def __init__(
        self,
        max_value: float | None = None,
        negative_slope: float = 0.0,
        threshold: float = 0.0,
        *,
        name: str | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__(name=name, input_shape=input_shape)
        for what, value in (("max_value", max_value), ("negative_slope", negative_slope), ("threshold", threshold)):
            if (value is None and what != "max_value") or (value is not None and not value >= 0):
                raise ConfigError(f"ReLU: {what} must be a number >= 0. Received: {what}={value!r}", fix="e.g. 0.0")
        self.max_value, self.negative_slope, self.threshold = max_value, float(negative_slope), float(threshold)
        plain = not self.negative_slope and not self.threshold
        #: ``'relu'`` / ``'relu6'`` for the plain forms (what a model's loss looks at), else None.
        self.activation = ("relu" if max_value is None else "relu6" if max_value == 6 else None) if plain else None

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        slope, top, threshold = self.negative_slope, self.max_value, self.threshold
        if slope and top is None and not threshold:
            return F.leaky_relu(x, slope)
        negative = F.relu(threshold - x) if slope else None  # Keras' formula, step by step
        if threshold:
            out = torch.where(x > threshold, x, torch.zeros_like(x))
        elif top == 6:
            out, top = F.relu6(x), None
        else:
            out = F.relu(x)
        if top is not None:
            out = out.clamp(0.0, float(top))
        return out if negative is None else out - slope * negative


@_register
class ReLU(KerasLayer, _KerasReLU):
    """``ReLU(max_value=None, negative_slope=0.0, threshold=0.0)``: Keras' formula; ``ReLU(6.0)`` is ReLU6.

    >>> ReLU(max_value=6.0).activation
    'relu6'
    >>> ReLU(max_value=1.0, negative_slope=0.1, threshold=0.5)(torch.tensor([[-2.0, 0.0, 1.5]])).tolist()
    [[-0.25, -0.05000000074505806, 1.0]]
    """

    keras_args = ("max_value", "negative_slope", "threshold")


class _LeakyReLU(cl.Layer):
    def __init__(
        self, negative_slope: float = 0.3, *, name: str | None = None, input_shape: Sequence[int] | None = None
    ) -> None:
        super().__init__(name=name, input_shape=input_shape)
        if negative_slope is None or not negative_slope >= 0:
            raise ConfigError(
                f"LeakyReLU: negative_slope must be a number >= 0. Received: negative_slope={negative_slope!r}",
                fix="e.g. LeakyReLU(negative_slope=0.3) (Keras' default)",
            )
        self.negative_slope = float(negative_slope)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.negative_slope)


@_register
class LeakyReLU(KerasLayer, _LeakyReLU):
    """``LeakyReLU(negative_slope=0.3)`` (Keras 3's default; the ``'leaky_relu'`` activation string uses 0.2).

    Keras 2's ``alpha=`` still works, with Keras 3's deprecation warning.

    >>> LeakyReLU()(torch.tensor([[-10.0, 5.0]])).tolist()
    [[-3.0, 5.0]]
    """

    keras_args = ("negative_slope",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "alpha" in kwargs:  # Keras 3.15: accepted, with this warning; it wins over negative_slope
            warnings.warn("Argument `alpha` is deprecated. Use `negative_slope` instead.", stacklevel=2)
            args, kwargs["negative_slope"] = (), kwargs.pop("alpha")
        super().__init__(*args, **kwargs)


class _ELU(cl.Layer):
    def __init__(
        self, alpha: float = 1.0, *, name: str | None = None, input_shape: Sequence[int] | None = None
    ) -> None:
        super().__init__(name=name, input_shape=input_shape)
        self.alpha = float(alpha)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.elu(x, self.alpha)


@_register
class ELU(KerasLayer, _ELU):
    """``ELU(alpha=1.0)``: ``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``.

    >>> round(ELU()(torch.tensor([[-2.0]])).item(), 6)
    -0.864665
    """

    keras_args = ("alpha",)


class _PReLU(cl.Layer):
    def __init__(
        self,
        alpha_initializer: str = "zeros",
        shared_axes: int | Sequence[int] | None = None,
        *,
        name: str | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__(name=name, input_shape=input_shape)
        if str(alpha_initializer).lower() not in ("zeros", "ones"):
            raise ConfigError(
                f"PReLU: alpha_initializer must be 'zeros' or 'ones'. Received: {alpha_initializer!r}",
                fix="drop it (Keras' default 'Zeros')",
            )
        self.alpha_initializer = str(alpha_initializer).lower()
        axes = [] if shared_axes is None else [shared_axes] if isinstance(shared_axes, int) else list(shared_axes)
        self.shared_axes = axes

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        rank = len(input_shape)
        if any(not isinstance(a, int) or not 1 <= a <= rank for a in self.shared_axes):
            self.fail(f"shared_axes {self.shared_axes} must be axes 1..{rank} of its (batch, ..., channels) input")
        return input_shape

    def create(self, input_shape: Shape) -> None:
        shape = list(channels_last(input_shape))  # Keras' layout: (H, W, C), (steps, C) or (units,)
        for axis in self.shared_axes:
            shape[axis - 1] = 1
        fill = torch.zeros if self.alpha_initializer == "zeros" else torch.ones
        self.alpha = torch.nn.Parameter(fill(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha.movedim(-1, 0) if self.alpha.dim() > 1 else self.alpha  # channels-first, as x
        return F.relu(x) - alpha * F.relu(-x)


@_register
class PReLU(KerasLayer, _PReLU):
    """``PReLU(alpha_initializer='zeros', shared_axes=None)``: a learned slope per value (Keras' layout,
    e.g. ``(H, W, C)``), shared along ``shared_axes`` (``[1, 2]``: one slope per channel).

    >>> layer = PReLU(shared_axes=[1, 2], input_shape=(4, 4, 3))
    >>> _ = layer.build(layer.input_shape)
    >>> [w.shape for w in layer.get_weights()]
    [(1, 1, 3)]
    """

    keras_args = ("alpha_initializer", "alpha_regularizer", "alpha_constraint", "shared_axes")

    def _keras_weights(self) -> list[torch.Tensor]:
        return [self.alpha] if self.built else []


@_register
class Softmax(KerasLayer, cl.Activation):
    """``Softmax()`` over the channel axis (Keras' ``axis=-1``)."""

    keras_args = ("axis",)

    @classmethod
    def _translate(cls, config: dict[str, Any]) -> dict[str, Any]:
        axis = config.pop("axis", -1)
        if axis != -1:
            raise ConfigError(f"Softmax works over the channel axis only. Received: axis={axis!r}", fix="axis=-1")
        return {**config, "activation": "softmax"}


@_register
class Rescaling(KerasLayer, cl.Rescaling):
    """``Rescaling(scale, offset=0.0)``, e.g. ``Rescaling(1 / 255)``."""

    keras_args = ("scale", "offset")


@_register
class ZeroPadding2D(KerasLayer, cl.ZeroPadding2D):
    """``ZeroPadding2D(padding)``: an int, ``(h, w)`` or ``((top, bottom), (left, right))``."""

    keras_args = ("padding", "data_format")


@_register
class UpSampling2D(KerasLayer, cl.UpSampling2D):
    """``UpSampling2D(size=(2, 2), interpolation='nearest')``."""

    keras_args = ("size", "data_format", "interpolation")


# ----- convolutions ----------------------------------------------------------------------------
_CONV_ARGS = (
    "filters",
    "kernel_size",
    "strides",
    "padding",
    "data_format",
    "dilation_rate",
    "groups",
    "activation",
    "use_bias",
    "kernel_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "bias_constraint",
)


class _KerasConv(KerasLayer):
    keras_args = _CONV_ARGS

    def _keras_weights(self) -> list[torch.Tensor]:
        return [_kernel(self.conv.weight), *_bias(self.conv)] if self.built else []


@_register
class Conv1D(_KerasConv, cl.Conv1D):
    """``Conv1D(filters, kernel_size, ...)`` on ``(steps, channels)``; kernel ``(k, in, out)``.

    >>> Conv1D(8, 5, input_shape=(100, 1)).input_shape
    (1, 100)
    """


@_register
class Conv2D(_KerasConv, cl.Conv2D):
    """``Conv2D(filters, kernel_size, strides=1, padding='valid', dilation_rate=1, groups=1, activation=None,
    use_bias=True, kernel_initializer='glorot_uniform')``; kernel ``(kh, kw, in, out)``."""


@_register
class Conv3D(_KerasConv, cl.Conv3D):
    """``Conv3D(filters, kernel_size, ...)`` on ``(D, H, W, C)``; kernel ``(kd, kh, kw, in, out)``."""


@_register
class Conv2DTranspose(_KerasConv, cl.Conv2DTranspose):
    """``Conv2DTranspose(filters, kernel_size, strides=1, padding='valid')``; kernel ``(kh, kw, out, in)``."""

    keras_args = (
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "output_padding",
        "data_format",
        "dilation_rate",
        "activation",
        "use_bias",
        "kernel_initializer",
        "bias_initializer",
        "kernel_regularizer",
        "bias_regularizer",
        "activity_regularizer",
        "kernel_constraint",
        "bias_constraint",
    )


@_register
class DepthwiseConv2D(KerasLayer, cl.DepthwiseConv2D):
    """``DepthwiseConv2D(kernel_size, strides=1, padding='valid', depth_multiplier=1)``; kernel ``(kh, kw, C, m)``.

    >>> layer = DepthwiseConv2D(3, depth_multiplier=2, input_shape=(8, 8, 4))
    >>> _ = layer.build(layer.input_shape)
    >>> [w.shape for w in layer.get_weights()]
    [(3, 3, 4, 2), (8,)]
    """

    keras_args = (
        "kernel_size",
        "strides",
        "padding",
        "depth_multiplier",
        "data_format",
        "dilation_rate",
        "activation",
        "use_bias",
        "depthwise_initializer",
        "bias_initializer",
        "depthwise_regularizer",
        "bias_regularizer",
        "activity_regularizer",
        "depthwise_constraint",
        "bias_constraint",
    )

    @classmethod
    def _translate(cls, config: dict[str, Any]) -> dict[str, Any]:
        if "depthwise_initializer" in config:
            config["kernel_initializer"] = config.pop("depthwise_initializer")
        return config

    def _keras_weights(self) -> list[torch.Tensor]:
        return [_depthwise_kernel(self.conv.weight, self.depth_multiplier), *_bias(self.conv)] if self.built else []


@_register
class SeparableConv2D(KerasLayer, cl.SeparableConv2D):
    """``SeparableConv2D(filters, kernel_size, ...)``; weights ``[depthwise (kh, kw, C, m), pointwise (1, 1, C*m,
    filters), bias]``.

    >>> layer = SeparableConv2D(16, 3, input_shape=(10, 10, 8))
    >>> _ = layer.build(layer.input_shape)
    >>> [w.shape for w in layer.get_weights()], layer.count_params()      # Keras: 8*9 + 8*16 + 16
    ([(3, 3, 8, 1), (1, 1, 8, 16), (16,)], 216)
    """

    keras_args = (
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "data_format",
        "dilation_rate",
        "depth_multiplier",
        "activation",
        "use_bias",
        "depthwise_initializer",
        "pointwise_initializer",
        "bias_initializer",
        "depthwise_regularizer",
        "pointwise_regularizer",
        "bias_regularizer",
        "activity_regularizer",
        "depthwise_constraint",
        "pointwise_constraint",
        "bias_constraint",
    )

    @classmethod
    def _translate(cls, config: dict[str, Any]) -> dict[str, Any]:
        depthwise = config.pop("depthwise_initializer", "glorot_uniform")
        pointwise = config.pop("pointwise_initializer", "glorot_uniform")
        if depthwise != pointwise:
            raise ConfigError(
                "SeparableConv2D: one initializer serves both kernels here. "
                f"Received: depthwise_initializer={depthwise!r}, pointwise_initializer={pointwise!r}",
                fix="give both the same value (or kernel_initializer=...)",
            )
        config.setdefault("kernel_initializer", depthwise)
        return config

    def _keras_weights(self) -> list[torch.Tensor]:
        if not self.built:
            return []
        depthwise = _depthwise_kernel(self.depthwise.weight, self.depth_multiplier)
        return [depthwise, _kernel(self.pointwise.weight), *_bias(self.pointwise)]


# ----- pooling ---------------------------------------------------------------------------------
_POOL_ARGS = ("pool_size", "strides", "padding", "data_format")
_GLOBAL_ARGS = ("data_format", "keepdims")


@_register
class MaxPooling1D(KerasLayer, cl.MaxPooling1D):
    """``MaxPooling1D(pool_size=2, strides=None, padding='valid')``."""

    keras_args = _POOL_ARGS


@_register
class MaxPooling2D(KerasLayer, cl.MaxPooling2D):
    """``MaxPooling2D(pool_size=(2, 2), strides=None, padding='valid')``."""

    keras_args = _POOL_ARGS


@_register
class MaxPooling3D(KerasLayer, cl.MaxPooling3D):
    """``MaxPooling3D(pool_size=(2, 2, 2), strides=None, padding='valid')``."""

    keras_args = _POOL_ARGS


@_register
class AveragePooling1D(KerasLayer, cl.AveragePooling1D):
    """``AveragePooling1D(pool_size=2, strides=None, padding='valid')``."""

    keras_args = _POOL_ARGS


@_register
class AveragePooling2D(KerasLayer, cl.AveragePooling2D):
    """``AveragePooling2D(pool_size=(2, 2), strides=None, padding='valid')``."""

    keras_args = _POOL_ARGS


@_register
class AveragePooling3D(KerasLayer, cl.AveragePooling3D):
    """``AveragePooling3D(pool_size=(2, 2, 2), strides=None, padding='valid')``."""

    keras_args = _POOL_ARGS


@_register
class GlobalAveragePooling1D(KerasLayer, cl.GlobalAveragePooling1D):
    """``GlobalAveragePooling1D(keepdims=False)``: ``(steps, C) -> (C,)``."""

    keras_args = _GLOBAL_ARGS


@_register
class GlobalAveragePooling2D(KerasLayer, cl.GlobalAveragePooling2D):
    """``GlobalAveragePooling2D(keepdims=False)``: ``(H, W, C) -> (C,)``."""

    keras_args = _GLOBAL_ARGS


@_register
class GlobalAveragePooling3D(KerasLayer, cl.GlobalAveragePooling3D):
    """``GlobalAveragePooling3D(keepdims=False)``: ``(D, H, W, C) -> (C,)``."""

    keras_args = _GLOBAL_ARGS


@_register
class GlobalMaxPooling1D(KerasLayer, cl.GlobalMaxPooling1D):
    """``GlobalMaxPooling1D(keepdims=False)``."""

    keras_args = _GLOBAL_ARGS


@_register
class GlobalMaxPooling2D(KerasLayer, cl.GlobalMaxPooling2D):
    """``GlobalMaxPooling2D(keepdims=False)``."""

    keras_args = _GLOBAL_ARGS


@_register
class GlobalMaxPooling3D(KerasLayer, cl.GlobalMaxPooling3D):
    """``GlobalMaxPooling3D(keepdims=False)``."""

    keras_args = _GLOBAL_ARGS


# ----- merging and the input -------------------------------------------------------------------
@_register
class Add(KerasLayer, cl.Add):
    """``Add()([a, b])``: the element-wise sum (a residual connection)."""


@_register
class Concatenate(KerasLayer, cl.Concatenate):
    """``Concatenate(axis=-1)([a, b])``: Keras' axis counts in ``(N, H, W, C)``, so -1 joins the channels.

    >>> a, b = Input((8, 8, 3)), Input((8, 8, 5))
    >>> channels_last(Concatenate()([a, b]).shape), channels_last(Concatenate(axis=1)([a, a]).shape)
    ((8, 8, 8), (16, 8, 3))
    """

    keras_args = ("axis",)

    @classmethod
    def _translate(cls, config: dict[str, Any]) -> dict[str, Any]:
        axis = config.pop("axis", -1)
        if isinstance(axis, bool) or not isinstance(axis, int) or axis == 0:
            raise ConfigError(
                f"Concatenate: axis must be a non-zero int (0 is the batch axis). Received: axis={axis!r}",
                fix="axis=-1 joins the channels",
            )
        return config  # the cnnlab axis depends on the input rank: set in build

    def build(self, input_shape: Any) -> Shape:
        rank = len(input_shape[0])  # per-sample axes
        axis = self.keras_config.get("axis", -1)
        position = axis + rank + 1 if axis < 0 else axis  # in (N, ..., C)
        if not 1 <= position <= rank:
            self.fail(f"axis={axis} is out of range for inputs with {rank + 1} axes (batch included)")
        self.axis = 1 if position == rank else position + 1  # channels are axis 1 of the channels-first tensor
        return super().build(input_shape)


@_register
class Input(KerasLayer, cl.Input):
    """``Input(shape=(H, W, C))``: the start of a functional model, or the first entry of a ``Sequential``.

    >>> Input(shape=(28, 28, 1)).shape      # cnnlab's channels-first per-sample shape
    (1, 28, 28)
    """

    keras_args = ("shape", "batch_size", "dtype", "sparse", "batch_shape", "name", "tensor")

    @classmethod
    def _translate(cls, config: dict[str, Any]) -> dict[str, Any]:
        shape, batch_shape = config.pop("shape", None), config.pop("batch_shape", None)
        if batch_shape is not None:
            shape = tuple(batch_shape)[1:]
        if shape is None:
            raise ConfigError("Input needs a shape", fix="e.g. Input(shape=(28, 28, 1))")
        return {**config, "shape": channels_first(keras_shape(shape, "Input", "shape"))}


@_register
class RandomFlip(KerasLayer, pl.RandomFlip):
    """Keras' ``RandomFlip(mode="horizontal_and_vertical", seed=None)``: active in training only."""

    keras_args = ("mode", "seed")


@_register
class RandomRotation(KerasLayer, pl.RandomRotation):
    """Keras' ``RandomRotation(factor, fill_mode="reflect", ...)``: ``factor`` in fractions of a full turn."""

    keras_args = ("factor", "fill_mode", "interpolation", "seed", "fill_value")


@_register
class RandomZoom(KerasLayer, pl.RandomZoom):
    """Keras' ``RandomZoom(height_factor, width_factor=None, ...)``: active in training only."""

    keras_args = ("height_factor", "width_factor", "fill_mode", "interpolation", "seed", "fill_value")


# ----- your own layers -------------------------------------------------------------------------
_HOOKS = ("build", "compute_output_shape")  # Keras' names that cnnlab's layer protocol also uses


class Layer(KerasLayer, cl.Layer):
    """``keras.layers.Layer``: the base of your own layers, written as in Keras.

    ``__init__(self, ..., **kwargs)`` calls ``super().__init__(**kwargs)`` (``name``, ``trainable``,
    ``input_shape``); ``build(self, input_shape)`` gets Keras' shape ``(None, H, W, C)`` and makes weights
    with :meth:`add_weight`; ``call(self, inputs)`` computes the output. ``call`` receives **torch tensors,
    channels-last as in Keras** (the layer transposes around it) and is written with torch operations
    (cnnlab has no ``keras.ops``); ``compute_output_shape`` is optional (without it, the output shape is
    measured on zeros). ``get_config`` follows Keras' pattern: ``super().get_config()`` plus your arguments,
    or nothing at all when the constructor arguments are plain values (recorded, as Keras 3 does).
    ``keras.models.load_model(path, custom_objects={"Scale": Scale})`` rebuilds it.

    >>> class Scale(Layer):
    ...     def __init__(self, factor=2.0, **kwargs):
    ...         super().__init__(**kwargs)
    ...         self.factor = factor
    ...     def build(self, input_shape):
    ...         self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")
    ...     def call(self, inputs):
    ...         return inputs * self.w * self.factor
    >>> layer = Scale(3.0, input_shape=(4, 4, 2))
    >>> layer.build(layer.input_shape), [w.shape for w in layer.get_weights()], layer.get_config()["factor"]
    ((2, 4, 4), [(2,)], 3.0)
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Layer:
        layer = super().__new__(cls)
        object.__setattr__(layer, "_auto_config", _auto_config(cls, args, kwargs))  # before nn.Module.__init__
        return layer

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A subclass's Keras build / compute_output_shape are kept as hooks; the names stay cnnlab's protocol.
        super().__init_subclass__(**kwargs)
        for hook in _HOOKS:
            if hook in cls.__dict__ and cls.__dict__[hook] is not getattr(Layer, hook):
                setattr(cls, f"_keras_{hook}", cls.__dict__[hook])
                setattr(cls, hook, getattr(Layer, hook))

    def __init__(
        self,
        *,
        name: str | None = None,
        trainable: bool = True,
        dtype: Any = None,
        input_shape: Any = None,
        batch_input_shape: Any = None,
        input_dim: int | None = None,
        **unknown: Any,
    ) -> None:
        cls = type(self).__name__
        if unknown:
            raise ConfigError(
                f"Unrecognized keyword arguments passed to {cls}: {unknown}",
                fix="take your own arguments in __init__ and pass only Keras' (name, trainable, ...) to super()",
            )
        if dtype not in (None, "float32") and not (
            isinstance(dtype, dict) and dtype.get("config", {}).get("name") == "float32"
        ):
            raise ConfigError(
                f"{cls}: dtype={dtype!r} is not supported", fix="drop dtype: cnnlab layers compute in float32"
            )
        if batch_input_shape is not None:
            input_shape = tuple(batch_input_shape)[1:]
        elif input_dim is not None:
            input_shape = (input_dim,)
        shape = None if input_shape is None else channels_first(keras_shape(input_shape, cls))
        cl.Layer.__init__(self, name=name, input_shape=shape)
        self.keras_config: dict[str, Any] = {}
        self._keras_variables = torch.nn.ParameterList()
        self._variable_trainable: list[bool] = []
        self._hook_stack: list[type] = []
        if not isinstance(trainable, bool):
            raise ConfigError(f"{cls}: trainable must be True or False. Received: {trainable!r}")
        self.trainable = trainable

    # ----- what you write ------------------------------------------------------------------------
    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        """The layer's computation on channels-last torch tensors (override it)."""
        raise NotImplementedError(f"Layer {type(self).__name__} does not have a `call()` method implemented.")

    def add_weight(
        self,
        shape: Sequence[int] | None = None,
        initializer: Any = None,
        dtype: Any = None,
        trainable: bool = True,
        name: str | None = None,
        regularizer: Any = None,
        constraint: Any = None,
        **unsupported: Any,
    ) -> torch.nn.Parameter:
        """A new weight in Keras' layout (``shape`` as you give it), kept with the layer and saved with it.

        ``initializer``: ``'glorot_uniform'`` (default), ``'glorot_normal'``, ``'he_normal'``, ``'he_uniform'``,
        ``'lecun_normal'``, ``'random_normal'``, ``'random_uniform'``, ``'zeros'``, ``'ones'``, or a function
        ``f(shape, dtype=None)`` returning the values.
        """
        _refuse_arguments(type(self).__name__, {"regularizer": regularizer, "constraint": constraint, **unsupported})
        if dtype not in (None, "float32", torch.float32):
            raise ConfigError(f"add_weight: dtype={dtype!r} is not supported", fix="float32 weights only")
        size = tuple(int(n) for n in (shape or ()))
        weight = torch.nn.Parameter(_initial_values(size, initializer), requires_grad=bool(trainable))
        self._keras_variables.append(weight)
        self._variable_trainable.append(bool(trainable))
        weight.requires_grad_(bool(trainable) and self._trainable)
        return weight

    # ----- cnnlab's layer protocol around Keras' hooks --------------------------------------------
    def build(self, input_shape: Any) -> Any:
        """cnnlab's build (a channels-first per-sample shape, returns the output shape), which runs your
        Keras ``build`` once with Keras' shape; from your ``build``, ``super().build(input_shape)`` is Keras'."""
        if self._hook_stack:
            return self._next_hook("build", input_shape)
        shape = tuple(int(n) for n in input_shape)
        if not self.built:
            if self.input_shape is not None and self.input_shape != shape:
                self.fail(
                    f"it was declared with input_shape={channels_last(self.input_shape)} but receives "
                    f"{channels_last(shape)}"
                )
            self._run_hook("build", (None, *channels_last(shape)))
            self.input_shape, self.built = shape, True
            self._apply_trainable()
        out = self.compute_output_shape(shape)
        if self.output_shape is None:
            self.output_shape = out
        return out

    def compute_output_shape(self, input_shape: Any) -> Any:
        """cnnlab's shape inference: your Keras ``compute_output_shape`` if you wrote one, else one pass on zeros."""
        if self._hook_stack:
            return self._next_hook("compute_output_shape", input_shape)
        shape = tuple(int(n) for n in input_shape)
        if self._find_hook("compute_output_shape", type(self).__mro__) is not None:
            keras_out = self._run_hook("compute_output_shape", (None, *channels_last(shape)))
            return channels_first(tuple(int(n) for n in tuple(keras_out)[1:]))
        with torch.no_grad():
            return tuple(self.forward(torch.zeros(1, *shape)).shape[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inputs = x.movedim(1, -1) if x.dim() > 2 else x  # channels-last for Keras code
        if "training" in inspect.signature(self.call).parameters:
            out = self.call(inputs, training=self.training)  # type: ignore[call-arg]
        else:
            out = self.call(inputs)
        return out.movedim(-1, 1) if out.dim() > 2 else out

    def _find_hook(self, hook: str, classes: Sequence[type]) -> type | None:
        return next((c for c in classes if f"_keras_{hook}" in c.__dict__), None)

    def _run_hook(self, hook: str, keras_shape_: Any, after: type | None = None) -> Any:
        mro = type(self).__mro__
        start = 0 if after is None else mro.index(after) + 1
        owner = self._find_hook(hook, mro[start:])
        if owner is None:
            return None if hook == "build" else keras_shape_
        self._hook_stack.append(owner)
        try:
            return owner.__dict__[f"_keras_{hook}"](self, keras_shape_)
        finally:
            self._hook_stack.pop()

    def _next_hook(self, hook: str, keras_shape_: Any) -> Any:
        """``super().build(shape)`` from a Keras hook: the next class's hook, or Keras' base (nothing)."""
        return self._run_hook(hook, keras_shape_, after=self._hook_stack[-1])

    # ----- weights and config ------------------------------------------------------------------------
    def _keras_weights(self) -> list[torch.Tensor]:
        inner = [w for child in self.children() if isinstance(child, KerasLayer) for w in child.weights]
        return [*self._keras_variables, *inner]

    def _apply_trainable(self) -> None:
        for weight, own in zip(self._keras_variables, self._variable_trainable, strict=True):
            weight.requires_grad_(self._trainable and own)
        for child in self.children():
            if isinstance(child, KerasLayer):
                child.trainable = self._trainable

    def get_config(self) -> dict[str, Any]:
        """Keras' base config (``name``, ``trainable``, ``dtype``); without your own ``get_config``, your
        constructor's arguments too (when they are plain values), as Keras 3 records them."""
        config: dict[str, Any] = {"name": self.name, "trainable": self.trainable, "dtype": "float32"}
        if type(self).get_config is not Layer.get_config:
            return config  # your get_config adds its arguments to this
        if self._auto_config is None:
            raise ConfigError(
                f"{type(self).__name__}: get_config() cannot be made from its constructor arguments "
                "(they are not plain numbers, strings, lists or dicts)",
                fix="define get_config() returning {**super().get_config(), 'argument': value, ...} (Keras' pattern)",
            )
        return {**config, **self._auto_config}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """``cls(**config)``, as Keras' default."""
        return cls(**config)


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return isinstance(value, dict) and all(isinstance(k, str) and _plain(v) for k, v in value.items())


def _as_plain(value: Any) -> Any:
    """Tuples become lists, as Keras' JSON config turns them."""
    if isinstance(value, list | tuple):
        return [_as_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_plain(v) for k, v in value.items()}
    return value


def _auto_config(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The constructor's arguments as given (``**kwargs`` merged), if they are all plain values."""
    try:
        bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
    except TypeError:
        return None
    config: dict[str, Any] = {}
    parameters = inspect.signature(cls.__init__).parameters
    for key, value in list(bound.arguments.items())[1:]:
        if parameters[key].kind is inspect.Parameter.VAR_KEYWORD:
            config.update(value)
        elif parameters[key].kind is not inspect.Parameter.VAR_POSITIONAL:
            config[key] = value
    return _as_plain(config) if _plain(config) else None


def _refuse_arguments(where: str, arguments: dict[str, Any]) -> None:
    for key, value in arguments.items():
        if value is not None:
            raise ConfigError(
                f"{where}: add_weight({key}=...) is not supported. Received: {value!r}", fix=f"drop {key}"
            )


def _initial_values(shape: tuple[int, ...], initializer: Any) -> torch.Tensor:
    """Values from a Keras initializer (:func:`cnnlab.keras.initializers.get`: a name, an object, a function)."""
    init = initializers.get("glorot_uniform" if initializer is None else initializer)
    assert init is not None
    return torch.as_tensor(np.asarray(init(shape, dtype="float32")), dtype=torch.float32).reshape(shape)


# Keras' other names for the same layers (``tf.keras.layers.MaxPool2D`` in the course's notebooks).
MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D
GlobalAvgPool1D, GlobalAvgPool2D, GlobalAvgPool3D = (
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
)
GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D
Convolution1D, Convolution2D, Convolution3D = Conv1D, Conv2D, Conv3D
Convolution2DTranspose = Conv2DTranspose
ALIASES = (
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
    "Convolution1D",
    "Convolution2D",
    "Convolution2DTranspose",
    "Convolution3D",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalAvgPool3D",
    "GlobalMaxPool1D",
    "GlobalMaxPool2D",
    "GlobalMaxPool3D",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
)

__all__ = [
    *ALIASES,
    "ELU",
    "KERAS_LAYERS",
    "Activation",
    "Add",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "BatchNormalization",
    "Concatenate",
    "Conv1D",
    "Conv2D",
    "Conv2DTranspose",
    "Conv3D",
    "Dense",
    "DepthwiseConv2D",
    "Dropout",
    "Flatten",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "Input",
    "KerasLayer",
    "Layer",
    "LeakyReLU",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "PReLU",
    "RandomFlip",
    "RandomRotation",
    "RandomZoom",
    "ReLU",
    "Rescaling",
    "Reshape",
    "SeparableConv2D",
    "Softmax",
    "SpatialDropout2D",
    "UpSampling2D",
    "ZeroPadding2D",
    "channels_first",
    "channels_last",
    "keras_shape",
    "layer_from_config",
]
