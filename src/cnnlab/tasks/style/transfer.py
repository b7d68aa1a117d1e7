"""Gatys-style neural style transfer by pixel optimisation, coarse to fine, on the CPU plan.

The generated image (RGB in ``[0, 1]``) is optimised to lower ``J = alpha J_content + beta J_style +
tv J_tv`` (:mod:`cnnlab.tasks.style.costs`). It starts small (a quarter of the final size) and is
upsampled between levels, so most steps are cheap and the full-size steps only refine: on 2 cores a
512 px step of VGG-19 costs about 16x a 128 px one. The backbone runs in bf16 autocast with
channels_last where the CPU has native bf16 (the trainer's speed plan); Grams and costs stay float32.

>>> import torch
>>> from cnnlab.models import create_model
>>> torch.manual_seed(0) and None
>>> net = StyleFeatures(create_model("vgg11"), ["block1_conv1", "block2_conv1"])
>>> content, stripes = torch.rand(1, 3, 32, 32), torch.zeros(1, 3, 32, 32)
>>> stripes[..., ::4, :] = 1.0
>>> settings = StyleSettings(size=32, steps=(5,), optimizer="adam", precision="fp32")
>>> result = stylise(net, content, [stripes], settings, content_layer="block2_conv1")
>>> result.image.shape, result.history[-1]["total"] < result.history[0]["total"]
(torch.Size([1, 3, 32, 32]), True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from cnnlab.core.errors import ConfigError
from cnnlab.runtime.precision import plan_speed
from cnnlab.tasks.style.costs import COURSE_ALPHA, COURSE_BETA, content_cost, scaled_gram, style_cost, total_variation
from cnnlab.tasks.style.features import StyleFeatures, layer_weights

MIN_LEVEL_SIZE = 64  # below this VGG's fifth block sees 4x4 maps: too little to carry style
OPTIMIZERS = ("auto", "lbfgs", "adam")  # auto: L-BFGS for VGG backbones, Adam for others (docs/style.md)
INITS = ("content", "noise", "mixed")


DEFAULT_SIZE = 512
"""The result's longer side when none is given, unless the content image is smaller (docs/style.md: 512 px in
about two minutes on 2 cores)."""


@dataclass(frozen=True)
class StyleSettings:
    """How to optimise. ``steps`` are per level, coarse to fine (``None``: :func:`default_steps`);
    ``size`` is the longer side of the result; ``style_scale`` the style image's size relative to it."""

    size: int = DEFAULT_SIZE
    steps: tuple[int, ...] | None = None
    optimizer: str = "auto"
    learning_rate: float = 0.02  # Adam, on pixels in [0, 1]
    init: str = "content"
    alpha: float = COURSE_ALPHA
    beta: float = COURSE_BETA
    tv_weight: float = 0.0
    style_blend: tuple[float, ...] | None = None  # one weight per style image (default: equal)
    style_scale: float = 1.0
    style_layer_weights: tuple[float, ...] | None = None
    precision: str = "auto"
    seed: int = 0
    frame_every: int = 10

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}", where="--optimizer", fix=f"one of {OPTIMIZERS}")
        if self.init not in INITS:
            raise ConfigError(f"unknown init {self.init!r}", where="--init", fix=f"one of {INITS}")
        if not 32 <= self.size <= 4096:
            raise ConfigError(
                f"size must be 32..4096 pixels. Received: size={self.size}",
                where="--size",
                fix="512 is the usual size; 256 is 4x faster",
            )
        if self.steps is not None and (not self.steps or any(s < 1 for s in self.steps)):
            raise ConfigError(f"steps must be >= 1. Received: {self.steps}", where="--steps", fix="e.g. --steps 50")
        if not 0.1 <= self.style_scale <= 4:
            raise ConfigError(f"style_scale must be 0.1..4. Received: {self.style_scale}", where="--style-scale")


@dataclass
class StyleResult:
    """The generated image ``(1, 3, H, W)`` in ``[0, 1]``, one history row per optimiser evaluation, and the
    costs of the start image and the result at full size (``before``/``after``: content, style, total)."""

    image: torch.Tensor
    history: list[dict[str, Any]] = field(default_factory=list)
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def result_size(content_size: tuple[int, int]) -> tuple[int, str]:
    """The result's longer side for a content image of ``(width, height)``: its own, at most
    :data:`DEFAULT_SIZE` (a small photo is not blown up) and at least 32; and the sentence that says so.

    >>> result_size((1024, 768))[0], result_size((170, 90))[0], result_size((20, 10))[0]
    (512, 170, 32)
    """
    longer = max(content_size)
    if longer >= DEFAULT_SIZE:
        return DEFAULT_SIZE, f"size {DEFAULT_SIZE} px: the content image scaled to it (--size sets it)"
    size = max(32, longer)
    return size, f"size {size} px: the content image's longer side (--size sets it)"


