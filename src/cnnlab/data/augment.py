"""Batched, seeded augmentation in two halves: ``draw`` the random parameters, then ``apply`` them.

Every transform works on a whole batch ``(B, C, H, W)`` of uint8 (0..255) or float (0..1)
tensors and draws one set of parameters per image from the ``torch.Generator`` it is given, so a
run is reproducible. Geometric transforms (``geometric = True``) apply the same parameters to
a mask, with nearest-neighbour sampling, which is what :meth:`Compose.pair` does for
segmentation; they move boxes too (kind ``"boxes"``: ``(B, M, 4)`` xyxy pixel corners, each
box's corners mapped and their enclosing box taken; :func:`clip_box_targets` then keeps what is
left inside the image), which is what :meth:`Compose.joint` does for detection. All affine moves
(rotation, shear, zoom, shift, resized crop) are fused into one ``grid_sample`` pass per batch, with
a :class:`Rescale` just before them folded in; all colour changes (brightness, contrast, saturation,
hue) into one 3x3 matrix per image.

>>> x = torch.arange(16, dtype=torch.uint8).reshape(1, 1, 4, 4).repeat(8, 1, 1, 1)
>>> pipeline = Compose([HorizontalFlip(), RandomCrop(padding=1), Rescale()])
>>> a = pipeline(x, torch.Generator().manual_seed(0))
>>> b = pipeline(x, torch.Generator().manual_seed(0))
>>> a.dtype, a.shape, torch.equal(a, b)
(torch.float32, torch.Size([8, 1, 4, 4]), True)
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.core.errors import ConfigError
from cnnlab.core.registry import Registry

Params = dict[str, torch.Tensor]
Fill = Literal["zeros", "nearest", "reflect"]
Kind = Literal["image", "mask", "boxes", "points", "signal"]
"""What a tensor given to a transform is: images (B, C, H, W); masks of class indices (B, 1, H, W);
boxes and points in pixel coordinates; signals (B, C, T). Geometry moves every kind a transform lists."""

TRANSFORMS: Registry[type[Transform]] = Registry("transform")
"""Transform classes by name; :func:`from_spec` and the CLI build pipelines from it."""

_GRID_PADDING = {"zeros": "zeros", "constant": "zeros", "nearest": "border", "reflect": "reflection"}


def _uniform(low: float, high: float, n: int, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _pair(value: float | Sequence[float], name: str, centre: float = 0.0) -> tuple[float, float]:
    """``r`` -> ``(centre - r, centre + r)``; a pair is taken as given."""
    if isinstance(value, int | float):
        if value < 0:
            raise ConfigError(f"{name} must not be negative. Received: {name}={value}", where=name)
        return centre - value, centre + value
    low, high = (float(v) for v in value)
    if low > high:
        raise ConfigError(f"{name} range is reversed. Received: {name}={tuple(value)}", where=name)
    return low, high


def _max_value(x: torch.Tensor) -> float:
    """255 for integer images, 1 for float images."""
    return 1.0 if x.is_floating_point() else 255.0


def _image_size(shape: torch.Size) -> torch.Tensor:
    """The ``size`` parameter, (height, width) of the input: flips and resamplings need it to move boxes."""
    return torch.tensor([shape[-2], shape[-1]])


def _size_of(params: Params, name: str) -> tuple[int, int]:
    if "size" not in params:
        raise ConfigError(
            f"{name} needs the image size to move boxes, and its parameters have none",
            where=name,
            fix="draw the parameters with draw(image.shape, generator), which records it",
        )
    height, width = params["size"].tolist()
    return int(height), int(width)


def _back(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Float result -> the dtype of ``like`` (rounded; clamped to 0..255 for uint8)."""
    if like.is_floating_point():
        return y.to(like.dtype)
    y = y.round_()
    return (y.clamp_(0, 255) if like.dtype == torch.uint8 else y).to(like.dtype)


