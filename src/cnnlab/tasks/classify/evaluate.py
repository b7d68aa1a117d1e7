"""Evaluate classifiers on a labelled set: test-time augmentation, ensembles, metrics, Grad-CAM of the worst mistakes.

A *member* is anything with ``model`` (an ``nn.Module``), ``mean`` and ``std`` (the normalisation
it was trained with), such as :class:`cnnlab.inference.Classifier`. :func:`evaluate` runs every
member on the images, plain and with test-time augmentation (TTA), averages the class
probabilities over views and over members, and times each variant, so the gain of TTA and of the
ensemble is measured on the same images. The full variant (every member, every view) is the
one whose confusion matrix, per-class scores and calibration are reported.

Inference runs on this CPU's fast path (:func:`cnnlab.runtime.inference.fast_inference`: bf16 autocast
and channels_last where the CPU has native bf16, compiled when the job pays the compile back);
``precision="fp32"`` gives the model's exact fp32 outputs.

TTA views are made from the normalised input, the plain view first: ``flip`` adds the mirror
image; ``five_crop`` pads the image by about 7% of its side (edge pixels repeated: the margin of
ImageNet's 256 -> 224 crops) and takes the centre and four corner crops at the original size,
so the centre crop is the plain image; ``ten_crop`` adds their mirrors.

>>> import torch
>>> from torch import nn
>>> from types import SimpleNamespace
>>> net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
>>> member = SimpleNamespace(model=net, mean=(0.5,), std=(0.25,))
>>> images = torch.randint(0, 256, (6, 1, 4, 4), dtype=torch.uint8)
>>> result = evaluate([member], images, torch.tensor([0, 1, 2, 0, 1, 2]), ["a", "b", "c"], tta="flip")
>>> [v["name"] for v in result.variants], result.probs.shape, result.inference["compiled"]
(['single model', 'single model + flip'], torch.Size([6, 3]), False)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.data.augment import Normalize
from cnnlab.data.testtime import FiveCrop, TenCrop
from cnnlab.explain import GradCAM
from cnnlab.report.artefacts import write_evaluation
from cnnlab.runtime.inference import InferenceRunner, check_inference_options, fast_inference
from cnnlab.train.metrics import classification_summary, expected_calibration_error, top_k_accuracy

TTA_MODES = ("none", "flip", "five_crop", "ten_crop")
"""Test-time augmentation choices (``--tta``)."""

_CROP_ORDER = {"five_crop": [4, 0, 1, 2, 3], "ten_crop": [4, 0, 1, 2, 3, 9, 5, 6, 7, 8]}  # centre (plain) view first
_VIEWS = {"none": 1, "flip": 2, **{mode: len(order) for mode, order in _CROP_ORDER.items()}}  # views per image


class Member(Protocol):
    """One classifier of an evaluation: a model and the normalisation of its inputs."""

    model: nn.Module
    mean: Sequence[float]
    std: Sequence[float]


def check_tta(mode: str) -> None:
    """A clear error for a test-time augmentation mode that is not one of :data:`TTA_MODES`."""
    if mode not in TTA_MODES:
        raise ConfigError(f"unknown test-time augmentation '{mode}'", where="--tta", fix=f"use one of {TTA_MODES}")


def tta_views(x: torch.Tensor, mode: str) -> torch.Tensor:
    """The test-time views of a normalised batch ``(B, C, H, W)`` as ``(B, V, C, H, W)``, the plain view first.

    >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> [tta_views(x, mode).shape[1] for mode in TTA_MODES]
    [1, 2, 5, 10]
    >>> torch.equal(tta_views(x, "ten_crop")[:, 0], x), torch.equal(tta_views(x, "flip")[0, 1], x[0].flip(-1))
    (True, True)
    """
    check_tta(mode)
    if mode == "none":
        return x[:, None]
    if mode == "flip":
        return torch.stack([x, x.flip(-1)], dim=1)
    height, width = x.shape[-2:]
    pad = max(1, round(min(height, width) * 16 / 224))
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")  # (B, C, H + 2p, W + 2p)
    crops = (FiveCrop if mode == "five_crop" else TenCrop)((height, width))(padded)  # (B, V, C, H, W)
    return crops[:, _CROP_ORDER[mode]]


def predict_views(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tta: str = "none") -> torch.Tensor:
    """Class probabilities ``(B, K)`` of a normalised batch, averaged over the ``tta`` views. ``model`` is an
    eval-mode ``nn.Module`` (run as it is) or the runner of :func:`~cnnlab.runtime.inference.fast_inference`.

    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    >>> probs = predict_views(net, torch.rand(3, 1, 2, 2), "flip")
    >>> probs.shape, torch.allclose(probs.sum(dim=1), torch.ones(3))
    (torch.Size([3, 2]), True)
    """
    views = tta_views(x, tta)  # (B, V, C, H, W)
    batch, count = views.shape[:2]
    with torch.inference_mode():
        probs = model(views.flatten(0, 1)).float().softmax(dim=1)  # (B * V, K)
    return probs.view(batch, count, -1).mean(dim=1)


def member_proba(
    member: Member,
    images: torch.Tensor,
    tta: str = "none",
    batch_size: int = 256,
    precision: str = "auto",
    compile: str = "auto",
) -> torch.Tensor:
    """Probabilities ``(N, K)`` of one member on uint8 images ``(N, C, H, W)`` (normalised here, in batches),
    on the fast path of :func:`~cnnlab.runtime.inference.fast_inference` (``precision``, ``compile``).

    >>> from types import SimpleNamespace
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    >>> member = SimpleNamespace(model=net, mean=(0.5,), std=(0.25,))
    >>> member_proba(member, torch.zeros(5, 1, 2, 2, dtype=torch.uint8), "flip", precision="fp32").shape
    torch.Size([5, 2])
    """
    check_tta(tta)
    views = len(images) * _VIEWS[tta]
    with fast_inference(member.model, precision, compile, batch_size, images=views) as run:
        return _run_proba(run, member, images, tta, batch_size)


def _run_proba(run: InferenceRunner, member: Member, images: torch.Tensor, tta: str, batch_size: int) -> torch.Tensor:
    normalize = Normalize(member.mean, member.std)
    parts = [predict_views(run, normalize(images[i : i + batch_size]), tta) for i in range(0, len(images), batch_size)]
    return torch.cat(parts)


class FileMember(Member, Protocol):
    """A member that reads image files itself (:class:`cnnlab.inference.Classifier`)."""

    def preprocess(self, paths: Sequence[str | Path]) -> torch.Tensor: ...


def predict_files(
    members: Sequence[FileMember],
    paths: Sequence[str | Path],
    tta: str = "none",
    precision: str = "auto",
    compile: str = "auto",
    batch_size: int = 256,
) -> torch.Tensor:
    """Class probabilities ``(N, K)`` of image files, averaged over ``tta`` views and over ``members``
    (each reads the files with its own preprocessing), on the fast path (``precision``, ``compile``)."""
    if not members:
        raise ConfigError("no classifier given", where="predict", fix="pass a run folder or checkpoint")
    check_tta(tta)
    probs = []
    for member in members:
        x = member.preprocess(paths)  # (N, C, H, W)
        with fast_inference(member.model, precision, compile, batch_size, images=len(x) * _VIEWS[tta]) as run:
            probs.append(predict_views(run, x, tta))
    return torch.stack(probs).mean(dim=0)


@dataclass
class Evaluation:
    """What :func:`evaluate` measured: the reported variant's probabilities and summary, and every variant."""

    probs: torch.Tensor  # (N, K): every member and view averaged
    summary: dict[str, Any]  # classification_summary of probs
    variants: list[dict[str, Any]]  # name, accuracy, top_k_accuracy, ece, seconds; the single plain model first
    inference: dict[str, Any] = field(default_factory=dict)  # the first member's path: InferenceRunner.describe()


