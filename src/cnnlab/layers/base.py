"""The Keras-style ``Layer`` base: argument checks, shape inference, symbolic calls and configs.

Layers are ``torch.nn.Module`` objects that work channels-first, like torch: a layer's
``input_shape`` and ``output_shape`` are per-sample shapes without the batch axis, for example
``(C, H, W)`` for images. A layer creates its torch modules when it learns its input shape: when
a model is built with a known input shape, or at the first call on a tensor.

Calling a layer on a :class:`SymbolicTensor` (what :class:`Input` provides) does not compute
anything: it checks and builds the layer and returns a new symbolic tensor, which is how the
functional ``cnnlab.sequential.Model`` records a graph.

>>> from cnnlab.layers import Conv2D
>>> x = Input(shape=(3, 32, 32))
>>> Conv2D(8, 3, strides=2, padding="same")(x).shape
(8, 16, 16)
>>> layer_from_config({"layer": "Conv2D", "filters": 4, "kernel_size": 3}).compute_output_shape((1, 28, 28))
(4, 26, 26)
"""

from __future__ import annotations

import difflib
import inspect
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias, TypeVar

import torch
from torch import nn

from cnnlab.core.errors import ConfigError, ShapeError
from cnnlab.core.registry import Registry

Shape: TypeAlias = tuple[int, ...]

#: Every Keras-style layer class by its class name: YAML specs and saved models are read through it.
LAYERS: Registry[type[Layer]] = Registry("layer")
L = TypeVar("L", bound="type[Layer]")


def register_layer(cls: L) -> L:
    """Class decorator: register a layer class under its own name in :data:`LAYERS`."""
    LAYERS.add(cls.__name__, cls)
    return cls


@dataclass(frozen=True, eq=False)
class SymbolicTensor:
    """The per-sample ``shape`` a ``layer`` produces from its ``parents`` in a functional graph."""

    shape: Shape
    layer: Layer
    parents: tuple[SymbolicTensor, ...] = ()

    def __repr__(self) -> str:
        return f"SymbolicTensor(shape={self.shape}, layer={self.layer.name or type(self.layer).__name__!r})"


class Layer(nn.Module, ABC):
    """Base class: subclasses check their arguments in ``__init__`` and implement
    :meth:`compute_output_shape` (check and infer), :meth:`create` (make the torch modules) and
    ``forward``.

    Every ``__init__`` argument is kept as an attribute of the same name, which is what
    :meth:`get_config` reads, so a layer can be rebuilt from its config.
    """

    #: True for layers that take a list of inputs (Add, Concatenate).
    multi_input: ClassVar[bool] = False

    def __init__(self, *, name: str | None = None, input_shape: Sequence[int] | None = None) -> None:
        super().__init__()
        self.name = name
        # Declared by the user, or the shape the layer was built for.
        self.input_shape: Shape | list[Shape] | None = None if input_shape is None else self._shape_arg(input_shape)
        self.output_shape: Shape | None = None
        self.built = False

    # ----- what subclasses implement -----------------------------------------------------------
    @abstractmethod
    def compute_output_shape(self, input_shape: Any) -> Shape:
        """The per-sample output shape for ``input_shape``; raises :class:`ShapeError` if impossible."""

    def create(self, input_shape: Any) -> None:
        """Create the torch modules and parameters for ``input_shape`` (layers without weights: nothing)."""

    # ----- building and calling ----------------------------------------------------------------
    def build(self, input_shape: Any) -> Shape:
        """Check ``input_shape``, create the weights on the first call, and return the output shape."""
        shape = (
            [tuple(int(n) for n in s) for s in input_shape] if self.multi_input else tuple(int(n) for n in input_shape)
        )
        if not self.built and self.input_shape is not None and self.input_shape != shape:
            self.fail(f"it was declared with input_shape={self.input_shape} but receives {shape}")
        out = self.compute_output_shape(shape)
        if not self.built:
            self.create(shape)
            self.input_shape, self.output_shape, self.built = shape, out, True
        return out

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        first = inputs[0] if isinstance(inputs, list | tuple) and inputs else inputs
        if isinstance(first, SymbolicTensor | Input):
            return self._call_symbolic(inputs)
        if not self.built:
            shapes = [tuple(t.shape[1:]) for t in inputs] if self.multi_input else tuple(inputs.shape[1:])
            self.build(shapes)
        return super().__call__(inputs, *args, **kwargs)

    def _call_symbolic(self, inputs: Any) -> SymbolicTensor:
        items = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
        if not self.multi_input and len(items) != 1:
            self.fail(f"takes one input, got a list of {len(items)}")
        parents = tuple(t.output if isinstance(t, Input) else t for t in items)
        shapes = [p.shape for p in parents]
        out = self.build(shapes if self.multi_input else shapes[0])
        return SymbolicTensor(out, self, parents)

    # ----- config ------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The layer as ``{"layer": class name, **constructor arguments}`` (plain YAML types)."""
        params = inspect.signature(type(self).__init__).parameters
        config: dict[str, Any] = {"layer": type(self).__name__}
        for key in params:
            if key != "self":
                config[key] = _plain(getattr(self, key))
        return config

    # ----- errors ------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """``Conv2D 'conv2d_1'`` once named by a model, else the class name."""
        return f"{type(self).__name__} '{self.name}'" if self.name else type(self).__name__

    def fail(self, problem: str, fix: str | None = None) -> None:
        """Raise a :class:`ShapeError` that names this layer."""
        raise ShapeError(f"{self.label}: {problem}", fix=fix)

    def _shape_arg(self, shape: Sequence[int]) -> Shape:
        if isinstance(shape, int) or not all(isinstance(n, int) and n >= 1 for n in shape):
            raise ConfigError(
                f"{type(self).__name__}: input_shape must be a tuple of positive ints. Received: input_shape={shape!r}",
                fix="give the per-sample shape channels-first, without the batch axis, e.g. (1, 28, 28)",
            )
        check_channels_first(tuple(shape))
        return tuple(shape)

    def extra_repr(self) -> str:
        return f"name={self.name!r}" if self.name else ""