def level_sizes(size: int, levels: int) -> list[int]:
    """Sizes of the coarse-to-fine levels: halving from ``size``, none below :data:`MIN_LEVEL_SIZE`.

    >>> level_sizes(512, 3), level_sizes(100, 3), level_sizes(48, 3)
    ([128, 256, 512], [100], [48])
    """
    sizes = [size]
    while len(sizes) < levels and sizes[0] // 2 >= MIN_LEVEL_SIZE:
        sizes.insert(0, sizes[0] // 2)
    return sizes


def default_steps(size: int, optimizer: str = "lbfgs") -> tuple[int, ...]:
    """Evaluations per level: many where they are cheap, few at full size: ``100 (128 / side)^1.6``, at most
    100 (a finished 512 px image in about two minutes on 2 cores with VGG-19, docs/style.md). Adam: 3x as many.

    >>> default_steps(512), default_steps(128), default_steps(300, "adam")
    ((100, 33, 11), (100, 100), (300, 234, 78))
    """
    steps = [min(100, round(100 * (128 / side) ** 1.6)) for side in level_sizes(size, 3)]
    return tuple(s * (3 if optimizer == "adam" else 1) for s in steps)


def resize_to(image: torch.Tensor, longer_side: int) -> torch.Tensor:
    """``(1, 3, H, W)`` resized (antialiased bilinear) so its longer side is ``longer_side``, aspect kept.

    >>> resize_to(torch.zeros(1, 3, 100, 50), 64).shape
    torch.Size([1, 3, 64, 32])
    """
    h, w = image.shape[-2:]
    scale = longer_side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    if size == (h, w):
        return image
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


Progress = Callable[[dict[str, Any], torch.Tensor], None]
"""Called after every evaluation with its history row and the current image (for bars and frames)."""


def stylise(
    net: StyleFeatures,
    content: torch.Tensor,
    styles: Sequence[torch.Tensor],
    settings: StyleSettings,
    content_layer: str,
    progress: Progress | None = None,
    style_layers: Sequence[str] | None = None,
) -> StyleResult:
    """Optimise an image with ``content``'s content and the (blended) style of ``styles``, coarse to fine.

    ``content`` and each style are ``(1, 3, H, W)`` in ``[0, 1]`` at any size; ``net`` computes the
    content layer and the style layers (default: all its layers but ``content_layer``). Returns the image
    at ``settings.size`` (longer side).
    """
    missing = [name for name in (content_layer, *(style_layers or ())) if name not in net.layers]
    if missing:
        raise ConfigError(f"layers {missing} are not among the computed layers {net.layers}", where="stylise")
    if style_layers is None:
        style_layers = [name for name in net.layers if name != content_layer] or [content_layer]
    weights = layer_weights(style_layers, settings.style_layer_weights)
    blend = style_blend(settings.style_blend, len(styles))
    plan = plan_speed(settings.precision, channels_last=True)
    net = net.to(memory_format=torch.channels_last) if plan.channels_last else net
    steps = settings.steps or default_steps(settings.size, settings.optimizer)
    sizes = level_sizes(settings.size, len(steps))
    steps = steps[-len(sizes) :]
    generator = torch.Generator().manual_seed(settings.seed)
    result = StyleResult(image=torch.empty(0))
    started = time.perf_counter()
    image: torch.Tensor | None = None

    def features(x: torch.Tensor) -> dict[str, torch.Tensor]:
        if plan.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=plan.bf16):
            return net(x)

    def costs(x: torch.Tensor, targets: _Targets) -> dict[str, torch.Tensor]:
        found = features(x)
        j_content = content_cost(targets.content, found[content_layer])
        j_style = style_cost(targets.grams, found, weights)
        j_tv = total_variation(x)
        total = settings.alpha * j_content + settings.beta * j_style + settings.tv_weight * j_tv
        return {"content": j_content, "style": j_style, "tv": j_tv, "total": total}

    rows = result.history
    for level, (size, level_steps) in enumerate(zip(sizes, steps, strict=True)):
        target = resize_to(content, size)
        with torch.no_grad():
            targets = _targets(features, target, styles, blend, settings.style_scale, content_layer, style_layers)
        image = _start(target, settings.init, generator) if image is None else _upsample(image, target)
        if level == len(sizes) - 1:
            with torch.no_grad():
                result.before = {k: v.item() for k, v in costs(target, targets).items()}

        def evaluate(
            x: torch.Tensor, targets: _Targets = targets, level: int = level, size: int = size
        ) -> torch.Tensor:
            values = costs(x, targets)
            row = {"evaluation": len(rows) + 1, "level": level, "size": size}
            row |= {"seconds": round(time.perf_counter() - started, 3), **{k: v.item() for k, v in values.items()}}
            rows.append(row)
            if progress is not None:
                progress(row, x.detach())
            return values["total"]

        image = _optimise(image, evaluate, settings, level_steps)
    assert image is not None
    with torch.no_grad():
        result.after = {k: v.item() for k, v in costs(image, targets).items()}
    result.image = image.detach()
    result.seconds = round(time.perf_counter() - started, 3)
    return result


