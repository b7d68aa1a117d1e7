"""Grad-CAM, Grad-CAM++ and input-gradient saliency for any classifier ``nn.Module``.

Grad-CAM (Selvaraju et al. 2017, arXiv:1610.02391) weights the feature maps ``A_k`` of one layer by
the spatial mean of the class score's gradient, ``w_k = mean_ij dS/dA_kij``, and keeps
``ReLU(sum_k w_k A_k)``. Grad-CAM++ (Chattopadhay et al. 2018, arXiv:1710.11063) weights each
position by ``alpha = g^2 / (2 g^2 + sum_ij A * g^3)`` (``g = dS/dA``; the closed form for an
exponential score) and sums ``alpha * ReLU(g)``. Saliency (Simonyan et al. 2013, arXiv:1312.6034)
is ``max_c |dS/dx|`` over the input's channels.

Maps are upsampled (bilinear) to the input size and scaled to [0, 1] per image. The model runs in
eval mode and gets its own ``training`` flags back; its parameters' ``.grad`` are never touched.

>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
>>> net.append(nn.Linear(4, 2))  # doctest: +ELLIPSIS
Sequential(...)
>>> with GradCAM(net) as cam:  # explains the last Conv2d ('0') by default
...     maps = cam(torch.randn(2, 3, 8, 8), target=1)
>>> maps.shape, bool(maps.min() >= 0), bool(maps.max() <= 1), len(net[0]._forward_hooks)
(torch.Size([2, 8, 8]), True, True, 0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.core.errors import ConfigError, ShapeError
from cnnlab.explain.hooks import HookSet, eval_mode, record_output, resolve_layer, tensor_output

METHODS = ("gradcam", "gradcam++", "saliency")
"""Names accepted by :func:`explain` (and ``cnnlab explain --method``)."""

ScoreFn = Callable[[Any], torch.Tensor]
"""A callable target: the model's raw output (logits, boxes, embeddings, ...) -> one score per image ``(B,)``.
Explaining a detected box, or the similarity of a face embedding to another, is one of these."""

Target = int | Sequence[int] | torch.Tensor | ScoreFn | None


@dataclass(frozen=True)
class Explanation:
    """Heatmaps and what they explain: ``maps (B, H, W)`` in [0, 1], ``logits (B, K)``, ``targets (B,)``."""

    maps: torch.Tensor
    logits: torch.Tensor
    targets: torch.Tensor


class GradCAM:
    """Grad-CAM (or Grad-CAM++ with ``plus_plus=True``) on one layer of ``model``.

    ``layer`` is a dotted name (``"layer4"``, ``"features.18"``), a submodule, or ``None`` for
    ``model.gradcam_layer`` / the last ``Conv2d``. The forward hook it needs is registered here
    and removed by :meth:`close` or on leaving a ``with`` block.

    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))
    >>> cam = GradCAM(net, layer="1")
    >>> cam(torch.rand(1, 1, 6, 6)).shape
    torch.Size([1, 6, 6])
    >>> cam.close(); len(net[1]._forward_hooks)
    0
    """

    def __init__(self, model: nn.Module, layer: str | nn.Module | None = None, plus_plus: bool = False) -> None:
        self.model = model
        self.layer_name, self.layer = resolve_layer(model, layer)
        self.plus_plus = plus_plus
        self._kept: list[torch.Tensor] = []
        self._recording = False
        self._hooks = HookSet()
        self._hooks.add(self.layer.register_forward_hook(self._keep))

    def _keep(self, module: nn.Module, args: Any, output: Any) -> torch.Tensor | None:
        if not self._recording:  # the model used elsewhere while this object is open
            return None
        # A fresh leaf: its gradient is all we need (frozen weights or an input without grad are fine).
        kept = tensor_output(module, output).detach().requires_grad_(True)  # (B, C, h, w)
        self._kept.append(kept)
        return kept.clone()  # later in-place ops (ReLU(inplace=True), +=) change the copy, not the kept maps

    def __call__(self, x: torch.Tensor, target: Target = None) -> torch.Tensor:
        """Heatmaps ``(B, H, W)`` in [0, 1] for ``target`` (a class index, one per image, or ``None``: predicted);
        ``(B, T)`` for signals ``(B, C, T)`` and ``(B, D, H, W)`` for volumes ``(B, C, D, H, W)``."""
        return self.explain(x, target).maps

    def explain(self, x: torch.Tensor, target: Target = None) -> Explanation:
        """Like calling the object, but also returns the logits and the explained classes."""
        if not len(self._hooks):
            raise ConfigError(
                "this GradCAM is closed", where=f"layer '{self.layer_name}'", fix="create a new GradCAM(model)"
            )
        _check_images(x, self.model)
        self._kept.clear()
        self._recording = True
        try:
            with eval_mode(self.model), torch.enable_grad():
                score, logits, targets = _score(target, self.model(x))
                kept = _single(self._kept, self.layer_name)
                (grads,) = torch.autograd.grad(score, kept, allow_unused=True)
        finally:
            self._recording = False
            self._kept.clear()
        if grads is None:
            raise ConfigError(
                f"the class score does not depend on layer '{self.layer_name}'",
                where="layer",
                fix="choose a layer on the path from the input to the logits",
            )
        weighted = _cam(kept.detach(), grads, self.plus_plus)  # (B, h, w)
        return Explanation(_to_input_size(weighted, x), logits.detach(), targets)

    def close(self) -> None:
        """Remove the hook from the model (safe to call twice)."""
        self._hooks.close()

    def __enter__(self) -> GradCAM:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()  # returns None: an exception from the block goes on up

    def __repr__(self) -> str:
        state = "open" if len(self._hooks) else "closed"
        return f"{type(self).__name__}(layer='{self.layer_name}', plus_plus={self.plus_plus}, {state})"


class GradCAMPlusPlus(GradCAM):
    """Grad-CAM++: :class:`GradCAM` with ``plus_plus=True``.

    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))
    >>> with GradCAMPlusPlus(net) as cam:
    ...     cam(torch.rand(1, 1, 5, 5), target=0).shape
    torch.Size([1, 5, 5])
    """

    def __init__(self, model: nn.Module, layer: str | nn.Module | None = None) -> None:
        super().__init__(model, layer, plus_plus=True)


def saliency(model: nn.Module, x: torch.Tensor, target: Target = None) -> torch.Tensor:
    """Input-gradient saliency ``max_c |dS/dx|`` ``(B, H, W)``, scaled to [0, 1] per image.

    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    >>> with torch.no_grad():
    ...     _ = net[1].weight.copy_(torch.tensor([[1.0, -2.0, 0.0, 4.0], [0.0, 0.0, 0.0, 0.0]]))
    >>> saliency(net, torch.zeros(1, 1, 2, 2), target=0)  # |w| / max |w|
    tensor([[[0.2500, 0.5000],
             [0.0000, 1.0000]]])
    """
    return _saliency(model, x, target).maps


def explain(
    model: nn.Module,
    x: torch.Tensor,
    method: str = "gradcam",
    layer: str | nn.Module | None = None,
    target: Target = None,
) -> Explanation:
    """One call for any method in :data:`METHODS` (``layer`` is for the CAM methods only).

    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))
    >>> result = explain(net, torch.rand(2, 1, 5, 5), "gradcam++", target=[0, 2])
    >>> result.maps.shape, result.targets.tolist()
    (torch.Size([2, 5, 5]), [0, 2])
    """
    if method not in METHODS:
        raise ConfigError(f"unknown explanation method '{method}'", where="method", fix=f"use one of {METHODS}")
    if method == "saliency":
        if layer is not None:
            raise ConfigError(
                "saliency explains the input, so it takes no layer", where="layer", fix="drop the layer, or use gradcam"
            )
        return _saliency(model, x, target)
    with GradCAM(model, layer, plus_plus=method == "gradcam++") as cam:
        return cam.explain(x, target)


def feature_maps(model: nn.Module, x: torch.Tensor, layer: str | nn.Module | None = None) -> torch.Tensor:
    """The output ``(C, h, w)`` of ``layer`` (default as for Grad-CAM) for one image ``(C, H, W)`` or ``(1, C, H, W)``.

    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Conv2d(3, 5, 3))
    >>> feature_maps(net, torch.zeros(1, 10, 10), "1").shape
    torch.Size([3, 8, 8])
    """
    batch = x[None] if x.dim() == 3 else x
    _check_images(batch, model)
    if batch.shape[0] != 1:
        raise ShapeError(
            f"feature_maps takes one image, got a batch of {batch.shape[0]}", where="x", fix="pass x[i:i + 1]"
        )
    name = resolve_layer(model, layer)[0]
    with record_output(model, name) as outputs, eval_mode(model), torch.no_grad():
        model(batch)
    return _single(outputs, name)[0]


def first_layer_filters(model: nn.Module) -> torch.Tensor:
    """A copy of the first convolution's weights ``(out, in, kh, kw)`` (``model.first_conv``, else the first Conv2d).

    >>> from torch import nn
    >>> first_layer_filters(nn.Sequential(nn.ReLU(), nn.Conv2d(3, 8, 5), nn.Conv2d(8, 8, 3))).shape
    torch.Size([8, 3, 5, 5])
    """
    name = getattr(model, "first_conv", None)
    if isinstance(name, str):
        module = resolve_layer(model, name)[1]
    else:
        module = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if not isinstance(module, nn.Conv2d):
        raise ConfigError(
            f"{type(model).__name__} has no Conv2d layer to show filters of",
            where="first_layer_filters",
            fix="pass a convolutional network",
        )
    return module.weight.detach().cpu().clone()


def _saliency(model: nn.Module, x: torch.Tensor, target: Target) -> Explanation:
    _check_images(x, model)
    with eval_mode(model), torch.enable_grad():
        leaf = x.detach().clone().requires_grad_(True)  # (B, C, H, W)
        score, logits, targets = _score(target, model(leaf))
        (grads,) = torch.autograd.grad(score, leaf)
    maps = grads.abs().amax(dim=1)  # (B, H, W), (B, T) or (B, D, H, W)
    peak = maps.flatten(1).amax(dim=1).clamp_min(torch.finfo(maps.dtype).tiny)
    return Explanation(maps / peak.view((-1,) + (1,) * (maps.dim() - 1)), logits.detach(), targets)


def similarity_to(reference: torch.Tensor) -> ScoreFn:
    """A target for embedding models: each image's cosine similarity to ``reference`` ``(D,)`` (what a face
    verifier thresholds), so the map shows which pixels made two faces look alike.

    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    >>> with GradCAM(net) as cam:
    ...     maps = cam(torch.rand(2, 1, 6, 6), target=similarity_to(torch.ones(4)))
    >>> maps.shape
    torch.Size([2, 6, 6])
    """

    def score(output: torch.Tensor) -> torch.Tensor:
        return F.cosine_similarity(output.flatten(1), reference.flatten()[None].to(output.dtype), dim=1)

    return score


def _score(target: Target, output: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The scalar to differentiate, the logits reported, and the explained classes (``-1``: a callable target)."""
    if callable(target):
        scores = target(output)
        if not isinstance(scores, torch.Tensor) or scores.dim() != 1:
            raise ConfigError(
                "a callable target must return one score per image (B,)", where="target", fix="return scores.sum(...)"
            )
        logits = output if isinstance(output, torch.Tensor) and output.dim() == 2 else scores[:, None]
        return scores.sum(), logits.detach(), torch.full_like(scores, -1, dtype=torch.long)
    logits = _logits(output)
    targets = _targets(target, logits)
    return logits.gather(1, targets[:, None]).sum(), logits, targets  # images are independent in eval mode


