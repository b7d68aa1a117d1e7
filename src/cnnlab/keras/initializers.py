"""Keras' weight initializers, by name or object: ``kernel_initializer=glorot_uniform(seed=0)`` as the course's
ResNet notebook writes it, ``'he_normal'``, ``keras.initializers.RandomNormal(stddev=0.01)``, and
``add_weight(initializer=...)`` in your own layers.

Fans are Keras' for its layouts (``(in, out)`` for Dense, ``(*kernel, in, out)`` for convolutions), truncated
normals are cut at two standard deviations as Keras cuts them, and a seeded initializer gives the same values on
every call (Keras 3's rule). The random numbers come from torch's generator, so a seed gives other values than
TensorFlow's.

>>> from cnnlab.keras import initializers
>>> init = initializers.glorot_uniform(seed=0)
>>> a, b = init((3, 3, 8, 16)), init((3, 3, 8, 16))
>>> bool((a == b).all()), bool(a.abs().max() <= (6 / (3 * 3 * 8 + 3 * 3 * 16)) ** 0.5)
(True, True)
>>> initializers.get("he_normal"), initializers.serialize(initializers.Constant(0.5))
(HeNormal(seed=None), {'class_name': 'Constant', 'config': {'value': 0.5}})
"""

from __future__ import annotations

import difflib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import torch

from cnnlab.core.errors import ConfigError

TRUNCATED_STD = 0.87962566103423978
"""The standard deviation of a unit normal cut at +-2: Keras divides by it so the cut normal has the asked std."""


def compute_fans(shape: Sequence[int]) -> tuple[float, float]:
    """``(fan_in, fan_out)`` of a weight in Keras' layout.

    >>> compute_fans((784, 10)), compute_fans((3, 3, 1, 32)), compute_fans((8,))
    ((784, 10), (9, 288), (8, 8))
    """
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer(ABC):
    """The base: ``init(shape, dtype=None)`` returns a float32 tensor of ``shape``; ``get_config()`` its arguments."""

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> torch.Tensor:
        if dtype not in (None, "float32", torch.float32):
            raise ConfigError(f"{type(self).__name__}: dtype={dtype!r} is not supported", fix="float32 weights only")
        return self._values(tuple(int(n) for n in shape))

    @abstractmethod
    def _values(self, shape: tuple[int, ...]) -> torch.Tensor:
        """The values, float32, of ``shape`` (checked by ``__call__``)."""

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments (Keras' ``get_config``)."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Initializer:
        """The initializer ``get_config`` describes."""
        return cls(**config)

    def __repr__(self) -> str:
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


class _Seeded(Initializer):
    def __init__(self, seed: int | None = None) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ConfigError(f"{type(self).__name__}: seed must be an int or None. Received: seed={seed!r}")
        self.seed = seed

    def _generator(self) -> torch.Generator | None:
        return None if self.seed is None else torch.Generator().manual_seed(self.seed)

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}


class Zeros(Initializer):
    """All zeros (Keras' bias default)."""

    def _values(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.zeros(shape)


class Ones(Initializer):
    """All ones (BatchNormalization's gamma default)."""

    def _values(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.ones(shape)


class Constant(Initializer):
    """Every value ``value``."""

    def __init__(self, value: float = 0.0) -> None:
        self.value = float(value)

    def _values(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.full(shape, self.value)

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value}


class RandomNormal(_Seeded):
    """Normal values, ``mean`` and ``stddev`` (Keras' defaults 0 and 0.05)."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def _values(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.empty(shape).normal_(self.mean, self.stddev, generator=self._generator())

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class TruncatedNormal(RandomNormal):
    """Normal values cut at two standard deviations from the mean (redrawn beyond them, as Keras does)."""

    def _values(self, shape: tuple[int, ...]) -> torch.Tensor:
        low, high = self.mean - 2 * self.stddev, self.mean + 2 * self.stddev
        return torch.nn.init.trunc_normal_(torch.empty(shape), self.mean, self.stddev, low, high, self._generator())


class RandomUniform(_Seeded):
    """Uniform values in ``[minval, maxval)`` (Keras' defaults -0.05 and 0.05)."""

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None) -> None:
        super().__init__(seed)
        self.minval, self.maxval = float(minval), float(maxval)

    def _values(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.empty(shape).uniform_(self.minval, self.maxval, generator=self._generator())

    def get_config(self) -> dict[str, Any]:
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}


MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")


class VarianceScaling(_Seeded):
    """Values of variance ``scale / n``, ``n`` the fan ``mode`` names, from a ``distribution``: the rule behind
    Glorot (fan_avg, scale 1), He (fan_in, scale 2) and LeCun (fan_in, scale 1)."""

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        if mode not in MODES or distribution not in DISTRIBUTIONS or not scale > 0:
            raise ConfigError(
                f"VarianceScaling: scale={scale!r}, mode={mode!r}, distribution={distribution!r}",
                fix=f"scale > 0, mode one of {', '.join(MODES)}, distribution one of {', '.join(DISTRIBUTIONS)}",
            )
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def _values(self, shape: tuple[int, ...]) -> torch.Tensor:
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        values, generator = torch.empty(shape), self._generator()
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return values.uniform_(-limit, limit, generator=generator)
        if self.distribution == "untruncated_normal":
            return values.normal_(0.0, math.sqrt(variance), generator=generator)
        std = math.sqrt(variance) / TRUNCATED_STD
        return torch.nn.init.trunc_normal_(values, 0.0, std, -2 * std, 2 * std, generator)

    def get_config(self) -> dict[str, Any]:
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution, **super().get_config()}


def _scaling(name: str, scale: float, mode: str, distribution: str, doc: str) -> type[VarianceScaling]:
    def __init__(self: VarianceScaling, seed: int | None = None) -> None:
        VarianceScaling.__init__(self, scale, mode, distribution, seed)

    def get_config(self: VarianceScaling) -> dict[str, Any]:
        return {"seed": self.seed}

    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config, "__doc__": doc})


