"""What a unit has learned, from the model alone: an input image optimised to excite it (activation
maximisation; Erhan et al. 2009, Simonyan et al. 2013 arXiv:1312.6034, with the regularisers of
Yosinski et al. 2015 arXiv:1506.06579 and Olah et al. 2017 "Feature Visualization", distill.pub).

Plain gradient ascent on pixels finds high-frequency noise that excites a unit without looking like anything.
Three things make the images readable, all used here:

- a *Fourier parametrisation*: the image is the inverse FFT of a spectrum whose frequencies are scaled by
  ``1 / f``, so an Adam step changes low frequencies as easily as high ones (natural images have a ``1/f``
  spectrum); colour images also get *decorrelated* colours (the square root of ImageNet's colour covariance,
  Lucid's matrix), and a sigmoid maps the result into [0, 1];
- random *jitter*: each step the image is shifted by a few pixels (it wraps round: the Fourier image is
  periodic), so patterns that work only at one exact offset do not pay;
- an occasional *blur*: every ``blur_every`` steps the spectrum is multiplied by a Gaussian's (a blur of the
  image without leaving the parametrisation), which damps what high frequencies slipped through.

The objective is the unit's mean activation over its map (its ``(B, C, h, w)`` output channel). One batch
optimises all the units asked for; a seeded generator makes the result repeatable.

>>> import torch
>>> from torch import nn
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> net = nn.Sequential(nn.Conv2d(3, 4, 5, padding=2), nn.ReLU())
>>> images = maximise_units(net, "1", [0, 2], (3, 16, 16), steps=20)
>>> images.shape, bool(images.min() >= 0), bool(images.max() <= 1)
(torch.Size([2, 3, 16, 16]), True, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.explain.hooks import HookSet, eval_mode, resolve_layer, tensor_output

# The square root of ImageNet's RGB colour covariance (Lucid, `color_correlation_svd_sqrt`): a step on the
# three decorrelated channels moves pixel colours the way natural images vary.
_COLOUR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOUR = _COLOUR_SQRT / _COLOUR_SQRT.norm(dim=0).max()


def maximise_units(
    model: nn.Module,
    layer: str,
    units: Sequence[int],
    input_size: tuple[int, int, int],
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    steps: int = 128,
    lr: float = 0.2,
    jitter: int | None = None,
    blur_every: int = 8,
    blur_sigma: float = 0.5,
    decay: float = 1.0,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Images ``(len(units), C, H, W)`` in [0, 1] that maximise the mean activation of each unit of ``layer``.

    The model sees ``(image - mean) / std`` (its normalisation; default none) at ``input_size`` ``(C, H, W)``.
    ``steps`` Adam steps of rate ``lr``; ``jitter`` pixels of random shift per step (default ``H // 16``, at
    least 1); a blur of ``blur_sigma`` pixels every ``blur_every`` steps (0: never); ``decay`` is the power of the
    ``1 / f`` spectrum scaling. ``seed`` fixes the start and the jitter. ``progress`` is called after each step.

    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    >>> with torch.no_grad():
    ...     _ = net[0].weight.fill_(1.0).mul_(torch.tensor([1.0, -1.0])[:, None, None, None])  # brightness, darkness
    ...     _ = net[0].bias.zero_()
    >>> light, dark = maximise_units(net, "1", [0, 1], (1, 8, 8), steps=40)
    >>> bool(light.mean() > 0.7), bool(dark.mean() < 0.3)   # from 0.5 (grey): bright for one, dark for the other
    (True, True)
    """
    name, module = resolve_layer(model, layer)
    channels, height, _ = input_size
    if not units:
        raise ConfigError("no units to maximise", where="units", fix="pass at least one channel index")
    if steps < 0:
        raise ConfigError(f"steps must be >= 0. Received: steps={steps}", where="--steps")
    shift = max(1, height // 16) if jitter is None else jitter
    generator = torch.Generator().manual_seed(seed)
    image = _FourierImage(len(units), input_size, decay, generator)
    optimiser = _Adam(image.spectrum, lr)
    mean_ = torch.tensor(mean if mean is not None else [0.0] * channels, dtype=torch.float32).view(1, -1, 1, 1)
    std_ = torch.tensor(std if std is not None else [1.0] * channels, dtype=torch.float32).view(1, -1, 1, 1)
    picked = torch.tensor(list(units))
    scores: list[torch.Tensor] = []

    def score(module: nn.Module, args: Any, output: Any) -> None:
        maps = tensor_output(module, output)  # (U, C, h, w)
        if not bool(((picked >= 0) & (picked < maps.shape[1])).all()):
            raise ConfigError(
                f"layer '{name}' has units 0..{maps.shape[1] - 1}; asked for {list(units)}", where="units"
            )
        # Taken here: a later in-place op (ReLU(inplace=True)) must not change what is maximised.
        scores.append(maps[torch.arange(len(picked)), picked].mean(dim=(1, 2)))  # (U,)

    with HookSet() as hooks, eval_mode(model), torch.enable_grad():
        _redirect_relus(model, hooks)  # first: the score hook must see the redirected output
        hooks.add(module.register_forward_hook(score))
        for step in range(steps):
            dy, dx = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=generator))
            pixels = torch.roll(image(), shifts=(dy, dx), dims=(2, 3))  # (U, C, H, W) in (0, 1)
            scores.clear()
            model((pixels - mean_) / std_)
            if len(scores) != 1:
                raise ConfigError(
                    f"layer '{name}' runs {len(scores)} times in one forward pass",
                    where="layer",
                    fix="choose a layer that runs once (a block, or a conv)",
                )
            # Gradients of the image parameters only: the model's own .grad stay untouched.
            (grad,) = torch.autograd.grad(-scores[0].sum(), image.spectrum)
            optimiser.step(grad)
            if blur_every and (step + 1) % blur_every == 0:
                image.blur(blur_sigma)
            if progress is not None:
                progress(1)
    with torch.no_grad():
        return image().detach()