def _cam(activations: torch.Tensor, grads: torch.Tensor, plus_plus: bool) -> torch.Tensor:
    """Channel weights from the gradients, then ``ReLU(sum_k w_k A_k)``: ``(B, h, w)``, or ``(B, t)`` and
    ``(B, d, h, w)`` for the feature maps of Conv1D and Conv3D nets."""
    positions = tuple(range(2, activations.dim()))
    if plus_plus:
        g2 = grads.pow(2)
        denominator = 2 * g2 + activations.sum(dim=positions, keepdim=True) * grads.pow(3)
        alpha = torch.where(denominator != 0, g2 / torch.where(denominator != 0, denominator, 1.0), 0.0)
        weights = (alpha * grads.relu()).sum(dim=positions, keepdim=True)  # (B, C, 1, ...)
    else:
        weights = grads.mean(dim=positions, keepdim=True)  # (B, C, 1, ...)
    return (weights * activations).sum(dim=1).relu()


_UPSAMPLING = {1: "linear", 2: "bilinear", 3: "trilinear"}


def _to_input_size(maps: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(Bi/tri)linear upsampling to the input's positions (T, (H, W) or (D, H, W)), then min-max scaling to
    [0, 1] per sample (flat maps: 0)."""
    rank = x.dim() - 2
    maps = F.interpolate(maps[:, None].float(), size=x.shape[2:], mode=_UPSAMPLING[rank], align_corners=False)[:, 0]
    flat = maps.flatten(1)
    low, span = flat.amin(dim=1), flat.amax(dim=1) - flat.amin(dim=1)
    view = (-1,) + (1,) * rank
    scaled = (maps - low.view(view)) / span.clamp_min(torch.finfo(maps.dtype).tiny).view(view)
    return torch.where(span.view(view) > 0, scaled, torch.zeros_like(maps))


_INPUTS = {3: "signals (B, C, T)", 4: "images (B, C, H, W)", 5: "volumes (B, C, D, H, W)"}


def _check_images(x: torch.Tensor, model: nn.Module | None = None) -> None:
    """``x`` must be a batch of what ``model``'s convolutions take: images for Conv2d nets, signals for
    Conv1d nets, volumes for Conv3d nets (any of the three when the model has no convolution)."""
    first = (
        next((m for m in model.modules() if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d)), None) if model else None
    )
    wanted = [len(first.kernel_size) + 2] if first is not None else list(_INPUTS)
    if not isinstance(x, torch.Tensor) or x.dim() not in wanted:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        expected = " or ".join(_INPUTS[n] for n in wanted)
        raise ShapeError(f"expected a batch of {expected}, got {shape}", where="x", fix="add a batch axis: x[None]")


def _logits(output: Any) -> torch.Tensor:
    if not isinstance(output, torch.Tensor) or output.dim() != 2:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ConfigError(
            f"the model returned {shape}, not class scores (B, num_classes)",
            where="model",
            fix="explain a classifier (for a segmentation net, wrap it to return one score per class)",
        )
    return output


def _single(outputs: list[torch.Tensor], name: str) -> torch.Tensor:
    if len(outputs) != 1:
        raise ConfigError(
            f"layer '{name}' ran {len(outputs)} times in one forward pass; one run is needed",
            where="layer",
            fix="choose a layer the model calls exactly once (not a shared or unused module)",
        )
    return outputs[0]


def _targets(target: Target, logits: torch.Tensor) -> torch.Tensor:
    """Class indices ``(B,)``: the predicted ones for ``None``, one int for all, or one per image."""
    batch, classes = logits.shape
    if target is None:
        return logits.detach().argmax(dim=1)
    if isinstance(target, int):
        targets = torch.full((batch,), target, dtype=torch.long, device=logits.device)
    else:
        targets = torch.as_tensor(target, dtype=torch.long, device=logits.device).flatten()
        if targets.numel() != batch:
            raise ConfigError(
                f"got {targets.numel()} targets for {batch} images", where="target", fix="one class index per image"
            )
    bad = targets[(targets < 0) | (targets >= classes)]
    if bad.numel():
        raise ConfigError(
            f"class index {int(bad[0])} is out of range for {classes} classes",
            where="target",
            fix=f"use 0..{classes - 1}",
        )
    return targets