GlorotUniform = _scaling("GlorotUniform", 1.0, "fan_avg", "uniform", "Keras' default: U(+-sqrt(6 / (in + out))).")
GlorotNormal = _scaling("GlorotNormal", 1.0, "fan_avg", "truncated_normal", "Truncated normal, var 2 / (in + out).")
HeNormal = _scaling("HeNormal", 2.0, "fan_in", "truncated_normal", "Truncated normal, var 2 / in (for ReLU).")
HeUniform = _scaling("HeUniform", 2.0, "fan_in", "uniform", "U(+-sqrt(6 / in)) (for ReLU).")
LecunNormal = _scaling("LecunNormal", 1.0, "fan_in", "truncated_normal", "Truncated normal, var 1 / in (SELU).")
LecunUniform = _scaling("LecunUniform", 1.0, "fan_in", "uniform", "U(+-sqrt(3 / in)).")


class Orthogonal(_Seeded):
    """An orthogonal matrix (the weight flattened to ``(prod(shape[:-1]), shape[-1])``) times ``gain``."""

    def __init__(self, gain: float = 1.0, seed: int | None = None) -> None:
        super().__init__(seed)
        self.gain = float(gain)

    def _values(self, shape: tuple[int, ...]) -> torch.Tensor:
        if len(shape) < 2:
            raise ConfigError(f"Orthogonal needs a weight of 2 or more axes. Received: shape={shape}")
        flat = torch.empty(math.prod(shape[:-1]), shape[-1])
        return torch.nn.init.orthogonal_(flat, self.gain, self._generator()).reshape(shape)

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain, **super().get_config()}


class Identity(Initializer):
    """The identity matrix times ``gain`` (2-D weights only, as in Keras)."""

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = float(gain)

    def _values(self, shape: tuple[int, ...]) -> torch.Tensor:
        if len(shape) != 2:
            raise ConfigError(f"Identity is for 2-D weights (Dense kernels). Received: shape={shape}")
        return torch.eye(*shape) * self.gain

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain}


CLASSES: dict[str, type[Initializer]] = {
    cls.__name__: cls
    for cls in (
        Zeros,
        Ones,
        Constant,
        RandomNormal,
        RandomUniform,
        TruncatedNormal,
        VarianceScaling,
        GlorotUniform,
        GlorotNormal,
        HeNormal,
        HeUniform,
        LecunNormal,
        LecunUniform,
        Orthogonal,
        Identity,
    )
}
"""Every initializer class by its Keras name."""

# Keras' snake_case aliases (in Keras they are the classes themselves: ``glorot_uniform(seed=0)`` builds one).
zeros, ones, constant = Zeros, Ones, Constant
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal
variance_scaling, orthogonal, identity = VarianceScaling, Orthogonal, Identity
glorot_uniform, glorot_normal, he_normal, he_uniform = GlorotUniform, GlorotNormal, HeNormal, HeUniform
lecun_normal, lecun_uniform = LecunNormal, LecunUniform


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


_BY_KEY = {_key(name): cls for name, cls in CLASSES.items()}


def get(identifier: Any) -> Initializer | Callable[..., Any] | None:
    """An initializer from a name (``'glorot_uniform'``, ``'GlorotUniform'``), an object, a
    :func:`serialize` dict, or a function ``f(shape, dtype=None)`` (kept as it is); ``None`` stays ``None``."""
    if identifier is None or isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_KEY.get(_key(identifier))
        if cls is None:
            names = [n for n in globals() if n.islower() and isinstance(globals()[n], type)]
            close = difflib.get_close_matches(identifier, names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown initializer {identifier!r}{hint}", fix=f"use one of {', '.join(names)}")
        return cls()
    if isinstance(identifier, dict) and "class_name" in identifier:
        return get(identifier["class_name"]).from_config(identifier.get("config") or {})  # type: ignore[union-attr]
    if callable(identifier):
        return identifier
    raise ConfigError(f"cannot read an initializer from {identifier!r}", fix="pass a name, an initializer or f(shape)")


def serialize(initializer: Initializer) -> dict[str, Any]:
    """``{'class_name': ..., 'config': ...}``, what a saved model keeps (Keras' format)."""
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}