class Transform(ABC):
    """Base: ``draw(shape, generator) -> params`` then ``apply(x, params, kind="image") -> x``.

    ``kind`` says what ``x`` is (:data:`Kind`): images are resampled and recoloured; a ``mask`` of class
    indices follows only the geometry, with nearest sampling. Other kinds (boxes, points, signals) are
    moved by the transforms that list them in ``kinds``; :meth:`Compose.joint` refuses the rest.
    """

    geometric: ClassVar[bool] = False
    """Whether targets in the image's geometry must follow this transform (flips, crops, affine moves)."""
    kinds: ClassVar[frozenset[str]] = frozenset({"image", "mask"})
    """The kinds of input this transform can apply to (a detection task adds ``boxes`` where it teaches it)."""

    def draw(self, shape: torch.Size, generator: torch.Generator) -> Params:
        """Random parameters for a batch of ``shape`` = (B, C, H, W); deterministic transforms return {}."""
        return {}

    @abstractmethod
    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "image") -> torch.Tensor:
        """Apply drawn parameters to ``x`` of ``kind`` (``"mask"``: class indices, nearest sampling, no colour)."""

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        return self.apply(x, self.draw(x.shape, generator))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Compose:
    """Transforms in order; callable as ``(batch, generator) -> batch`` (a ``TensorLoader`` transform).

    >>> image = torch.arange(25, dtype=torch.uint8).reshape(1, 1, 5, 5).repeat(4, 1, 1, 1)
    >>> pipeline = Compose([RandomCrop(padding=1), RandomRotation((90, 90)), HorizontalFlip(), VerticalFlip()])
    >>> out, mask = pipeline.pair(image, image.clone())
    >>> torch.equal(out, mask)  # the image is its own mask: geometry moved both the same way
    True
    """

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def _steps(self) -> list[tuple[Transform, float | None]]:
        """The transforms with a rescale factor each: a :class:`Rescale` right before a :class:`Resampling`
        is folded into it (same numbers up to float rounding, but no float copy of the whole batch)."""
        steps: list[tuple[Transform, float | None]] = []
        for t in self.transforms:
            if isinstance(t, Resampling) and steps and isinstance(steps[-1][0], Rescale) and steps[-1][1] is None:
                steps[-1] = (t, steps[-1][0].factor)
            else:
                steps.append((t, None))
        return steps

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        for t, scale in self._steps():
            params = t.draw(x.shape, generator)
            x = t.apply(x, params) if scale is None else t.apply(x, params, scale=scale)
        return x

    def joint(
        self, image: torch.Tensor, target: torch.Tensor, kind: Kind, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment images and a target of ``kind`` with the same random draws: every geometric transform
        moves the target too; colour and erasing transforms touch the image alone.

        >>> image, boxes = torch.zeros(1, 1, 4, 6), torch.tensor([[[0.0, 1.0, 2.0, 3.0]]])
        >>> Compose([HorizontalFlip(p=1.0), RandomCrop(padding=1)]).joint(image, boxes, "boxes")[1].shape
        torch.Size([1, 1, 4])
        >>> Compose([HorizontalFlip(p=1.0)]).joint(image, torch.zeros(1, 4), "points")
        Traceback (most recent call last):
        ...
        cnnlab.core.errors.ConfigError: HorizontalFlip cannot move points [Compose.joint]. Fix: leave it out here
        """
        if kind == "mask":
            return self.pair(image, target, generator)
        for t in self.transforms:
            if t.geometric and kind not in t.kinds:
                raise ConfigError(
                    f"{type(t).__name__} cannot move {kind}",
                    where="Compose.joint",
                    fix="leave it out here",
                )
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        for t, scale in self._steps():
            params = t.draw(image.shape, generator)
            image = t.apply(image, params) if scale is None else t.apply(image, params, scale=scale)
            if t.geometric:
                target = t.apply(target, params, kind=kind)
        return image, target

    def pair(
        self, image: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment images ``(B, C, H, W)`` and masks ``(B, H, W)`` or ``(B, 1, H, W)`` with shared geometry."""
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        squeeze = mask.ndim == 3
        m = mask[:, None] if squeeze else mask
        for t, scale in self._steps():
            params = t.draw(image.shape, generator)
            image = t.apply(image, params) if scale is None else t.apply(image, params, scale=scale)
            if t.geometric:
                m = t.apply(m, params, kind="mask")
        return image, (m[:, 0] if squeeze else m)

    def __repr__(self) -> str:
        return "Compose([\n" + "".join(f"    {t!r},\n" for t in self.transforms) + "])"


@TRANSFORMS.register("hflip")
class HorizontalFlip(Transform):
    """Mirror left-right with probability ``p`` (per image).

    >>> HorizontalFlip(p=1.0)(torch.tensor([[[[1, 2, 3]]]])).tolist()
    [[[[3, 2, 1]]]]
    >>> flip = HorizontalFlip(p=1.0)
    >>> params = flip.draw(torch.Size([1, 3, 8, 10]), torch.Generator())  # a batch of one 8x10 image
    >>> flip.apply(torch.tensor([[[1.0, 2.0, 4.0, 3.0]]]), params, "boxes")
    tensor([[[6., 2., 9., 3.]]])
    """

    geometric = True
    kinds = frozenset({"image", "mask", "boxes"})
    _dim = -1

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def draw(self, shape: torch.Size, generator: torch.Generator) -> Params:
        return {"flip": torch.rand(shape[0], generator=generator) < self.p, "size": _image_size(shape)}

    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "image") -> torch.Tensor:
        flip = params["flip"]
        if not flip.any():
            return x
        out = x.clone()
        if kind == "boxes":  # (B, M, 4) xyxy: x1' = W - x2, x2' = W - x1 (y for a vertical flip)
            extent = _size_of(params, type(self).__name__)[self._dim]
            axis = 0 if self._dim == -1 else 1
            out[flip, :, axis] = extent - x[flip, :, axis + 2]
            out[flip, :, axis + 2] = extent - x[flip, :, axis]
            return out
        out[flip] = x[flip].flip(self._dim)
        return out


@TRANSFORMS.register("vflip")
class VerticalFlip(HorizontalFlip):
    """Mirror top-bottom with probability ``p`` (per image)."""

    _dim = -2


