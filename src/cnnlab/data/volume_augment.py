"""Batched, seeded augmentation for 3-D data: volumes ``(B, C, D, H, W)`` and clips ``(B, C, T, H, W)``.

The transforms follow :class:`~cnnlab.data.augment.Transform` (``draw`` the parameters, then ``apply``) and
plug into :class:`~cnnlab.data.augment.Compose`. Geometric ones (:class:`Flip3D`, :class:`RandomCrop3D`) move
label volumes too: :meth:`Compose.pair` hands them ``(B, D, H, W)`` or ``(B, 1, D, H, W)`` masks of class
indices, which they move with the image's parameters; :class:`Intensity` and :class:`Noise3D` change the
image alone. Batches are float (volumes keep their own intensity scale). For clips, only a left-right flip
makes sense: ``Flip3D(axes=(4,))`` (time must not run backwards, nor frames turn upside down).

>>> from cnnlab.data.augment import Compose
>>> volume = torch.arange(2 * 4 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4, 4)
>>> pipeline = Compose([Flip3D(), RandomCrop3D(2), Intensity(), Noise3D(0.01)])
>>> image, labels = pipeline.pair(volume, volume[:, 0].long(), torch.Generator().manual_seed(0))
>>> tuple(image.shape), tuple(labels.shape)
((2, 1, 2, 2, 2), (2, 2, 2, 2))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cnnlab.core.errors import ConfigError
from cnnlab.data.augment import TRANSFORMS, Kind, Params, Transform, _pair


def _five_d(x: torch.Tensor, kind: Kind, name: str) -> tuple[torch.Tensor, bool]:
    """``x`` as (B, C, D, H, W), and whether a channel axis was added (a (B, D, H, W) mask)."""
    if kind == "mask" and x.ndim == 4:
        return x[:, None], True
    if x.ndim != 5:
        raise ConfigError(
            f"{name} works on (B, C, D, H, W) batches (masks also (B, D, H, W)), got {tuple(x.shape)}",
            where=name,
            fix="use the 2-D transforms for images; give volumes and clips a channel axis",
        )
    return x, False


def _float_image(x: torch.Tensor, name: str) -> None:
    if not x.is_floating_point():
        raise ConfigError(f"{name} needs a float batch, got {x.dtype}", where=name, fix="put Rescale() before it")


@TRANSFORMS.register("flip3d")
class Flip3D(Transform):
    """Mirror along each of ``axes`` (2 = D, 3 = H, 4 = W of (B, C, D, H, W)) with probability ``p``, drawn
    per sample and axis.

    >>> Flip3D(axes=(4,), p=1.0)(torch.tensor([1.0, 2.0, 3.0]).view(1, 1, 1, 1, 3)).flatten().tolist()
    [3.0, 2.0, 1.0]
    """

    geometric = True

    def __init__(self, axes: Sequence[int] = (2, 3, 4), p: float = 0.5) -> None:
        if not axes or any(a not in (2, 3, 4) for a in axes):
            raise ConfigError(f"axes must be among 2, 3, 4 (D, H, W). Received: axes={axes}", where="Flip3D")
        self.axes, self.p = tuple(axes), p

    def draw(self, shape: torch.Size, generator: torch.Generator) -> Params:
        return {"flip": torch.rand(shape[0], len(self.axes), generator=generator) < self.p}

    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "image") -> torch.Tensor:
        x5, added = _five_d(x, kind, "Flip3D")
        out = x5
        for j, axis in enumerate(self.axes):
            flip = params["flip"][:, j]
            if flip.any():
                out = out.clone() if out is x5 else out
                out[flip] = out[flip].flip(axis)
        return out[:, 0] if added else out


@TRANSFORMS.register("random_crop3d")
class RandomCrop3D(Transform):
    """Crop a ``size`` box (one int for a cube, or (d, h, w)) at a random place per sample; a mask gets the
    same box.

    >>> x = torch.arange(64.0).view(1, 1, 4, 4, 4)
    >>> crop = RandomCrop3D((1, 2, 4))
    >>> params = crop.draw(x.shape, torch.Generator().manual_seed(0))
    >>> d, h, w = params["corner"][0].tolist()
    >>> torch.equal(crop.apply(x, params), x[:, :, d : d + 1, h : h + 2, w : w + 4])
    True
    """

    geometric = True

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = (size,) * 3 if isinstance(size, int) else tuple(size)
        if len(self.size) != 3 or min(self.size) < 1:
            raise ConfigError(f"size must be one or three positive ints. Received: size={size}", where="RandomCrop3D")

    def draw(self, shape: torch.Size, generator: torch.Generator) -> Params:
        room = [extent - s for extent, s in zip(shape[-3:], self.size, strict=True)]
        if min(room) < 0:
            raise ConfigError(
                f"crop {self.size} is larger than the volume {tuple(shape[-3:])}",
                where="RandomCrop3D",
                fix="crop smaller boxes or resize the volumes",
            )
        corner = [torch.randint(0, r + 1, (shape[0],), generator=generator) for r in room]
        return {"corner": torch.stack(corner, 1)}

    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "image") -> torch.Tensor:
        x5, added = _five_d(x, kind, "RandomCrop3D")
        b, c = x5.shape[:2]
        d, h, w = (params["corner"][:, i, None] + torch.arange(s) for i, s in enumerate(self.size))
        out = x5[
            torch.arange(b)[:, None, None, None, None],
            torch.arange(c)[None, :, None, None, None],
            d[:, None, :, None, None],
            h[:, None, None, :, None],
            w[:, None, None, None, :],
        ]
        return out[:, 0] if added else out


@TRANSFORMS.register("intensity")
class Intensity(Transform):
    """``x * a + b`` with ``a`` from ``scale`` and ``b`` from ``shift`` (uniform, one pair per sample, all
    channels alike), applied with probability ``p``; masks are left alone.

    >>> params = {"a": torch.tensor([2.0]), "b": torch.tensor([0.5])}
    >>> Intensity().apply(torch.ones(1, 1, 1, 1, 2), params).flatten().tolist()
    [2.5, 2.5]
    """

    def __init__(
        self, scale: float | Sequence[float] = (0.9, 1.1), shift: float | Sequence[float] = (-0.1, 0.1), p: float = 0.5
    ) -> None:
        self.scale, self.shift, self.p = _pair(scale, "scale", centre=1.0), _pair(shift, "shift"), p

    def draw(self, shape: torch.Size, generator: torch.Generator) -> Params:
        n = shape[0]
        a = self.scale[0] + (self.scale[1] - self.scale[0]) * torch.rand(n, generator=generator)
        b = self.shift[0] + (self.shift[1] - self.shift[0]) * torch.rand(n, generator=generator)
        on = torch.rand(n, generator=generator) < self.p
        return {"a": torch.where(on, a, 1.0), "b": torch.where(on, b, 0.0)}

    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "image") -> torch.Tensor:
        if kind == "mask":
            return x
        _float_image(x, "Intensity")
        view = (-1,) + (1,) * (x.ndim - 1)
        return x * params["a"].to(x.dtype).view(view) + params["b"].to(x.dtype).view(view)


@TRANSFORMS.register("noise3d")
class Noise3D(Transform):
    """Add Gaussian noise of standard deviation ``sigma`` (one value, or a (low, high) range drawn per
    sample) with probability ``p``; masks are left alone.

    >>> out = Noise3D(0.1)(torch.zeros(2, 1, 8, 8, 8), torch.Generator().manual_seed(0))
    >>> 0.08 < float(out.std()) < 0.12
    True
    """

    def __init__(self, sigma: float | Sequence[float], p: float = 1.0) -> None:
        self.sigma = (float(sigma),) * 2 if isinstance(sigma, int | float) else _pair(sigma, "sigma")
        if self.sigma[0] < 0:
            raise ConfigError(f"sigma must not be negative. Received: sigma={sigma}", where="Noise3D")
        self.p = p

    def draw(self, shape: torch.Size, generator: torch.Generator) -> Params:
        n = shape[0]
        sigma = self.sigma[0] + (self.sigma[1] - self.sigma[0]) * torch.rand(n, generator=generator)
        sigma = torch.where(torch.rand(n, generator=generator) < self.p, sigma, 0.0)
        return {"noise": torch.randn(shape, generator=generator) * sigma.view((-1,) + (1,) * (len(shape) - 1))}

    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "image") -> torch.Tensor:
        if kind == "mask":
            return x
        _float_image(x, "Noise3D")
        return x + params["noise"].to(x.dtype)