def evaluate(
    members: Sequence[Member],
    images: torch.Tensor,
    targets: torch.Tensor,
    classes: Sequence[str],
    tta: str = "none",
    batch_size: int = 256,
    top_k: int = 5,
    worst: int = 16,
    precision: str = "auto",
    compile: str = "auto",
) -> Evaluation:
    """Run ``members`` on uint8 ``images (N, C, H, W)``, plain and with ``tta``, on the fast path
    (``precision``, ``compile``: see :func:`~cnnlab.runtime.inference.fast_inference`); summarise the full
    variant with :func:`~cnnlab.train.metrics.classification_summary`. A compile's seconds count in
    the wall time of the first variant."""
    if not members:
        raise ConfigError("nothing to evaluate: no checkpoint given", where="evaluate", fix="pass a run folder or .pt")
    check_tta(tta)
    check_inference_options(precision, compile)
    modes = ["none"] if tta == "none" else ["none", tta]
    probs: dict[str, list[torch.Tensor]] = {mode: [] for mode in modes}
    seconds: dict[str, list[float]] = {mode: [] for mode in modes}
    described: list[dict[str, Any]] = []
    views = len(images) * sum(_VIEWS[mode] for mode in modes)  # one runner (one compile) per member for all modes
    for member in members:
        with fast_inference(member.model, precision, compile, batch_size, images=views) as run:
            for mode in modes:
                started = time.perf_counter()
                probs[mode].append(_run_proba(run, member, images, mode, batch_size))
                seconds[mode].append(time.perf_counter() - started)
        described.append(run.describe())
    suffix = {m: "" if m == "none" else f" + {m.replace('_', '-')}" for m in modes}
    candidates = [(f"single model{suffix[m]}", probs[m][0], seconds[m][0]) for m in modes]
    if len(members) > 1:
        name = f"ensemble of {len(members)}"
        candidates += [(name + suffix[m], torch.stack(probs[m]).mean(0), sum(seconds[m])) for m in modes]
    variants = [
        {
            "name": name,
            "accuracy": float((p.argmax(1) == targets).double().mean()),
            "top_k_accuracy": top_k_accuracy(p, targets, top_k),
            "ece": expected_calibration_error(p, targets),
            "seconds": round(s, 3),
            "images_per_s": round(len(images) / max(s, 1e-9), 1),
        }
        for name, p, s in candidates
    ]
    full = candidates[-1][1]
    summary = classification_summary(full, targets, list(classes), top_k, worst=worst)
    return Evaluation(full, summary, variants, described[0])