def _gather_windows(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Per-image windows ``x[b, :, top_b : top_b + height, left_b : left_b + width]`` in one indexing op."""
    b, c = x.shape[:2]
    rows = top[:, None] + torch.arange(height)  # (B, h)
    cols = left[:, None] + torch.arange(width)  # (B, w)
    return x[
        torch.arange(b)[:, None, None, None],
        torch.arange(c)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]  # (B, C, h, w)


@TRANSFORMS.register("random_crop")
class RandomCrop(Transform):
    """Pad by ``padding`` (zero or reflect), then crop ``size`` (default: the input size) at a random place.

    >>> x = torch.ones(4, 1, 6, 6, dtype=torch.uint8)
    >>> out = RandomCrop(padding=2)(x, torch.Generator().manual_seed(1))
    >>> out.shape, bool((out == 0).any())
    (torch.Size([4, 1, 6, 6]), True)
    >>> RandomCrop(padding=2).apply(torch.tensor([[[1.0, 1, 3, 3]]]), {"top": torch.tensor([0]),
    ...                             "left": torch.tensor([4])}, "boxes")  # boxes shift by padding - corner
    tensor([[[-1.,  3.,  1.,  5.]]])
    """

    geometric = True
    kinds = frozenset({"image", "mask", "boxes"})

    def __init__(
        self, size: int | tuple[int, int] | None = None, padding: int = 0, pad_mode: Literal["zero", "reflect"] = "zero"
    ) -> None:
        if pad_mode not in ("zero", "reflect"):
            raise ConfigError(
                f"pad_mode must be 'zero' or 'reflect'. Received: pad_mode={pad_mode!r}", where="pad_mode"
            )
        self.size = (size, size) if isinstance(size, int) else size
        self.padding, self.pad_mode = padding, pad_mode

    def _out(self, shape: torch.Size) -> tuple[int, int]:
        return self.size or (shape[-2], shape[-1])

    def draw(self, shape: torch.Size, generator: torch.Generator) -> Params:
        height, width = self._out(shape)
        room_y = shape[-2] + 2 * self.padding - height
        room_x = shape[-1] + 2 * self.padding - width
        if room_y < 0 or room_x < 0:
            raise ConfigError(
                f"crop {height}x{width} is larger than the padded image {shape[-2]}x{shape[-1]} (+{self.padding})",
                where="RandomCrop",
            )
        top = torch.randint(0, room_y + 1, (shape[0],), generator=generator)
        left = torch.randint(0, room_x + 1, (shape[0],), generator=generator)
        return {"top": top, "left": left}

    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "image") -> torch.Tensor:
        if kind == "boxes":
            dx, dy = self.padding - params["left"].to(x.dtype), self.padding - params["top"].to(x.dtype)
            return x + torch.stack([dx, dy, dx, dy], -1)[:, None, :]  # (B, 1, 4) per-image shift
        height, width = self._out(x.shape)
        if self.padding:
            p = self.padding
            x = F.pad(x, (p, p, p, p), mode="reflect" if self.pad_mode == "reflect" else "constant")
        return _gather_windows(x, params["top"], params["left"], height, width)


_CHUNK_ELEMENTS = 1 << 18
"""Output values one thread resamples at a time: the float input, grid and output of a chunk stay in cache."""


def _new_batch(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """``torch.empty``, but allocated by numpy for float32: numpy asks Linux for transparent huge pages and
    torch does not (unless ``THP_MEM_ALLOC_ENABLE=1``), so first writes to a fresh 38 MB batch (64x3x224x224)
    fault in 2 MB pages instead of 4 KB ones: 5 ms instead of 17 on the benchmark machine."""
    if dtype == torch.float32:
        return torch.from_numpy(np.empty(shape, dtype=np.float32))
    return torch.empty(shape, dtype=dtype)


def _grid_lines(theta: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The parts of ``F.affine_grid`` (align_corners=False) that vary per row (B, 2, H) and per column (B, 2, W).

    The grid itself is ``rows[..., None] + cols[:, :, None]``: x and y planes (B, 2, H, W), built by
    one add along contiguous rows and read by ``grid_sample`` through a (B, H, W, 2) view as fast as
    a contiguous grid.
    """
    height, width = size
    xs = (torch.arange(width, dtype=theta.dtype) * 2 + 1) / width - 1  # pixel centres in [-1, 1]
    ys = (torch.arange(height, dtype=theta.dtype) * 2 + 1) / height - 1
    return theta[:, :, 1, None] * ys + theta[:, :, 2, None], theta[:, :, 0, None] * xs


def _sample(
    x: torch.Tensor, theta: torch.Tensor, size: tuple[int, int], fill: Fill, kind: Kind, scale: float | None = None
) -> torch.Tensor:
    """Resample every image through its own 2x3 matrix ``theta`` (normalised output -> input coordinates).

    The batch goes through ``grid_sample`` a few images at a time, written into one preallocated
    output: no batch-sized float copy of the input or grid is ever made (at 224x224 those
    allocations, page faults included, cost more than the sampling). ``scale`` (a folded
    :class:`Rescale`) multiplies the result, which is then float32 whatever the input dtype.
    """
    b, c = x.shape[:2]
    out = _new_batch((b, c, *size), x.dtype if scale is None else torch.float32)
    step = torch.get_num_threads() * max(1, _CHUNK_ELEMENTS // (c * size[0] * size[1]))
    mode = "nearest" if kind == "mask" else "bilinear"
    rows, cols = _grid_lines(theta, size)
    for i in range(0, b, step):
        grid = rows[i : i + step, :, :, None] + cols[i : i + step, :, None]  # (b, 2, H, W)
        y = F.grid_sample(
            x[i : i + step].float(),
            grid.permute(0, 2, 3, 1),
            mode=mode,
            padding_mode=_GRID_PADDING[fill],
            align_corners=False,
        )
        if scale is None:
            out[i : i + step] = _back(y, x)
        else:
            torch.mul(y, scale, out=out[i : i + step])
    return out


class Resampling(Transform):
    """Base of transforms that resample each image through its own 2x3 matrix ``params["theta"]``.

    A mask gets the same ``fill`` as the image, so reflected or repeated pixels keep their labels.
    Boxes ``(B, M, 4)`` go the other way, input to output (the inverse of ``theta``): each is first cut to
    the input image (pixels outside it do not exist, yet a turn or a zoom-out can bring that place into
    view), then its four corners are mapped and the enclosing box taken (exact for shifts, zooms, flips
    and quarter turns; a box turned by another angle grows to hold its turned corners). Content that
    ``reflect`` or ``nearest`` fill brings in from outside gets no box. :class:`Compose` folds a
    :class:`Rescale` that comes right before one of these into its ``apply(..., scale=)``, so a uint8
    batch is never copied to float as a whole.
    """

    geometric = True
    kinds = frozenset({"image", "mask", "boxes"})
    fill: Fill = "zeros"

    def output_size(self, shape: torch.Size) -> tuple[int, int]:
        """(height, width) of the result for an input of ``shape``; the input size unless overridden."""
        return shape[-2], shape[-1]

    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "image", scale: float | None = None) -> torch.Tensor:
        """As :meth:`Transform.apply`; ``scale`` multiplies the (then float32) result, as a Rescale before it would."""
        if kind == "boxes":
            size = _size_of(params, type(self).__name__)
            return _resample_boxes(x, params["theta"], size, self.output_size(torch.Size(size)))
        return _sample(x, params["theta"], self.output_size(x.shape), self.fill, kind, scale)


def _resample_boxes(
    boxes: torch.Tensor, theta: torch.Tensor, size: tuple[int, int], out_size: tuple[int, int]
) -> torch.Tensor:
    """Boxes (B, M, 4) in input pixels -> the enclosing boxes of their corners in output pixels.

    ``theta`` maps normalised output to input coordinates (``grid_sample``'s convention, align_corners
    False: pixel edge 0 is -1 and edge W is +1), so a corner goes through ``theta``'s inverse.
    """
    (height, width), (out_h, out_w) = size, out_size
    boxes = torch.minimum(boxes.clamp(min=0), torch.tensor([width, height, width, height], dtype=boxes.dtype))
    x1, y1, x2, y2 = boxes.unbind(-1)
    u = torch.stack([x1, x2, x1, x2], -1) * (2 / width) - 1 - theta[:, 0, 2, None, None]  # (B, M, 4 corners)
    v = torch.stack([y1, y1, y2, y2], -1) * (2 / height) - 1 - theta[:, 1, 2, None, None]
    inverse = torch.linalg.inv(theta[:, :, :2].double()).to(boxes.dtype)[:, :, :, None, None]  # (B, 2, 2, 1, 1)
    xs = (inverse[:, 0, 0] * u + inverse[:, 0, 1] * v + 1) * (out_w / 2)
    ys = (inverse[:, 1, 0] * u + inverse[:, 1, 1] * v + 1) * (out_h / 2)
    return torch.stack([xs.amin(-1), ys.amin(-1), xs.amax(-1), ys.amax(-1)], -1)


@TRANSFORMS.register("affine")
class RandomAffine(Resampling):
    """Rotation, shift, shear and zoom fused into one resampling per batch.

    ``degrees``: rotation range (counter-clockwise positive); ``translate``: (x, y) maximum shift,
    a fraction of width/height when below 1, else pixels; ``shear``: degrees of horizontal shear;
    ``zoom``: range of content scale (>1 enlarges), drawn separately for x and y unless
    ``keep_aspect``; ``fill``: ``zeros``, ``nearest`` (repeat the edge, Keras's default) or ``reflect``;
    ``hflip`` / ``vflip``: probabilities of a mirror folded into the same resampling (cheaper than a
    separate flip).

    >>> x = torch.zeros(1, 1, 5, 5); x[0, 0, 2, 4] = 1  # a dot right of centre
    >>> RandomAffine(degrees=(90, 90))(x)[0, 0].nonzero().tolist()  # turned a quarter counter-clockwise: above
    [[0, 2]]
    """

    def __init__(
        self,
        degrees: float | Sequence[float] = 0.0,
        translate: Sequence[float] = (0.0, 0.0),
        shear: float | Sequence[float] = 0.0,
        zoom: float | Sequence[float] = (1.0, 1.0),
        keep_aspect: bool = True,
        fill: Fill = "zeros",
        hflip: float = 0.0,
        vflip: float = 0.0,
    ) -> None:
        if fill not in _GRID_PADDING:
            raise ConfigError(f"fill must be one of {sorted(_GRID_PADDING)}. Received: fill={fill!r}", where="fill")
        self.degrees = _pair(degrees, "degrees")
        self.translate = (float(translate[0]), float(translate[1]))
        self.shear = _pair(shear, "shear")
        self.zoom = _pair(zoom, "zoom", centre=1.0) if isinstance(zoom, int | float) else _pair(zoom, "zoom")
        if self.zoom[0] <= 0:
            raise ConfigError(f"zoom must be positive. Received: zoom={zoom}", where="zoom")
        self.keep_aspect, self.fill = keep_aspect, fill
        self.hflip, self.vflip = hflip, vflip

    def draw(self, shape: torch.Size, generator: torch.Generator) -> Params:
        n, height, width = shape[0], shape[-2], shape[-1]
        angle = torch.deg2rad(_uniform(*self.degrees, n, generator))
        fx, fy = self.translate
        # As in Keras: a shift below 1 is a fraction of the size, from 1 up it is pixels.
        tx = _uniform(-fx, fx, n, generator) * (width if fx < 1 else 1)
        ty = _uniform(-fy, fy, n, generator) * (height if fy < 1 else 1)
        shear = torch.deg2rad(_uniform(*self.shear, n, generator))
        zx = _uniform(*self.zoom, n, generator)
        zy = zx if self.keep_aspect else _uniform(*self.zoom, n, generator)
        cos, sin, k = torch.cos(angle), torch.sin(angle), torch.tan(shear)
        # Forward map of content in pixel coordinates about the centre (x right, y down):
        # p' = L p + t with L = rotate [[c, s], [-s, c]] @ skew [[1, k], [0, 1]] @ scale diag(zx, zy).
        # Flips come first and are folded into the matrix: a mirrored axis is a negative scale, at no extra cost.
        zx = torch.where(torch.rand(n, generator=generator) < self.hflip, -zx, zx) if self.hflip else zx
        zy = torch.where(torch.rand(n, generator=generator) < self.vflip, -zy, zy) if self.vflip else zy
        a, b = cos * zx, (cos * k + sin) * zy
        c, d = -sin * zx, (cos - sin * k) * zy
        det = a * d - b * c
        ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det  # L^-1: sampling maps output -> input
        # In grid_sample's [-1, 1] units (x scaled by 2/W, y by 2/H): theta = N [L^-1, -L^-1 t] N^-1.
        theta = torch.stack(
            [
                torch.stack([ia, ib * height / width, -(ia * tx + ib * ty) * 2 / width], -1),
                torch.stack([ic * width / height, id_, -(ic * tx + id_ * ty) * 2 / height], -1),
            ],
            1,
        )
        return {"theta": theta, "size": _image_size(shape)}  # theta (B, 2, 3)


@TRANSFORMS.register("rotation")
class RandomRotation(RandomAffine):
    """Rotate by a random angle in ``(-degrees, degrees)``."""

    def __init__(self, degrees: float | Sequence[float], fill: Fill = "zeros") -> None:
        super().__init__(degrees=degrees, fill=fill)


@TRANSFORMS.register("shear")
class RandomShear(RandomAffine):
    """Shear horizontally by a random angle in ``(-degrees, degrees)``."""

    def __init__(self, degrees: float | Sequence[float], fill: Fill = "zeros") -> None:
        super().__init__(shear=degrees, fill=fill)


@TRANSFORMS.register("zoom")
class RandomZoom(RandomAffine):
    """Scale content by a random factor in ``(1 - amount, 1 + amount)`` (or a given range)."""

    def __init__(self, amount: float | Sequence[float], keep_aspect: bool = True, fill: Fill = "zeros") -> None:
        super().__init__(zoom=amount, keep_aspect=keep_aspect, fill=fill)


@TRANSFORMS.register("shift")
class RandomShift(RandomAffine):
    """Shift by up to ``fraction_x`` of the width and ``fraction_y`` of the height."""

    def __init__(self, fraction_x: float, fraction_y: float | None = None, fill: Fill = "zeros") -> None:
        super().__init__(translate=(fraction_x, fraction_x if fraction_y is None else fraction_y), fill=fill)


@TRANSFORMS.register("random_resized_crop")
class RandomResizedCrop(Resampling):
    """Crop a random box (area ``scale``, aspect ``ratio``) and resize it to ``size`` (Inception-style).

    Boxes are drawn as in torchvision (10 tries, then the centred largest box that fits the
    ratio); the resize is bilinear without antialiasing, so decode to about the target size first.

    >>> RandomResizedCrop(8)(torch.zeros(3, 3, 32, 20, dtype=torch.uint8)).shape
    torch.Size([3, 3, 8, 8])
    """

    def __init__(
        self,
        size: int | tuple[int, int],
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
    ) -> None:
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.scale, self.ratio = tuple(scale), tuple(ratio)

    def draw(self, shape: torch.Size, generator: torch.Generator) -> Params:
        n, height, width, tries = shape[0], shape[-2], shape[-1], 10
        area = height * width * _uniform(*self.scale, n * tries, generator)
        log_ratio = _uniform(math.log(self.ratio[0]), math.log(self.ratio[1]), n * tries, generator)
        aspect = torch.exp(log_ratio)
        w = torch.sqrt(area * aspect).round().reshape(n, tries)
        h = torch.sqrt(area / aspect).round().reshape(n, tries)
        ok = (w > 0) & (h > 0) & (w <= width) & (h <= height)
        first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((n,), -1))
        # Fallback (no try fits): the whole image, cut to the nearest allowed aspect ratio.
        in_ratio = width / height
        fw, fh = (
            (round(height * self.ratio[1]), height)
            if in_ratio > self.ratio[1]
            else ((width, round(width / self.ratio[0])) if in_ratio < self.ratio[0] else (width, height))
        )
        pick = first.clamp(min=0)[:, None]
        bw = torch.where(first >= 0, w.gather(1, pick)[:, 0], torch.tensor(float(fw)))
        bh = torch.where(first >= 0, h.gather(1, pick)[:, 0], torch.tensor(float(fh)))
        top = torch.floor(torch.rand(n, generator=generator) * (height - bh + 1))
        left = torch.floor(torch.rand(n, generator=generator) * (width - bw + 1))
        top = torch.where(first >= 0, top, (height - bh) // 2)
        left = torch.where(first >= 0, left, (width - bw) // 2)
        # Box -> output: scale by box/image size, move the centre to the box centre (normalised units).
        zero = torch.zeros(n)
        cx = (left + bw / 2) * 2 / width - 1
        cy = (top + bh / 2) * 2 / height - 1
        theta = torch.stack([torch.stack([bw / width, zero, cx], -1), torch.stack([zero, bh / height, cy], -1)], 1)
        return {"theta": theta, "box": torch.stack([top, left, bh, bw], 1), "size": _image_size(shape)}

    def output_size(self, shape: torch.Size) -> tuple[int, int]:
        return self.size


def clip_box_targets(
    targets: torch.Tensor, height: int, width: int, min_size: float = 2.0, min_visible: float = 0.25
) -> torch.Tensor:
    """Clip moved box targets ``(B, M, 5)`` (rows ``[class, x1, y1, x2, y2]``) to a ``height`` x ``width``
    image; a row whose clipped box is narrower or lower than ``min_size`` pixels, or keeps less than
    ``min_visible`` of its moved, unclipped area, becomes padding: class -1, zero box. (A resampling
    transform cuts boxes to its input image first, so after one the share is measured from there.)

    What is left of an object cut to under a quarter, or to a sliver, no longer shows what it is;
    training on it teaches the detector to see objects in their edges.

    >>> targets = torch.tensor([[[0.0, -4, 2, 6, 8], [1.0, 8, 0, 20, 6], [2.0, 9, 9, 12, 12], [-1.0, 0, 0, 0, 0]]])
    >>> clip_box_targets(targets, 10, 10).tolist()  # kept; a sixth left; a 1-pixel sliver; padding
    [[[0.0, 0.0, 2.0, 6.0, 8.0], [-1.0, 0.0, 0.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0, 0.0]]]
    """
    boxes = targets[..., 1:]
    before = (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)
    limits = torch.tensor([width, height, width, height], dtype=boxes.dtype)
    clipped = torch.minimum(boxes.clamp(min=0), limits)
    w, h = clipped[..., 2] - clipped[..., 0], clipped[..., 3] - clipped[..., 1]
    valid = (targets[..., 0] >= 0) & (w >= min_size) & (h >= min_size) & (w * h >= min_visible * before)
    classes = torch.where(valid, targets[..., 0], torch.full_like(targets[..., 0], -1.0))
    return torch.cat([classes[..., None], torch.where(valid[..., None], clipped, torch.zeros_like(clipped))], -1)


_LUMA = torch.tensor([0.299, 0.587, 0.114])
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


@TRANSFORMS.register("color")
class ColorJitter(Transform):
    """Random brightness, contrast, saturation (factors in ``1 ± amount``) and hue (turns in ``± hue``).

    Applied in that order as one affine colour map per image: brightness scales, contrast blends
    with the image's mean gray, saturation blends with each pixel's gray (ITU-R 601 luma), and hue
    rotates the chroma plane of YIQ (gray stays gray). Values are clipped once, at the end.
    Grayscale images get brightness and contrast only.

    >>> x = torch.full((2, 3, 4, 4), 100, dtype=torch.uint8)
    >>> ColorJitter(brightness=(1.5, 1.5))(x).unique().tolist()
    [150]
    """

    def __init__(
        self,
        brightness: float | Sequence[float] = 0.0,
        contrast: float | Sequence[float] = 0.0,
        saturation: float | Sequence[float] = 0.0,
        hue: float | Sequence[float] = 0.0,
    ) -> None:
        self.brightness = _factor(brightness, "brightness")
        self.contrast = _factor(contrast, "contrast")
        self.saturation = _factor(saturation, "saturation")
        self.hue = _pair(hue, "hue")

    def draw(self, shape: torch.Size, generator: torch.Generator) -> Params:
        n = shape[0]
        return {
            "brightness": _uniform(*self.brightness, n, generator),
            "contrast": _uniform(*self.contrast, n, generator),
            "saturation": _uniform(*self.saturation, n, generator),
            "hue": _uniform(*self.hue, n, generator),
        }

    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "image") -> torch.Tensor:
        b, c = params["brightness"], params["contrast"]
        y = x.float()  # (B, C, H, W)
        gray = (y * _LUMA.view(1, 3, 1, 1)).sum(1, keepdim=True) if x.shape[1] == 3 else y
        mean_gray = gray.mean(dim=(1, 2, 3))  # (B,)
        offset = ((1 - c) * b * mean_gray).view(-1, 1, 1, 1)
        if x.shape[1] != 3:
            return _back(torch.clamp(y * (c * b).view(-1, 1, 1, 1) + offset, 0, _max_value(x)), x)
        s, angle = params["saturation"], params["hue"] * 2 * math.pi
        eye = torch.eye(3).expand(len(b), 3, 3)
        saturate = s.view(-1, 1, 1) * eye + (1 - s).view(-1, 1, 1) * _LUMA.view(1, 1, 3).expand(len(b), 3, 3)
        turn = torch.zeros(len(b), 3, 3)
        turn[:, 0, 0] = 1
        turn[:, 1, 1], turn[:, 1, 2], turn[:, 2, 1], turn[:, 2, 2] = angle.cos(), -angle.sin(), angle.sin(), angle.cos()
        hue = torch.linalg.inv(_RGB_TO_YIQ) @ turn @ _RGB_TO_YIQ
        matrix = (c * b).view(-1, 1, 1) * hue @ saturate  # (B, 3, 3)
        out = torch.einsum("bij,bjhw->bihw", matrix, y) + offset
        return _back(out.clamp_(0, _max_value(x)), x)


def _factor(value: float | Sequence[float], name: str) -> tuple[float, float]:
    low, high = _pair(value, name, centre=1.0)
    return max(low, 0.0), high


@TRANSFORMS.register("pca_color")
class PCAColor(Transform):
    """AlexNet's colour augmentation: add ``[p1 p2 p3] [a1 l1, a2 l2, a3 l3]^T`` to every pixel.

    ``p_i`` and ``l_i`` are the eigenvectors and eigenvalues of the 3x3 covariance of RGB values
    (scaled to [0, 1]) over the training set (:meth:`fit`), and ``a_i ~ N(0, std)`` is drawn once
    per image (Krizhevsky et al. 2012, section 4.1, std 0.1).

    >>> images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    >>> pca = PCAColor.fit(images)
    >>> pca.eigenvalues.shape, pca(images).shape
    (torch.Size([3]), torch.Size([4, 3, 8, 8]))
    """

    def __init__(self, eigenvalues: Sequence[float], eigenvectors: Sequence[Sequence[float]], std: float = 0.1) -> None:
        self.eigenvalues = torch.as_tensor(eigenvalues, dtype=torch.float64)  # (3,)
        self.eigenvectors = torch.as_tensor(eigenvectors, dtype=torch.float64)  # (3, 3), columns p_i
        self.std = std

    @classmethod
    def fit(cls, images: torch.Tensor, std: float = 0.1, max_pixels: int = 10_000_000) -> PCAColor:
        """Eigen-decompose the RGB covariance of ``images`` (B, 3, H, W) (a strided sample past ``max_pixels``)."""
        pixels = images.permute(1, 0, 2, 3).reshape(3, -1)  # (3, P)
        step = max(1, pixels.shape[1] // max_pixels)
        pixels = pixels[:, ::step].double() / (255.0 if not images.is_floating_point() else 1.0)
        eigenvalues, eigenvectors = torch.linalg.eigh(torch.cov(pixels))
        return cls(eigenvalues.clamp(min=0), eigenvectors, std)

    def draw(self, shape: torch.Size, generator: torch.Generator) -> Params:
        return {"alpha": torch.randn(shape[0], 3, generator=generator, dtype=torch.float64) * self.std}

    def offsets(self, alpha: torch.Tensor) -> torch.Tensor:
        """Per-image RGB offsets (B, 3) in [0, 1] units: ``P (alpha * lambda)``."""
        return (alpha * self.eigenvalues) @ self.eigenvectors.T

    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "image") -> torch.Tensor:
        y = x if x.is_floating_point() else x.float()
        shift = (self.offsets(params["alpha"]) * _max_value(x)).to(y.dtype).view(-1, 3, 1, 1)
        return _back((y + shift).clamp_(0, _max_value(x)), x)


@TRANSFORMS.register("erase")
class RandomErasing(Transform):
    """With probability ``p`` fill one random box (area ``scale``, aspect ``ratio``) with ``value`` (Zhong et al.).

    >>> out = RandomErasing(p=1.0, scale=(0.25, 0.25), ratio=(1.0, 1.0))(torch.ones(2, 1, 8, 8))
    >>> (out == 0).sum(dim=(1, 2, 3)).tolist()
    [16, 16]
    """

    def __init__(
        self,
        p: float = 0.5,
        scale: Sequence[float] = (0.02, 0.33),
        ratio: Sequence[float] = (0.3, 3.3),
        value: float = 0,
    ) -> None:
        self.p, self.scale, self.ratio, self.value = p, tuple(scale), tuple(ratio), value

    def draw(self, shape: torch.Size, generator: torch.Generator) -> Params:
        n, height, width = shape[0], shape[-2], shape[-1]
        area = height * width * _uniform(*self.scale, n, generator)
        aspect = torch.exp(_uniform(math.log(self.ratio[0]), math.log(self.ratio[1]), n, generator))
        h = torch.sqrt(area / aspect).round().clamp(1, height)
        w = torch.sqrt(area * aspect).round().clamp(1, width)
        top = torch.floor(torch.rand(n, generator=generator) * (height - h + 1))
        left = torch.floor(torch.rand(n, generator=generator) * (width - w + 1))
        on = torch.rand(n, generator=generator) < self.p
        return {"box": torch.stack([top, left, top + h, left + w], 1).long(), "on": on}

    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "image") -> torch.Tensor:
        inside = _box_mask(params["box"], x.shape[-2], x.shape[-1]) & params["on"].view(-1, 1, 1, 1)
        return x.masked_fill(inside, self.value)