@register_layer
class Input(Layer):
    """The model input: a per-sample, channels-first ``shape`` such as ``(1, 28, 28)``.

    In a ``Sequential`` list it sets the input shape; in the functional API ``Input(...)`` is the
    start of the graph (call layers on it). The forward pass is the identity.

    >>> Input(shape=(1, 28, 28)).output.shape
    (1, 28, 28)
    """

    def __init__(self, shape: Sequence[int], *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.shape = self._shape_arg(shape)
        self.build(self.shape)
        self.output = SymbolicTensor(self.shape, self)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if input_shape != self.shape:
            self.fail(f"expects per-sample shape {self.shape}, received {input_shape}")
        return self.shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def layer_from_config(config: dict[str, Any], where: str | None = None) -> Layer:
    """Build a layer from ``{"layer": "Conv2D", **arguments}`` (a YAML entry or :meth:`Layer.get_config`).

    >>> layer_from_config({"layer": "Dense", "units": 10, "activation": "softmax"}).units
    10
    """
    if not isinstance(config, dict) or "layer" not in config:
        raise ConfigError(
            f"a layer entry must be a mapping with a 'layer' key. Received: {config!r}",
            where=where,
            fix="write e.g. {layer: Conv2D, filters: 32, kernel_size: 3}",
        )
    cls = LAYERS.get(str(config["layer"]))
    kwargs = {k: v for k, v in config.items() if k != "layer"}
    known = [k for k in inspect.signature(cls.__init__).parameters if k != "self"]
    for key in kwargs:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"{cls.__name__} has no argument '{key}'{hint}", where=where, fix=f"known arguments: {', '.join(known)}"
            )
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required argument is missing
        raise ConfigError(f"{cls.__name__}: {exc}", where=where, fix=f"known arguments: {', '.join(known)}") from None


def snake_case(name: str) -> str:
    """Keras' default layer names: ``MaxPooling2D`` -> ``max_pooling2d``.

    >>> snake_case("Conv2DTranspose"), snake_case("BatchNormalization")
    ('conv2d_transpose', 'batch_normalization')
    """
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


# ----- argument checks shared by the layers ----------------------------------------------------
_ORDERS = {3: ("H, W, C", "(C, H, W)"), 4: ("D, H, W, C", "(C, D, H, W)")}  # rank: (Keras order, cnnlab order)


