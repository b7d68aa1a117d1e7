"""Keras optimizers (``keras.optimizers``): ``Adam``, ``AdamW``, ``SGD``, ``RMSprop`` and their strings,
with Keras' default hyper-parameters, over the torch optimizers.

An optimizer object holds Keras' settings; ``fit`` asks it for the torch optimizer of the model
(built once per ``compile``, so its state carries over between ``fit`` calls). ``learning_rate``
reads and writes the live torch optimizer's rate while it exists, which is how the
``ReduceLROnPlateau`` and ``LearningRateScheduler`` callbacks change it during training.

The updates are torch's: Keras adds Adam's ``epsilon`` to ``sqrt(v)`` before the bias correction and
torch after it (a factor ``sqrt(1 - beta_2**t)`` on an epsilon of 1e-7: no measurable difference).
``weight_decay`` in Keras 3 is decoupled (AdamW-style) for every optimizer: ``Adam(weight_decay=w)``
is torch's AdamW; for SGD and RMSprop it has no torch equivalent and is refused.

>>> opt = get("adam")
>>> type(opt).__name__, opt.learning_rate, opt.epsilon
('Adam', 0.001, 1e-07)
>>> get("rmsprop").rho, SGD().learning_rate
(0.9, 0.01)
>>> Adam(lr=0.01)
Traceback (most recent call last):
...
cnnlab.core.errors.ConfigError: Adam has no argument 'lr' (did you mean 'learning_rate'?). Fix: ...
"""

from __future__ import annotations

import difflib
import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

import torch

from cnnlab.core.errors import ConfigError
from cnnlab.core.registry import Registry

#: Keras' optimizer strings (lower-case) -> class; ``get`` reads it.
OPTIMIZERS: Registry[type[Optimizer]] = Registry("optimizer")

# Keras arguments with no cnnlab counterpart: the value Keras defaults to, and what to use instead.
_UNSUPPORTED = {
    "clipnorm": (None, "global_clipnorm=... (one norm over all weights)"),
    "clipvalue": (None, "global_clipnorm=... (clip the gradient norm instead of each value)"),
    "use_ema": (False, "drop use_ema (no weight averaging in cnnlab.keras)"),
    "decay": (None, "callbacks.LearningRateScheduler for a decaying learning rate"),
}
_KERAS2_NAMES = {"lr": "learning_rate"}  # Keras 2 spellings that Keras 3 (and cnnlab) refuse