@TRANSFORMS.register("cutout")
class Cutout(RandomErasing):
    """Zero a ``size`` x ``size`` square centred anywhere in the image, clipped at the border (DeVries & Taylor)."""

    def __init__(self, size: int, p: float = 1.0, value: float = 0) -> None:
        self.size, self.p, self.value = size, p, value

    def draw(self, shape: torch.Size, generator: torch.Generator) -> Params:
        n, height, width = shape[0], shape[-2], shape[-1]
        cy = torch.randint(0, height, (n,), generator=generator)
        cx = torch.randint(0, width, (n,), generator=generator)
        on = torch.rand(n, generator=generator) < self.p
        half = self.size // 2
        box = torch.stack([cy - half, cx - half, cy - half + self.size, cx - half + self.size], 1)
        return {"box": box, "on": on}


def _box_mask(box: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 1, H, W) bool: inside ``[top, bottom) x [left, right)`` per image."""
    rows = torch.arange(height).view(1, -1)
    cols = torch.arange(width).view(1, -1)
    inside_rows = (rows >= box[:, 0:1]) & (rows < box[:, 2:3])  # (B, H)
    inside_cols = (cols >= box[:, 1:2]) & (cols < box[:, 3:4])  # (B, W)
    return (inside_rows[:, :, None] & inside_cols[:, None, :])[:, None]


@TRANSFORMS.register("rescale")
class Rescale(Transform):
    """To float, times ``factor`` (default 1/255: uint8 -> [0, 1]); Keras's ``rescale``.

    >>> Rescale()(torch.tensor([0, 255], dtype=torch.uint8)).tolist()
    [0.0, 1.0]
    """

    def __init__(self, factor: float = 1 / 255) -> None:
        self.factor = factor

    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "image") -> torch.Tensor:
        return x.float() * self.factor


@TRANSFORMS.register("normalize")
class Normalize(Transform):
    """``(x - mean) / std`` per channel, on float input (rescale first); uint8 is scaled by 1/255 first.

    >>> Normalize([0.5], [0.5])(torch.tensor([[[[0.0, 1.0]]]])).tolist()
    [[[[-1.0, 1.0]]]]
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean, self.std = list(mean), list(std)
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"std must be positive. Received: std={self.std}", where="Normalize")

    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "image") -> torch.Tensor:
        y = x.float() / 255.0 if not x.is_floating_point() else x
        mean = torch.tensor(self.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.std).view(1, -1, 1, 1)
        return (y - mean) / std