@dataclass(frozen=True)
class _Targets:
    content: torch.Tensor
    grams: Mapping[str, torch.Tensor]


def _targets(
    features: Callable[[torch.Tensor], dict[str, torch.Tensor]],
    content: torch.Tensor,
    styles: Sequence[torch.Tensor],
    blend: Sequence[float],
    style_scale: float,
    content_layer: str,
    style_layers: Sequence[str],
) -> _Targets:
    found = features(content)
    positions = {name: found[name].shape[-2] * found[name].shape[-1] for name in style_layers}
    longer = max(content.shape[-2:])
    grams: dict[str, torch.Tensor] = {}
    for style, share in zip(styles, blend, strict=True):
        style_found = features(resize_to(style, max(16, round(longer * style_scale))))
        for name in style_layers:
            gram = share * scaled_gram(style_found[name], positions[name])
            grams[name] = grams[name] + gram if name in grams else gram
    return _Targets(content=found[content_layer].float(), grams=grams)


def style_blend(weights: Sequence[float] | None, count: int) -> list[float]:
    """The share of each style image in the style target: equal unless given (then checked).

    >>> style_blend(None, 2), style_blend([0.7, 0.3], 2)
    ([0.5, 0.5], [0.7, 0.3])
    """
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count or any(w < 0 for w in weights) or not math.isclose(sum(weights), 1.0, abs_tol=1e-3):
        raise ConfigError(
            f"style blend {list(weights)} for {count} style image(s)",
            where="--blend",
            fix="one non-negative weight per style image, summing to 1 (e.g. --blend 0.7,0.3)",
        )
    return list(weights)


def _start(content: torch.Tensor, init: str, generator: torch.Generator) -> torch.Tensor:
    noise = torch.rand(content.shape, generator=generator)
    if init == "content":
        return content.clone()
    if init == "noise":
        return noise
    return (content + (noise - 0.5) * 0.5).clamp(0, 1)  # the course: the content image plus uniform noise


def _upsample(image: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(image.detach(), size=like.shape[-2:], mode="bilinear", align_corners=False).clamp(0, 1)


def _optimise(
    start: torch.Tensor, evaluate: Callable[[torch.Tensor], torch.Tensor], settings: StyleSettings, steps: int
) -> torch.Tensor:
    """``steps`` evaluations of ``evaluate`` (the total cost) and its gradient, pixels kept in ``[0, 1]``."""
    image = start.detach().clone().requires_grad_(True)
    optimizer: torch.optim.Optimizer
    if settings.optimizer != "adam":
        # one step() runs the whole level; max_eval bounds the evaluations (L-BFGS may stop earlier, converged)
        optimizer = torch.optim.LBFGS([image], lr=1.0, max_iter=steps, max_eval=steps, history_size=50)
    else:
        optimizer = torch.optim.Adam([image], lr=settings.learning_rate)

    def closure() -> torch.Tensor:
        with torch.no_grad():
            image.clamp_(0, 1)
        optimizer.zero_grad(set_to_none=True)
        total = evaluate(image)
        total.backward()
        assert image.grad is not None
        image.grad = image.grad.contiguous()  # the backbone runs channels_last; L-BFGS flattens grads with view()
        return total

    if settings.optimizer != "adam":
        optimizer.step(closure)
    else:
        for _ in range(steps):
            optimizer.step(closure)
    return image.detach().clamp_(0, 1)