class Optimizer(ABC):
    """Base class: ``learning_rate`` plus the settings every Keras optimizer takes.

    ``global_clipnorm`` clips the norm of all gradients together (cnnlab's ``grad_clip``).
    """

    def __init__(self, learning_rate: float, *, global_clipnorm: float | None = None, **kwargs: Any) -> None:
        self._torch: torch.optim.Optimizer | None = None
        name = type(self).__name__
        for key, value in kwargs.items():
            if key in _UNSUPPORTED:
                default, fix = _UNSUPPORTED[key]
                if value != default:
                    raise ConfigError(f"{name}: {key} is not supported. Received: {key}={value!r}", fix=f"use {fix}")
            elif key != "name":  # Keras' display name: nothing depends on it
                known = [*_arguments(type(self)), "global_clipnorm"]
                close = [_KERAS2_NAMES[key]] if key in _KERAS2_NAMES else difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(f"{name} has no argument '{key}'{hint}", fix=f"known arguments: {', '.join(known)}")
        if global_clipnorm is not None and not global_clipnorm > 0:
            raise ConfigError(f"{name}: global_clipnorm must be > 0. Received: {global_clipnorm}", fix="e.g. 1.0")
        self.global_clipnorm = global_clipnorm
        self.learning_rate = learning_rate

    @property
    def learning_rate(self) -> float:
        """The learning rate: the live torch optimizer's while ``fit`` runs (callbacks set it here)."""
        if self._torch is not None:
            return float(self._torch.param_groups[0]["lr"])
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value > 0):
            raise ConfigError(
                f"{type(self).__name__}: learning_rate must be a number > 0. Received: learning_rate={value!r}",
                fix="e.g. 1e-3; for a schedule use callbacks.LearningRateScheduler",
            )
        self._learning_rate = float(value)
        if self._torch is not None:
            for group in self._torch.param_groups:
                group["lr"] = float(value)

    def build(self, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
        """The torch optimizer over ``params``: made on the first call after :meth:`reset`, then the same one.

        >>> w = torch.nn.Parameter(torch.zeros(2))
        >>> opt = SGD(learning_rate=0.1, momentum=0.9)
        >>> torch_opt = opt.build([w])
        >>> opt.learning_rate = 0.05
        >>> torch_opt.param_groups[0]["lr"], opt.build([w]) is torch_opt
        (0.05, True)
        """
        if self._torch is None:
            self._torch = self._make(list(params))
        return self._torch

    @property
    def built_optimizer(self) -> torch.optim.Optimizer | None:
        """The torch optimizer ``fit`` trains with (None before the first ``fit`` after ``compile``)."""
        return self._torch

    def reset(self) -> None:
        """Forget the torch optimizer and its state (``compile`` calls this); the settings stay."""
        if self._torch is not None:
            self._learning_rate = self.learning_rate
        self._torch = None

    @abstractmethod
    def _make(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        """A new torch optimizer with these settings."""

    def get_config(self) -> dict[str, Any]:
        """``{"class_name": ..., "config": constructor arguments}`` (what a saved model stores).

        >>> from_config(Adam(learning_rate=0.01).get_config()).learning_rate
        0.01
        """
        config = {k: getattr(self, k) for k in _arguments(type(self))}
        return {"class_name": type(self).__name__, "config": config | {"global_clipnorm": self.global_clipnorm}}


def _arguments(cls: type[Optimizer]) -> list[str]:
    """The named constructor arguments of an optimizer class."""
    return [k for k in inspect.signature(cls.__init__).parameters if k not in ("self", "kwargs")]


def _register(cls: type[Optimizer]) -> type[Optimizer]:
    OPTIMIZERS.add(cls.__name__.lower(), cls)
    return cls


def _check_betas(name: str, beta_1: float, beta_2: float, epsilon: float) -> None:
    if not (0 <= beta_1 < 1 and 0 <= beta_2 < 1 and epsilon > 0):
        raise ConfigError(
            f"{name}: beta_1 and beta_2 must be in [0, 1) and epsilon > 0. "
            f"Received: beta_1={beta_1}, beta_2={beta_2}, epsilon={epsilon}",
            fix="keep Keras' defaults beta_1=0.9, beta_2=0.999, epsilon=1e-7",
        )


@_register
class Adam(Optimizer):
    """Adam with Keras' defaults (``epsilon=1e-7``, torch's is 1e-8); with ``weight_decay`` it is AdamW.

    >>> Adam(learning_rate=0.01, weight_decay=0.1).build([torch.nn.Parameter(torch.zeros(1))]).__class__.__name__
    'AdamW'
    """

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        weight_decay: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        _check_betas(type(self).__name__, beta_1, beta_2, epsilon)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, bool(amsgrad)
        self.weight_decay = weight_decay

    def _make(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        options = {"lr": self.learning_rate, "betas": (self.beta_1, self.beta_2), "eps": self.epsilon}
        if self.weight_decay:  # Keras 3 decays decoupled from the gradient: torch's AdamW
            return torch.optim.AdamW(params, weight_decay=self.weight_decay, amsgrad=self.amsgrad, **options)
        return torch.optim.Adam(params, weight_decay=0.0, amsgrad=self.amsgrad, **options)


@_register
class AdamW(Optimizer):
    """AdamW with Keras' defaults (``weight_decay=0.004``, ``epsilon=1e-7``).

    >>> AdamW().weight_decay
    0.004
    """

    def __init__(
        self,
        learning_rate: float = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        _check_betas(type(self).__name__, beta_1, beta_2, epsilon)
        self.weight_decay, self.amsgrad = weight_decay, bool(amsgrad)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _make(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            params,
            lr=self.learning_rate,
            betas=(self.beta_1, self.beta_2),
            eps=self.epsilon,
            weight_decay=self.weight_decay,
            amsgrad=self.amsgrad,
        )


def _no_weight_decay(name: str, weight_decay: float | None) -> None:
    if weight_decay:
        raise ConfigError(
            f"{name}: weight_decay is not supported (Keras decays decoupled from the gradient; torch's {name} "
            f"adds an L2 term instead). Received: weight_decay={weight_decay}",
            fix="use optimizers.AdamW(weight_decay=...) or Adam(weight_decay=...)",
        )


@_register
class SGD(Optimizer):
    """Stochastic gradient descent with Keras' defaults (``learning_rate=0.01``, ``momentum=0.0``).

    Keras' momentum update ``v = m*v - lr*g; w += v`` equals torch's for a constant learning rate.

    >>> SGD(momentum=0.9, nesterov=True).build([torch.nn.Parameter(torch.zeros(1))]).defaults["nesterov"]
    True
    """

    def __init__(
        self,
        learning_rate: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        _no_weight_decay("SGD", weight_decay)
        if not 0 <= momentum < 1:
            raise ConfigError(f"SGD: momentum must be in [0, 1). Received: momentum={momentum}", fix="e.g. 0.9")
        self.momentum, self.nesterov, self.weight_decay = float(momentum), bool(nesterov), weight_decay

    def _make(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=self.learning_rate, momentum=self.momentum, nesterov=self.nesterov)


@_register
class RMSprop(Optimizer):
    """RMSprop with Keras' defaults (``rho=0.9``, ``epsilon=1e-7``; torch's ``alpha`` is Keras' ``rho``).

    >>> RMSprop().build([torch.nn.Parameter(torch.zeros(1))]).defaults["alpha"]
    0.9
    """

    def __init__(
        self,
        learning_rate: float = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        weight_decay: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        _no_weight_decay("RMSprop", weight_decay)
        if not (0 <= rho < 1 and 0 <= momentum < 1 and epsilon > 0):
            raise ConfigError(
                f"RMSprop: rho and momentum must be in [0, 1) and epsilon > 0. "
                f"Received: rho={rho}, momentum={momentum}, epsilon={epsilon}",
                fix="keep Keras' defaults rho=0.9, momentum=0.0, epsilon=1e-7",
            )
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, bool(centered)
        self.weight_decay = weight_decay

    def _make(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.RMSprop(
            params,
            lr=self.learning_rate,
            alpha=self.rho,
            eps=self.epsilon,
            momentum=self.momentum,
            centered=self.centered,
        )


def get(identifier: str | Optimizer) -> Optimizer:
    """An optimizer from a Keras string (``'adam'``, ``'sgd'``, ``'rmsprop'``, ``'adamw'``; any case) or object.

    A string gives a new optimizer with Keras' defaults; an object is returned as it is.

    >>> get("SGD").momentum
    0.0
    >>> get("nadam")
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.RegistryError: unknown optimizer 'nadam'; did you mean 'adam' or 'adamw'? [known: adam, ...
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if not isinstance(identifier, str):
        raise ConfigError(
            f"optimizer must be a string or a cnnlab.keras.optimizers object. Received: {type(identifier).__name__}",
            fix="e.g. optimizer='adam' or optimizers.Adam(learning_rate=1e-3)",
        )
    return OPTIMIZERS.get(identifier.lower())()


def from_config(config: dict[str, Any]) -> Optimizer:
    """Rebuild an optimizer from :meth:`Optimizer.get_config`."""
    return OPTIMIZERS.get(str(config["class_name"]).lower())(**config["config"])


__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "from_config", "get"]
