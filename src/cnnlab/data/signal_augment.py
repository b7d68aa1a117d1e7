"""Batch augmentations for signals ``(B, C, T)``: time series, waveforms and log-mel spectrograms.

Each is an :class:`~cnnlab.data.augment.Transform`: ``draw(shape, generator)`` picks the random parameters
for the whole batch (one set per sample, applied with probability ``p``), ``apply`` uses them, so a seeded
generator gives the same batch twice and :class:`~cnnlab.data.augment.Compose` chains them. Only
:class:`TimeShift` is geometric: ``Compose.pair(signal, labels)`` rolls a ``(B, T)`` label sequence
with the signal, and leaves it alone for the rest. MixUp for signals is
:class:`~cnnlab.data.augment.MixUp` (it works on ``(B, C, T)`` as on images).

>>> x = torch.randn(8, 2, 100)
>>> pipeline = signal_preset("series")
>>> a = pipeline(x, torch.Generator().manual_seed(0))
>>> b = pipeline(x, torch.Generator().manual_seed(0))
>>> a.shape, a.dtype, torch.equal(a, b)
(torch.Size([8, 2, 100]), torch.float32, True)
"""

from __future__ import annotations

from typing import ClassVar

import torch

from cnnlab.core.errors import ConfigError
from cnnlab.data.augment import Compose, Kind, Params, Transform

SIGNAL_PRESETS = ("none", "series", "audio")
"""Names :func:`signal_preset` knows."""


def _check_p(p: float, name: str) -> None:
    if not 0 <= p <= 1:
        raise ConfigError(f"p must be in [0, 1]. Received: p={p}", where=name)


def _check_fraction(value: float, name: str) -> None:
    if not 0 <= value <= 1:
        raise ConfigError(f"max_fraction must be in [0, 1]. Received: max_fraction={value}", where=name)


