"""What a sequence run chooses from its data when the user does not say: the model, epochs, batch size,
normalisation and augmentation (each choice comes back with the sentence the log prints).

The numbers are the measured CPU recipes of ``docs/sequence.md``: four half-width FCNs (Wang et al. 2017) trained
side by side for series at the published batch size ``min(N / 10, 16)`` in float32, a log-mel front-end with the FCN
for audio, a small C3D for clips and volumes; epochs aim at a fixed number of optimiser steps, so small sets get
more passes and large ones fewer.

>>> choose_model("audio", "auto")
('fcn', {}, 'model fcn: the FCN over log-mel frames (mel bands as its input channels) (--model sets it)')
>>> choose_batch_size("series", 50, None)
(5, 'batch 5: min(N/10, 16) as in Fawaz et al. 2019 (--batch-size sets it)')
>>> choose_epochs("series", 50, 5, None)[0]
200
"""

from __future__ import annotations

import math
from typing import Any

import torch

from cnnlab.core.errors import ConfigError
from cnnlab.data.augment import Compose, MixUp
from cnnlab.data.signal_augment import signal_preset
from cnnlab.data.volume_augment import Flip3D, Intensity
from cnnlab.models import model_entry

C3D_CPU = {"width": 16}
"""A C3D a quarter of ``c3d_small``'s cost (16-32-64-64 filters): 3-D convolutions are what a CPU is slowest at."""

MODELS: dict[str, tuple[str, dict[str, Any], str]] = {
    "series": (
        "fcn_ensemble",
        {},
        "four FCNs (Wang et al. 2017, the UCR baseline) at half width trained side by side, their probabilities "
        "averaged: one FCN's cost",
    ),
    "audio": ("fcn", {}, "the FCN over log-mel frames (mel bands as its input channels)"),
    "waveform": ("m5", {}, "M5 on the raw waveform (Dai et al. 2017)"),
    "clip": ("c3d_small", C3D_CPU, "a C3D (3x3x3 convolutions, Tran et al. 2015) with 16-32-64-64 filters for a CPU"),
    "volume": ("c3d_small", C3D_CPU, "a C3D (3x3x3 convolutions, Tran et al. 2015) with 16-32-64-64 filters"),
}
"""The default model per kind of data, its builder options, and why."""

STEPS = {"series": 2000, "audio": 1000, "waveform": 3000, "clip": 600, "volume": 600}
"""Optimiser steps a default run aims at (epochs = steps / batches per epoch, within :data:`EPOCH_RANGE`)."""

EPOCH_RANGE = {"series": (20, 300), "audio": (10, 40), "waveform": (10, 60), "clip": (5, 30), "volume": (5, 30)}

AUGMENTATIONS = ("none", "series", "audio", "clip", "volume")
"""The names ``--aug`` takes for sequence data (``auto``: the one named after the data's kind)."""


def check_augmentation(name: str) -> str:
    """``name`` if it is a sequence augmentation, else a :class:`ConfigError` listing them.

    >>> check_augmentation("cifar")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.ConfigError: unknown augmentation 'cifar' for sequence data [--aug]. Fix: use auto, none, ...
    """
    if name not in ("auto", *AUGMENTATIONS):
        raise ConfigError(
            f"unknown augmentation {name!r} for sequence data",
            where="--aug",
            fix=f"use auto, {', '.join(AUGMENTATIONS)}",
        )
    return name


def data_kind(kind: str, representation: str | None) -> str:
    """The key of the tables above: the data's kind, or ``waveform`` for raw audio."""
    return "waveform" if kind == "audio" and representation == "waveform" else kind


def choose_model(kind: str, given: str) -> tuple[str, dict[str, Any], str]:
    """``(model name, builder options, log line)``; ``given`` (not ``auto``) is kept."""
    if given != "auto":
        return given, {}, f"model {given} (--model)"
    name, options, why = MODELS[kind]
    return name, dict(options), f"model {name}: {why} (--model sets it)"


def check_model(name: str, rank: int) -> None:
    """Refuse a model that does not take data of this rank (a Conv2d net for signals, a Conv1d net for clips)."""
    entry = model_entry(name)
    if len(entry.default_input) - 1 != rank:
        wanted = [n for n, (m, _, _) in MODELS.items() if len(model_entry(m).default_input) - 1 == rank]
        nets = sorted({MODELS[k][0] for k in wanted} | ({"resnet1d", "inception_time"} if rank == 1 else {"r3d_18"}))
        shape = "(C, T) signals" if rank == 1 else "(C, D, H, W) clips or volumes"
        raise ConfigError(
            f"{name} does not take {shape}",
            where="--model",
            fix=f"pick a {'Conv1D' if rank == 1 else 'Conv3D'} net: {', '.join(nets)} (cnnlab models lists all)",
        )