class _Mix(ABC):
    """Shared parts of MixUp and CutMix: they act on images and one-hot targets together."""

    def __init__(self, alpha: float = 1.0, num_classes: int | None = None) -> None:
        if alpha <= 0:
            raise ConfigError(f"alpha must be positive. Received: alpha={alpha}", where=type(self).__name__)
        self.alpha, self.num_classes = alpha, num_classes

    def _targets(self, y: torch.Tensor) -> torch.Tensor:
        if y.is_floating_point():
            return y
        if self.num_classes is None:
            raise ConfigError("integer labels need num_classes", where=type(self).__name__, fix="pass num_classes=")
        return F.one_hot(y.long(), self.num_classes).float()

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        return self.apply(x, y, self.draw(x.shape, generator))

    def draw(self, shape: torch.Size, generator: torch.Generator) -> Params:
        """A partner for every image (a random permutation) and a mixing weight ``lam ~ Beta(alpha, alpha)``."""
        perm = torch.randperm(shape[0], generator=generator)
        # torch's Beta sampler only uses the global RNG; seed numpy's from the batch generator instead.
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        lam = np.random.default_rng(seed).beta(self.alpha, self.alpha)
        return {"perm": perm, "lam": torch.tensor(float(lam))}

    @abstractmethod
    def apply(self, x: torch.Tensor, y: torch.Tensor, params: Params) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix the batch ``x`` and its targets ``y`` with the drawn ``params``."""


class MixUp(_Mix):
    """MixUp (Zhang et al. 2018): ``lam * x + (1 - lam) * x[perm]``, targets mixed the same way.

    Works on (images, labels) together, so it runs on the batch after the image pipeline.

    >>> x, y = torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 2, 3])
    >>> out, soft = MixUp(alpha=0.4, num_classes=4)(x, y, torch.Generator().manual_seed(0))
    >>> soft.shape, torch.allclose(soft.sum(1), torch.ones(4))
    (torch.Size([4, 4]), True)
    """

    def apply(self, x: torch.Tensor, y: torch.Tensor, params: Params) -> tuple[torch.Tensor, torch.Tensor]:
        lam, perm = params["lam"], params["perm"]
        soft = self._targets(y)
        mixed = lam * x.float() + (1 - lam) * x[perm].float()
        return _back(mixed, x), lam * soft + (1 - lam) * soft[perm]


class CutMix(_Mix):
    """CutMix (Yun et al. 2019): paste a box from ``x[perm]``; targets weighted by the pasted area."""

    def draw(self, shape: torch.Size, generator: torch.Generator) -> Params:
        params = super().draw(shape, generator)
        height, width = shape[-2], shape[-1]
        cut = math.sqrt(1.0 - float(params["lam"]))
        h, w = int(height * cut), int(width * cut)
        cy = int(torch.randint(0, height, (1,), generator=generator))
        cx = int(torch.randint(0, width, (1,), generator=generator))
        top, bottom = max(cy - h // 2, 0), min(cy + h // 2, height)
        left, right = max(cx - w // 2, 0), min(cx + w // 2, width)
        params["box"] = torch.tensor([top, left, bottom, right])
        # The real weight is the area kept after clipping the box at the border.
        params["lam"] = torch.tensor(1.0 - (bottom - top) * (right - left) / (height * width))
        return params

    def apply(self, x: torch.Tensor, y: torch.Tensor, params: Params) -> tuple[torch.Tensor, torch.Tensor]:
        top, left, bottom, right = params["box"].tolist()
        out = x.clone()
        out[..., top:bottom, left:right] = x[params["perm"]][..., top:bottom, left:right]
        soft = self._targets(y)
        lam = params["lam"]
        return out, lam * soft + (1 - lam) * soft[params["perm"]]


def from_spec(spec: Sequence[str | dict[str, Any]]) -> Compose:
    """A pipeline from names or ``{"name": ..., **options}`` dicts (names from :data:`TRANSFORMS`).

    >>> from_spec(["hflip", {"name": "random_crop", "padding": 4}]).transforms[1].padding
    4
    """
    transforms = []
    for item in spec:
        options = {"name": item} if isinstance(item, str) else dict(item)
        name = options.pop("name")
        cls = TRANSFORMS.get(name)
        try:
            transforms.append(cls(**options))
        except TypeError as exc:
            raise ConfigError(f"bad options for transform '{name}': {exc}", where=name) from None
    return Compose(transforms)


KERAS_NAMES = (
    "rotation_range",
    "width_shift_range",
    "height_shift_range",
    "shear_range",
    "zoom_range",
    "horizontal_flip",
    "vertical_flip",
    "fill_mode",
    "brightness_range",
    "rescale",
)
"""``ImageDataGenerator`` arguments :func:`from_keras` understands."""


def from_keras(**kwargs: Any) -> Compose:
    """A pipeline from Keras ``ImageDataGenerator`` arguments, with Keras's meanings.

    ``rotation_range`` degrees; ``width/height_shift_range`` a fraction of the size when < 1, else
    pixels; ``shear_range`` degrees; ``zoom_range`` a float z for ``[1 - z, 1 + z]`` or a pair, where
    values > 1 zoom *out* (as Keras), drawn separately for x and y; ``fill_mode`` ``nearest`` (default),
    ``constant``, ``reflect``; ``brightness_range`` a pair of factors; ``rescale`` a factor.

    >>> pipeline = from_keras(rotation_range=20, width_shift_range=0.1, horizontal_flip=True, rescale=1 / 255)
    >>> [type(t).__name__ for t in pipeline.transforms], pipeline.transforms[1].hflip  # the flip is folded in
    (['Rescale', 'RandomAffine'], 0.5)
    """
    unknown = sorted(set(kwargs) - set(KERAS_NAMES))
    if unknown:
        raise ConfigError(
            f"unsupported ImageDataGenerator arguments: {unknown}",
            where="from_keras",
            fix=f"use {', '.join(KERAS_NAMES)}; for featurewise centring use Normalize with the dataset mean/std",
        )
    fill = kwargs.get("fill_mode", "nearest")
    if fill not in _GRID_PADDING:
        raise ConfigError(
            f"fill_mode {fill!r} is not supported", where="fill_mode", fix="use nearest, constant or reflect"
        )
    transforms: list[Transform] = []
    zoom = kwargs.get("zoom_range", 0.0)
    low, high = (1 - zoom, 1 + zoom) if isinstance(zoom, int | float) else zoom
    if low <= 0 or low > high:
        raise ConfigError(f"zoom_range must give 0 < low <= high. Received: zoom_range={zoom}", where="zoom_range")
    shifts = (kwargs.get("width_shift_range", 0.0), kwargs.get("height_shift_range", 0.0))
    if any(kwargs.get(k) for k in ("rotation_range", "width_shift_range", "height_shift_range", "shear_range")) or (
        low,
        high,
    ) != (1, 1):
        transforms.append(
            RandomAffine(
                degrees=kwargs.get("rotation_range", 0.0),
                translate=shifts,
                shear=kwargs.get("shear_range", 0.0),
                # Keras's zoom maps output to input coordinates: z > 1 shows more, so content scales by 1/z.
                zoom=(1 / high, 1 / low),
                keep_aspect=False,
                fill=fill,
                hflip=0.5 if kwargs.get("horizontal_flip") else 0.0,
                vflip=0.5 if kwargs.get("vertical_flip") else 0.0,
            )
        )
    if kwargs.get("brightness_range"):
        transforms.append(ColorJitter(brightness=tuple(kwargs["brightness_range"])))
    has_affine = bool(transforms)
    if kwargs.get("horizontal_flip") and not has_affine:
        transforms.append(HorizontalFlip())
    if kwargs.get("vertical_flip") and not has_affine:
        transforms.append(VerticalFlip())
    if kwargs.get("rescale"):
        # Keras rescales after the random transform; rescaling is linear, so doing it first gives the
        # same numbers (without uint8 rounding in between) and lets every later step stay in float.
        transforms.insert(0, Rescale(kwargs["rescale"]))
    return Compose(transforms)