def _per_sample(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, ..., 1), broadcastable against ``x``."""
    return values.view(-1, *[1] * (x.ndim - 1)).to(x.dtype)


class Scale(Transform):
    """Multiply each sample by a factor drawn uniformly from ``[low, high]`` (with probability ``p``).

    >>> Scale(2.0, 2.0, p=1.0)(torch.ones(2, 1, 3)).tolist()
    [[[2.0, 2.0, 2.0]], [[2.0, 2.0, 2.0]]]
    """

    def __init__(self, low: float = 0.8, high: float = 1.2, p: float = 0.5) -> None:
        if low > high:
            raise ConfigError(f"low must not exceed high. Received: low={low}, high={high}", where="Scale")
        _check_p(p, "Scale")
        self.low, self.high, self.p = low, high, p

    def draw(self, shape: torch.Size, generator: torch.Generator) -> Params:
        factor = self.low + (self.high - self.low) * torch.rand(shape[0], generator=generator)
        on = torch.rand(shape[0], generator=generator) < self.p
        return {"factor": torch.where(on, factor, torch.ones_like(factor))}

    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "signal") -> torch.Tensor:
        return x * _per_sample(params["factor"], x)


class Jitter(Transform):
    """Add Gaussian noise with standard deviation ``sigma`` times each channel's own standard deviation over
    time (so quiet and loud channels get noise in proportion), with probability ``p`` per sample.

    >>> x = torch.randn(4, 2, 1000, generator=torch.Generator().manual_seed(0)) * torch.tensor([[1.0], [100.0]])
    >>> noise = Jitter(sigma=0.1, p=1.0)(x) - x
    >>> [round(float(v), 2) for v in noise.std(dim=(0, 2)) / x.std(dim=(0, 2))]  # 0.1 of each channel's spread
    [0.1, 0.1]
    """

    def __init__(self, sigma: float = 0.03, p: float = 0.5) -> None:
        if sigma < 0:
            raise ConfigError(f"sigma must not be negative. Received: sigma={sigma}", where="Jitter")
        _check_p(p, "Jitter")
        self.sigma, self.p = sigma, p

    def draw(self, shape: torch.Size, generator: torch.Generator) -> Params:
        on = torch.rand(shape[0], generator=generator) < self.p
        return {"noise": torch.randn(tuple(shape), generator=generator), "on": on}

    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "signal") -> torch.Tensor:
        scale = self.sigma * x.std(dim=-1, keepdim=True, correction=0) * _per_sample(params["on"], x)
        return x + params["noise"].to(x.dtype) * scale


class TimeShift(Transform):
    """Roll each sample circularly along time by up to ``max_fraction * T`` steps either way (probability
    ``p``): what leaves one end comes back at the other, so the length stays ``T``. Geometric: a label
    sequence ``(B, T)`` or ``(B, 1, T)`` given to ``Compose.pair`` rolls with its signal.

    >>> shift = TimeShift(max_fraction=0.5, p=1.0)
    >>> params = {"shift": torch.tensor([1, -1])}
    >>> shift.apply(torch.tensor([[1, 2, 3, 4], [1, 2, 3, 4]]), params, "mask").tolist()
    [[4, 1, 2, 3], [2, 3, 4, 1]]
    """

    geometric = True
    kinds: ClassVar[frozenset[str]] = frozenset({"image", "mask", "signal"})

    def __init__(self, max_fraction: float = 0.1, p: float = 0.5) -> None:
        _check_fraction(max_fraction, "TimeShift")
        _check_p(p, "TimeShift")
        self.max_fraction, self.p = max_fraction, p

    def draw(self, shape: torch.Size, generator: torch.Generator) -> Params:
        most = int(self.max_fraction * shape[-1])
        shift = torch.randint(-most, most + 1, (shape[0],), generator=generator)
        on = torch.rand(shape[0], generator=generator) < self.p
        return {"shift": torch.where(on, shift, torch.zeros_like(shift))}

    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "signal") -> torch.Tensor:
        steps = x.shape[-1]
        source = (torch.arange(steps) - params["shift"][:, None]) % steps  # (B, T): out[t] = x[t - shift]
        source = source.view(len(x), *[1] * (x.ndim - 2), steps).expand(x.shape)
        return x.gather(-1, source)


class _SpanMask(Transform):
    """Zero one span per sample along ``dim`` (-1: time, 1: channels), up to ``max_fraction`` of its size."""

    dim: ClassVar[int]

    def __init__(self, max_fraction: float, p: float) -> None:
        _check_fraction(max_fraction, type(self).__name__)
        _check_p(p, type(self).__name__)
        self.max_fraction, self.p = max_fraction, p

    def draw(self, shape: torch.Size, generator: torch.Generator) -> Params:
        n, size = shape[0], shape[self.dim]
        width = torch.randint(0, int(self.max_fraction * size) + 1, (n,), generator=generator)
        start = (torch.rand(n, generator=generator) * (size - width + 1)).floor().long()
        on = torch.rand(n, generator=generator) < self.p
        return {"start": start, "stop": start + torch.where(on, width, torch.zeros_like(width))}

    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "signal") -> torch.Tensor:
        positions = torch.arange(x.shape[self.dim])[None]
        inside = (positions >= params["start"][:, None]) & (positions < params["stop"][:, None])  # (B, size)
        shape = [len(x)] + [1] * (x.ndim - 1)
        shape[self.dim] = x.shape[self.dim]
        return x.masked_fill(inside.view(shape), 0)


class TimeMask(_SpanMask):
    """SpecAugment's time mask: zero one span of up to ``max_fraction * T`` time steps per sample (all
    channels), with probability ``p``. Zero is the mean of standardised input.

    >>> masked = TimeMask(p=1.0)(torch.ones(4, 3, 100), torch.Generator().manual_seed(1))
    >>> bool(((masked == 0).all(dim=1) | (masked == 1).all(dim=1)).all())  # whole columns only
    True
    """

    dim = -1

    def __init__(self, max_fraction: float = 0.1, p: float = 0.5) -> None:
        super().__init__(max_fraction, p)


class FreqMask(_SpanMask):
    """SpecAugment's frequency mask: zero one span of up to ``max_fraction * C`` channels per sample (for
    log-mel input the channels are mel bins), with probability ``p``.

    >>> masked = FreqMask(max_fraction=0.5, p=1.0)(torch.ones(4, 8, 10), torch.Generator().manual_seed(1))
    >>> bool(((masked == 0).all(dim=2) | (masked == 1).all(dim=2)).all())  # whole channel rows only
    True
    """

    dim = 1

    def __init__(self, max_fraction: float = 0.15, p: float = 0.5) -> None:
        super().__init__(max_fraction, p)


def signal_preset(name: str) -> Compose:
    """A pipeline by name: ``none``; ``series`` (:class:`Scale`, :class:`Jitter`, :class:`TimeShift`, for
    UCR-type series); ``audio`` (:class:`TimeShift`, :class:`TimeMask`, :class:`FreqMask`, for waveforms
    or log-mel spectrograms).

    >>> [type(t).__name__ for t in signal_preset("audio").transforms]
    ['TimeShift', 'TimeMask', 'FreqMask']
    """
    if name == "none":
        return Compose([])
    if name == "series":
        return Compose([Scale(), Jitter(), TimeShift()])
    if name == "audio":
        return Compose([TimeShift(), TimeMask(), FreqMask()])
    raise ConfigError(
        f"unknown signal augmentation preset {name!r}", where="augment", fix=f"use {', '.join(SIGNAL_PRESETS)}"
    )
