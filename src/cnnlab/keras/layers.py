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
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

import cnnlab.layers as cl
from cnnlab.core.errors import ConfigError, ShapeError
from cnnlab.core.registry import Registry
from cnnlab.keras import preprocessing_layers as pl
from cnnlab.layers.base import Shape

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
    "negative_slope": ((0, 0.0), "Activation('leaky_relu') (slope 0.2)"),
    "threshold": ((0, 0.0), "drop threshold (ReLU thresholds at 0)"),
    "batch_size": ((None,), "drop batch_size: a model takes batches of any size"),
    "sparse": ((None, False), "dense arrays"),
    "tensor": ((None,), "call layers on Input(shape=...)"),
}
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
        super().__init__(**cls._cnnlab_arguments(dict(config)))
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
        return [w.detach().cpu().numpy().copy() for w in self._keras_weights()]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set the weights from arrays in Keras' layouts (the order and shapes of :meth:`get_weights`)."""
        current, values = self._keras_weights(), [np.asarray(w) for w in weights]
        label = self.label
        if values and not self.built:
            raise ShapeError(f"{label}: cannot set weights before the layer is built", fix="give input_shape first")
        expected = [tuple(w.shape) for w in current]
        if [v.shape for v in values] != expected:
            raise ShapeError(
                f"{label}: set_weights expects {len(expected)} arrays of shapes {expected}; "
                f"received shapes {[v.shape for v in values]}",
                fix="pass what get_weights() returns, in Keras' layouts",
            )
        with torch.no_grad():
            for target, value in zip(current, values, strict=True):
                target.copy_(torch.as_tensor(value, dtype=target.dtype))

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
        if axis != -1:
            raise ConfigError(
                f"BatchNormalization normalises the channel axis only. Received: axis={axis!r}",
                fix="use axis=-1 (the C of (H, W, C))",
            )
        return config

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


@_register
class ReLU(KerasLayer, cl.Activation):
    """``ReLU()``, or ``ReLU(max_value=6.0)`` (ReLU6).

    >>> ReLU(max_value=6.0).activation
    'relu6'
    """

    keras_args = ("max_value", "negative_slope", "threshold")

    @classmethod
    def _translate(cls, config: dict[str, Any]) -> dict[str, Any]:
        max_value = config.pop("max_value", None)
        if max_value not in (None, 6, 6.0):
            raise ConfigError(f"ReLU: max_value must be None or 6. Received: max_value={max_value!r}", fix="ReLU(6.0)")
        return {**config, "activation": "relu" if max_value is None else "relu6"}


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


__all__ = [
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
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
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
