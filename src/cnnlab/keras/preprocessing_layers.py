"""Keras' augmentation layers ``RandomFlip``, ``RandomRotation`` and ``RandomZoom``.

They change images only while the model trains (``model.train()``, what ``fit`` sets) and are the
identity in ``evaluate`` / ``predict``. Inside they work on channels-first batches ``(B, C, H, W)``,
like every cnnlab layer, with cnnlab's batched augmentation (:mod:`cnnlab.data.augment`): one
resampling per batch. Put them first in the model: they do not pass gradients back.

These classes follow :mod:`cnnlab.layers`' conventions (``input_shape`` channels-first, registered
in :data:`cnnlab.layers.base.LAYERS`); ``cnnlab.keras.layers`` gives them their Keras face
(channels-last ``input_shape``, ``trainable``, Keras configs) as it does for every cnnlab layer. The
arguments, and their positional order, are Keras'.

Fill modes: ``reflect`` (Keras' default here), ``nearest`` and ``constant`` (``fill_value=0``);
``wrap`` is not supported. Interpolation is bilinear.

>>> import torch
>>> flip = RandomFlip("horizontal", seed=0)
>>> x = torch.arange(6.0).reshape(1, 1, 2, 3).repeat(8, 1, 1, 1)
>>> torch.equal(flip.eval()(x), x), bool((flip.train()(x) != x).any())
(True, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cnnlab.core.errors import ConfigError
from cnnlab.data.augment import Compose, HorizontalFlip, RandomAffine, VerticalFlip
from cnnlab.layers.base import Layer, Shape

_FILL = {"reflect": "reflect", "nearest": "nearest", "constant": "zeros"}
_FLIPS = ("horizontal", "vertical", "horizontal_and_vertical")


def _range(factor: float | Sequence[float], name: str, layer: str) -> tuple[float, float]:
    """Keras' factor: ``f`` -> ``(-f, f)``; a pair as given."""
    low, high = (-float(factor), float(factor)) if isinstance(factor, int | float) else (float(f) for f in factor)
    if low > high:
        raise ConfigError(f"{layer}: {name} range is reversed. Received: {name}={factor}", where=layer)
    return low, high


class _RandomLayer(Layer):
    """Shared parts: argument checks, the seed and the per-call generator, the shape check."""

    def __init__(
        self,
        transform: Compose,
        fill_mode: str,
        interpolation: str,
        fill_value: float,
        seed: int | None,
        name: str | None,
        input_shape: Sequence[int] | None,
    ) -> None:
        layer = type(self).__name__
        if fill_mode not in _FILL:
            raise ConfigError(
                f"{layer}: fill_mode={fill_mode!r} is not supported",
                where=layer,
                fix=f"use one of {', '.join(_FILL)}",
            )
        if fill_mode == "constant" and fill_value != 0:
            raise ConfigError(f"{layer}: fill_value must be 0 with fill_mode='constant'", where=layer)
        if interpolation != "bilinear":
            raise ConfigError(f"{layer}: only interpolation='bilinear' is supported", where=layer)
        super().__init__(name=name, input_shape=input_shape)
        self.fill_mode, self.interpolation, self.fill_value, self.seed = fill_mode, interpolation, fill_value, seed
        self._generator = None if seed is None else torch.Generator().manual_seed(seed)
        self.transform = transform

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 3:
            self.fail(f"takes images (channels, height, width); received per-sample shape {input_shape}")
        return input_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        generator = self._generator
        if generator is None:  # unseeded: follow torch's global seed (torch.manual_seed, set_random_seed)
            generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))
        return self.transform(x, generator)


class RandomFlip(_RandomLayer):
    """Mirror each image with probability 1/2: ``horizontal``, ``vertical`` or ``horizontal_and_vertical``
    (each axis on its own draw).

    >>> RandomFlip("sideways")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.ConfigError: RandomFlip: mode must be one of ('horizontal', 'vertical', ...
    """

    def __init__(
        self,
        mode: str = "horizontal_and_vertical",
        seed: int | None = None,
        *,
        name: str | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        if mode not in _FLIPS:
            raise ConfigError(f"RandomFlip: mode must be one of {_FLIPS}. Received: mode={mode!r}", where="RandomFlip")
        flips = [HorizontalFlip()] if mode != "vertical" else []
        transform = Compose(flips + ([VerticalFlip()] if mode != "horizontal" else []))
        super().__init__(transform, "reflect", "bilinear", 0.0, seed, name, input_shape)
        self.mode = mode


class RandomRotation(_RandomLayer):
    """Rotate by a random angle: ``factor`` is a fraction of a full turn, ``f`` meaning ``(-f, f)``
    (``0.1``: up to 36 degrees either way); positive is counter-clockwise.

    >>> RandomRotation(0.1).transform.transforms[0].degrees
    (-36.0, 36.0)
    """

    def __init__(
        self,
        factor: float | Sequence[float],
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        *,
        name: str | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        low, high = _range(factor, "factor", "RandomRotation")
        rotate = RandomAffine(degrees=(low * 360, high * 360), fill=_FILL.get(fill_mode, "zeros"))
        super().__init__(Compose([rotate]), fill_mode, interpolation, fill_value, seed, name, input_shape)
        self.factor = factor


class RandomZoom(_RandomLayer):
    """Zoom by a random amount: ``height_factor`` ``f`` means ``(-f, f)``; positive values zoom out (the
    content shrinks to ``1 / (1 + value)``), as in Keras. ``width_factor=None`` keeps the aspect ratio;
    a ``width_factor`` equal to ``height_factor`` zooms the two axes independently (other values are
    not supported). The zoom is drawn uniformly in content scale.

    >>> RandomZoom(0.25).transform.transforms[0].zoom
    (0.8, 1.3333333333333333)
    """

    def __init__(
        self,
        height_factor: float | Sequence[float],
        width_factor: float | Sequence[float] | None = None,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        *,
        name: str | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        low, high = _range(height_factor, "height_factor", "RandomZoom")
        if width_factor is not None and _range(width_factor, "width_factor", "RandomZoom") != (low, high):
            raise ConfigError(
                "RandomZoom: a width_factor other than height_factor is not supported",
                where="RandomZoom",
                fix="leave width_factor out (same zoom on both axes) or make it equal to height_factor",
            )
        if low <= -1:
            raise ConfigError(f"RandomZoom: factors must be > -1. Received: {height_factor}", where="RandomZoom")
        fill = _FILL.get(fill_mode, "zeros")  # an unknown fill_mode is refused just below, by name
        zoom = RandomAffine(zoom=(1 / (1 + high), 1 / (1 + low)), keep_aspect=width_factor is None, fill=fill)
        super().__init__(Compose([zoom]), fill_mode, interpolation, fill_value, seed, name, input_shape)
        self.height_factor, self.width_factor = height_factor, width_factor


__all__ = ["RandomFlip", "RandomRotation", "RandomZoom"]