def unit_activation(
    model: nn.Module,
    layer: str,
    images: torch.Tensor,
    units: Sequence[int],
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> torch.Tensor:
    """The mean activation ``(B,)`` of unit ``units[b]`` of ``layer`` on image ``b`` (``images`` in [0, 1]).

    >>> net = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.fill_(2.0)
    >>> unit_activation(net, "0", torch.full((2, 1, 4, 4), 0.5), [0, 1])
    tensor([1., 1.])
    """
    channels = images.shape[1]
    mean_ = torch.tensor(mean if mean is not None else [0.0] * channels, dtype=torch.float32).view(1, -1, 1, 1)
    std_ = torch.tensor(std if std is not None else [1.0] * channels, dtype=torch.float32).view(1, -1, 1, 1)
    _, module = resolve_layer(model, layer)
    kept: list[torch.Tensor] = []

    def keep(module: nn.Module, args: Any, output: Any) -> None:
        maps = tensor_output(module, output)  # (B, C, h, w)
        kept.append(maps[torch.arange(len(maps)), torch.tensor(list(units))].mean(dim=(1, 2)))

    with HookSet() as hooks, eval_mode(model), torch.no_grad():
        hooks.add(module.register_forward_hook(keep))
        model((images - mean_) / std_)
    return kept[0]


def _redirect_relus(model: nn.Module, hooks: HookSet) -> None:
    """Give every ``nn.ReLU``/``nn.ReLU6`` of ``model`` the redirected gradient of :class:`_RedirectedReLU` while
    ``hooks`` are open. The pre-hook hands the module a copy of its input (an in-place ReLU would otherwise
    overwrite the pre-activations), the forward hook replaces the output with the same values computed by
    :class:`_RedirectedReLU` from the saved pre-activations."""
    for module in model.modules():
        if isinstance(module, nn.ReLU | nn.ReLU6):
            upper = 6.0 if isinstance(module, nn.ReLU6) else math.inf
            saved: list[torch.Tensor] = []

            def before(module: nn.Module, args: tuple[Any, ...], saved: list[torch.Tensor] = saved) -> tuple[Any, ...]:
                saved.append(args[0])
                return (args[0].clone(), *args[1:])

            def after(
                module: nn.Module, args: Any, output: Any, saved: list[torch.Tensor] = saved, upper: float = upper
            ) -> torch.Tensor:
                return _RedirectedReLU.apply(saved.pop(), upper)

            hooks.add(module.register_forward_pre_hook(before))
            hooks.add(module.register_forward_hook(after))


class _RedirectedReLU(torch.autograd.Function):
    """``clamp(x, 0, upper)`` whose gradient does not die with the unit (Lucid's ``redirected_relu_grad``).

    A unit that is off (``x < 0``) for the grey start image passes no gradient through a ReLU, so activation
    maximisation would leave it grey for ever. Where the ordinary gradient of an image is zero everywhere, this
    one passes the components that move ``x`` back into the active range (and only those), so the unit wakes up;
    once any gradient flows, it is the ordinary one.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, upper: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.upper = upper
        return x.clamp(0.0, upper)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        bounded = math.isfinite(ctx.upper)
        active = (x > 0) & (x < ctx.upper) if bounded else x > 0
        ordinary = grad * active
        dead = ~ordinary.flatten(1).any(dim=1)  # (B,): images whose ordinary gradient is zero everywhere
        if not bool(dead.any()):
            return ordinary, None
        # A loss gradient g > 0 moves x down under descent: blocked below 0; g < 0 moves it up: blocked above upper.
        blocked = (x <= 0) & (grad > 0)
        if bounded:
            blocked |= (x >= ctx.upper) & (grad < 0)
        redirected = grad.masked_fill(blocked, 0.0)
        return torch.where(dead.view(-1, *[1] * (x.dim() - 1)), redirected, ordinary), None


class _Adam:
    """Adam (Kingma & Ba 2014, arXiv:1412.6980) for the one image tensor, with torch.optim.Adam's defaults.

    ``torch.optim.Adam`` imports ``torch._dynamo`` on its first step: 2.2-3.1 s measured on this project's CPU
    machine, longer than a whole ``cnnlab explain units`` run on a small net spends optimising.
    """

    def __init__(self, tensor: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.tensor, self.lr, self.betas, self.eps = tensor, lr, betas, eps
        self.first = torch.zeros_like(tensor)
        self.second = torch.zeros_like(tensor)
        self.steps = 0

    def step(self, grad: torch.Tensor) -> None:
        self.steps += 1
        beta1, beta2 = self.betas
        with torch.no_grad():
            self.first.lerp_(grad, 1 - beta1)
            self.second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denominator = (self.second / (1 - beta2**self.steps)).sqrt_().add_(self.eps)
            self.tensor.addcdiv_(self.first, denominator, value=-self.lr / (1 - beta1**self.steps))


class _FourierImage:
    """A batch of images ``(B, C, H, W)`` in (0, 1) made from a ``1/f``-scaled spectrum (Olah et al. 2017)."""

    def __init__(self, count: int, input_size: tuple[int, int, int], decay: float, generator: torch.Generator) -> None:
        channels, height, width = input_size
        self.size = (height, width)
        fy = torch.fft.fftfreq(height)[:, None]  # cycles per pixel
        fx = torch.fft.rfftfreq(width)[None, :]
        self.frequency = (fy**2 + fx**2).sqrt()  # (H, W // 2 + 1)
        # 1 / f, capped at the lowest frequency the image holds; with the sqrt(H W) and the 1/4 in __call__ as in
        # Lucid, so one learning rate suits any image size. Lucid's rate 0.05 is meant for 512+ steps; measured on a
        # random 2-conv net at 3x32x32 (mean over 8 units): 0.054 after 128 steps at 0.05, 0.075 after 512 at 0.05,
        # 0.082 after 128 at 0.2, the default.
        self.scale = self.frequency.clamp_min(1.0 / max(height, width)).pow(-decay) * math.sqrt(height * width)
        shape = (count, channels, height, width // 2 + 1, 2)  # real and imaginary parts
        self.spectrum = (0.01 * torch.randn(shape, generator=generator)).requires_grad_(True)
        self.colour = _COLOUR if channels == 3 else None

    def __call__(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.scale  # (B, C, H, W // 2 + 1)
        linear = torch.fft.irfft2(spectrum, s=self.size) / 4.0  # (B, C, H, W)
        if self.colour is not None:
            linear = torch.einsum("ij,bjhw->bihw", self.colour, linear)
        return torch.sigmoid(linear)

    def blur(self, sigma: float) -> None:
        """Multiply the spectrum by a Gaussian blur's frequency response ``exp(-2 pi^2 sigma^2 f^2)``."""
        with torch.no_grad():
            response = torch.exp(-2.0 * math.pi**2 * sigma**2 * self.frequency**2)  # (H, W // 2 + 1)
            self.spectrum.mul_(response[..., None])