def choose_batch_size(kind: str, n_train: int, given: int | None) -> tuple[int, str]:
    """Series: ``min(N / 10, 16)`` (the published recipe); audio 32; clips and volumes 8."""
    if given:
        return given, f"batch {given} (--batch-size)"
    if kind == "series":
        size = max(1, min(16, n_train // 10))
        return size, f"batch {size}: min(N/10, 16) as in Fawaz et al. 2019 (--batch-size sets it)"
    size = 32 if kind in ("audio", "waveform") else 8
    return size, f"batch {size} (--batch-size sets it)"


def choose_epochs(kind: str, n_train: int, batch_size: int, given: int | None) -> tuple[int, str]:
    """About :data:`STEPS` optimiser steps, within :data:`EPOCH_RANGE`."""
    if given:
        return given, f"{given} epochs (--epochs)"
    steps_per_epoch = math.ceil(n_train / batch_size)
    low, high = EPOCH_RANGE[kind]
    epochs = int(min(high, max(low, round(STEPS[kind] / steps_per_epoch))))
    return epochs, f"{epochs} epochs: about {STEPS[kind]:,} steps of {steps_per_epoch} per epoch (--epochs sets it)"


def choose_precision(kind: str, given: str) -> tuple[str, str]:
    """Series train in float32 under ``auto``: on the three UCR sets (FCN, five seeds each, same machine) bfloat16
    autocast scored at most as well on 14 of 15 paired runs (means 0.04-0.2 points lower) and saved ~20% of a
    half-minute fit. Other kinds keep the device's plan (bfloat16 where the CPU computes it natively).

    >>> choose_precision("series", "auto")[0], choose_precision("audio", "auto")[0], choose_precision("series", "bf16")
    ('fp32', 'auto', ('bf16', 'precision bf16 (--precision)'))
    """
    if given != "auto":
        return given, f"precision {given} (--precision)"
    if kind == "series":
        return "fp32", "precision fp32: bfloat16 is no more accurate on small series sets (--precision sets it)"
    return "auto", "precision auto: the device's plan (--precision sets it)"


def choose_normalise(kind: str, given: str) -> tuple[str, str]:
    """Series: z-score each sample (the UCR convention); everything else: the training set's channel mean/std."""
    if given != "auto":
        return given, f"normalisation: {given} (--config sequence.normalise)"
    if kind == "series":
        return "sample", "normalisation: each series to mean 0, std 1 per channel (the UCR convention)"
    return "dataset", "normalisation: the training set's mean and std per channel"


AUTO_AUGMENTATION = {"series": "none", "audio": "audio", "waveform": "audio", "clip": "clip", "volume": "volume"}
"""``--aug auto`` per kind. Series: none, as in the published UCR baselines; measured on ItalyPowerDemand (FCN,
seed 0): 96.2% without, 95.3% with scale + jitter + shift (``--aug series`` still takes it)."""


def augmentation(kind: str, given: str, mixup: float, num_classes: int) -> tuple[Compose, MixUp | None, str]:
    """The training augmentation for ``kind`` (``given``: ``auto`` or a name of :data:`AUGMENTATIONS`) and MixUp."""
    name = AUTO_AUGMENTATION[kind] if given == "auto" else check_augmentation(given)
    if name == "clip":  # no flips: a mirrored clip of something moving right moves left (the label would lie)
        pipeline = Compose([Intensity()])
        why = "augmentation clip: intensity scale 0.9-1.1 and shift +-0.1 (no flips: they reverse motion)"
    elif name == "volume":
        pipeline = Compose([Flip3D(), Intensity()])
        why = "augmentation volume: flips along every axis, intensity scale 0.9-1.1 and shift +-0.1"
    else:
        pipeline = signal_preset(name)
        steps = ", ".join(type(t).__name__ for t in pipeline.transforms) or "none"
        why = f"augmentation {name}: {steps}"
    mix = MixUp(alpha=mixup, num_classes=num_classes) if mixup > 0 else None
    return (
        pipeline,
        mix,
        why + (f", MixUp alpha {mixup}" if mix else "") + (" (--aug sets it)" if given == "auto" else ""),
    )


def normalise(
    x: torch.Tensor, mode: str, mean: list[float] | None = None, std: list[float] | None = None
) -> torch.Tensor:
    """``x`` (N, C, ...) normalised: ``sample`` z-scores each sample's channels over time (or space),
    ``dataset`` uses the given channel ``mean``/``std``, ``none`` returns it as it is.

    >>> normalise(torch.tensor([[[1.0, 3.0]]]), "sample").tolist()
    [[[-1.0, 1.0]]]
    """
    if mode == "none":
        return x
    positions = tuple(range(2, x.dim()))
    if mode == "sample":
        centred = x - x.mean(dim=positions, keepdim=True)
        return centred / centred.pow(2).mean(dim=positions, keepdim=True).sqrt().clamp_min(1e-8)
    if mean is None or std is None:
        raise ConfigError("dataset normalisation needs the training set's mean and std", where="normalise")
    view = (1, -1) + (1,) * len(positions)
    return (x - torch.tensor(mean).view(view)) / torch.tensor(std).view(view)


def channel_moments(x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (floored at 1e-6) of ``x`` (N, C, ...).

    >>> channel_moments(torch.tensor([[[0.0, 2.0], [1.0, 1.0]]]))  # (N=1, C=2, T=2)
    ([1.0, 1.0], [1.4142135381698608, 9.999999974752427e-07])
    """
    channels = x.transpose(0, 1).reshape(x.shape[1], -1)
    return channels.mean(1).tolist(), channels.std(1).clamp_min(1e-6).tolist()