def worst_mistake_cams(member: Member, images: torch.Tensor, summary: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images ``(n, H, W, C)`` of ``summary["worst"]`` and the first member's Grad-CAM ``(n, H, W)``
    for the class it was mistaken for."""
    index = torch.tensor([w["index"] for w in summary["worst"]], dtype=torch.long)
    predicted = torch.tensor([summary["classes"].index(w["predicted"]) for w in summary["worst"]], dtype=torch.long)
    x = Normalize(member.mean, member.std)(images[index])  # (n, C, H, W)
    with GradCAM(member.model) as cam:
        maps = cam(x, predicted) if len(index) else torch.zeros(0, *x.shape[-2:])  # (n, H, W)
    return images[index].permute(0, 2, 3, 1).numpy(), maps.numpy()


def write_run_evaluation(
    folder: str | Path,
    members: Sequence[Member],
    images: torch.Tensor,
    result: Evaluation,
    title: str,
    extra: dict[str, Any] | None = None,
) -> Path:
    """``evaluation.json`` and figures (confusion, reliability, worst mistakes with Grad-CAM) into ``folder``."""
    mistakes = worst_mistake_cams(members[0], images, result.summary)
    return write_evaluation(folder, result.summary, title, mistakes, {"variants": result.variants, **(extra or {})})