def check_channels_first(shape: Shape, what: str = "input_shape", fix: str | None = None) -> None:
    """Refuse an image shape that looks channels-last (Keras' ``(H, W, C)``); cnnlab.layers are channels-first.

    It looks so when its last axis has 1, 3 or 4 values (grey, RGB, RGBA) and every other axis more than
    4: read channels-first, it would be an image a few pixels wide with many channels.

    >>> check_channels_first((1, 28, 28)), check_channels_first((8, 4, 4))  # channels-first: fine
    (None, None)
    >>> check_channels_first((28, 28, 1))
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.ShapeError: input_shape (28, 28, 1) looks channels-last (Keras order H, W, C); ...
    """
    if len(shape) not in _ORDERS or shape[-1] not in (1, 3, 4) or min(shape[:-1]) <= 4:
        return
    keras, ours = _ORDERS[len(shape)]
    raise ShapeError(
        f"{what} {shape} looks channels-last (Keras order {keras}); cnnlab.layers takes {ours}",
        fix=fix or f"use {(shape[-1], *shape[:-1])}",
    )


def check_positive(layer: str, arg: str, value: Any, rank: int | None = None) -> Any:
    """A positive int, or (with ``rank``) an int or ``rank`` positive ints, returned as a tuple.

    >>> check_positive("Conv2D", "kernel_size", 3, rank=2)
    (3, 3)
    >>> check_positive("Conv2D", "kernel_size", 0, rank=2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.ConfigError: Conv2D: kernel_size must be positive. Received: kernel_size=0. Fix: ...
    """
    values = [value] if rank is None or isinstance(value, int) else list(value) if _is_seq(value) else [value]
    if rank is not None and len(values) not in (1, rank):
        raise ConfigError(
            f"{layer}: {arg} needs 1 or {rank} values. Received: {arg}={value!r}", fix=f"pass an int or {rank} ints"
        )
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise ConfigError(
            f"{layer}: {arg} must be positive. Received: {arg}={value!r}",
            fix="pass an int >= 1" + (f" or {rank} of them" if rank else ""),
        )
    if rank is None:
        return values[0]
    return tuple(values * rank if len(values) == 1 else values)


def check_padding(layer: str, padding: Any, rank: int) -> str | int | tuple[int | tuple[int, int], ...]:
    """``'valid'``, ``'same'``, an int >= 0, or one int / ``(before, after)`` pair per spatial axis.

    >>> check_padding("Conv2D", [1, [0, 1]], 2)
    (1, (0, 1))
    """
    if isinstance(padding, str):
        if padding.lower() in ("valid", "same"):
            return padding.lower()
    elif isinstance(padding, int) and not isinstance(padding, bool):
        if padding >= 0:
            return padding
    elif _is_seq(padding) and len(padding) == rank:
        axes: list[int | tuple[int, int]] = []
        for p in padding:
            if isinstance(p, int) and p >= 0:
                axes.append(p)
            elif _is_seq(p) and len(p) == 2 and all(isinstance(v, int) and v >= 0 for v in p):
                axes.append((p[0], p[1]))
            else:
                break
        else:
            return tuple(axes)
    raise ConfigError(
        f"{layer}: padding must be 'valid', 'same', an int >= 0 or {rank} values (int or (before, after)). "
        f"Received: padding={padding!r}",
        fix="use padding='same' to keep the size (stride 1) or padding='valid' for none",
    )


def check_choice(layer: str, arg: str, value: Any, choices: Sequence[str]) -> Any:
    """``value`` if it is one of ``choices``, else a ConfigError with the closest names.

    >>> check_choice("Dense", "activation", "rleu", ["relu", "tanh"])
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.ConfigError: Dense: unknown activation 'rleu' (did you mean 'relu'?). Fix: use one of relu, tanh
    """
    if value in choices:
        return value
    close = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=0.5)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ConfigError(f"{layer}: unknown {arg} {value!r}{hint}", fix=f"use one of {', '.join(choices)}")


def check_rate(layer: str, rate: Any) -> float:
    """A dropout rate in ``[0, 1)``."""
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
        raise ConfigError(f"{layer}: rate must be in [0, 1). Received: rate={rate!r}", fix="e.g. rate=0.25")
    return float(rate)


INITIALIZERS: dict[str, Callable[[torch.Tensor], Any]] = {
    "glorot_uniform": nn.init.xavier_uniform_,  # the Keras default
    "glorot_normal": nn.init.xavier_normal_,
    "he_uniform": lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu"),
    "he_normal": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),  # Keras truncates at 2 sd; we do not
}


def init_weights(module: nn.Module, initializer: str) -> None:
    """Keras-style initialisation: ``initializer`` for the kernel, zeros for the bias."""
    INITIALIZERS[initializer](module.weight)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)


def _is_seq(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)


def _plain(value: Any) -> Any:
    """Tuples become lists, so a config is plain YAML / safe-checkpoint data."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value
