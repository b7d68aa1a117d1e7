"""What every task's run config shares: the data and model sections, reading a run config from YAML with
command-line overrides, and the per-channel normalisation of uint8 images.

>>> from dataclasses import dataclass, field
>>> @dataclass(frozen=True)
... class Toy:
...     task: str = "toy"
...     data: DataConfig = field(default_factory=DataConfig)
>>> load_run_config(Toy, None, {"data": {"source": "digits", "img_size": None}}).data.source
'digits'
>>> load_run_config(Toy, None, {"segment": {"masks": "m/"}})
Traceback (most recent call last):
...
cnnlab.core.errors.ConfigError: masks does not apply to task 'toy' [options]. Fix: drop it, or pick its task with --task
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

from cnnlab.core.config import load_yaml, replace
from cnnlab.core.errors import ConfigError
from cnnlab.data.augment import Compose, Normalize, Rescale
from cnnlab.data.images import Fit, check_image_size
from cnnlab.data.presets import PRESETS
from cnnlab.models import model_entry

RunConfigT = TypeVar("RunConfigT")


@dataclass(frozen=True)
class DataConfig:
    """Where the inputs come from and how they are fed."""

    source: str = "fashion-mnist"  # a folder, .npz, .csv, or a named dataset (fashion-mnist, mnist)
    data_dir: str | None = None  # where named datasets live (default $CNNLAB_DATA or ~/.cnnlab/data)
    img_size: int | None = None  # resize images to img_size x img_size when decoding (None: keep)
    fit: Fit = "stretch"  # how other aspect ratios reach img_size: stretch | crop (centre) | pad (black borders)
    val_fraction: float = 0.1  # held out of the training split when the source has no validation split
    aug: str = "auto"  # augmentation preset (cnnlab augment --help lists them); auto: chosen by the task from the data
    strict: bool = False  # fail on the first unreadable file instead of skipping it

    def __post_init__(self) -> None:
        check_image_size(self.img_size, where="--img-size")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(
                f"val_fraction must be in [0, 1). Received: {self.val_fraction}", where="--val-fraction", fix="try 0.1"
            )


@dataclass(frozen=True)
class ModelConfig:
    """Which network, and optional pretrained weights."""

    name: str = "cnn_small"
    weights: str | None = None


def load_run_config(
    config_type: type[RunConfigT],
    path: Path | None,
    overrides: dict[str, dict[str, Any]],
    base: RunConfigT | None = None,
) -> RunConfigT:
    """A run config from YAML (else ``base``, else the type's defaults) with per-section overrides.

    ``overrides`` maps a section (``"run"`` for the top level) to field values; ``None`` values are
    ignored. A value for a section this task's config does not have is a :class:`ConfigError`, so an
    option of another task is never dropped silently.
    """
    config: Any = load_yaml(config_type, path) if path is not None else (base or config_type())
    sections = {f.name for f in dataclasses.fields(config)}
    for section, values in overrides.items():
        given = {k: v for k, v in values.items() if v is not None}
        if section == "run":
            config = replace(config, **given)
        elif section in sections:
            config = replace(config, **{section: replace(getattr(config, section), **given)})
        elif given:
            raise ConfigError(
                f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply to task '{config.task}'",
                where="options",
                fix="drop it, or pick its task with --task",
            )
    _check_names(config)
    return config


def _check_names(config: Any) -> None:
    """Unknown model or augmentation names fail here, with "did you mean", before any data is read."""
    if hasattr(config, "model") and config.model.name != "auto":  # auto: the task picks a model from the data
        model_entry(config.model.name)
    if hasattr(config, "data") and config.data.aug != "auto":
        getattr(type(config), "check_augmentation", PRESETS.get)(config.data.aug)  # a task's own names, else images'


FIXED_ON_RESUME = {
    "model": None,
    "data": ("source", "img_size", "fit"),
    "segment": ("num_classes", "depth", "base_width"),
}
"""What a resumed run may not change: the network and the data it was trained on (``None``: the whole section)."""


def check_resume(saved: Any, config: Any) -> None:
    """A clear error when ``config`` (the resumed run's with the new options) changes what the run's checkpoint
    was trained with; epochs, learning rate, precision and the like may change.

    >>> check_resume(ModelConfig("cnn_small"), ModelConfig("cnn_small"))
    """
    changed = []
    for section, names in FIXED_ON_RESUME.items():
        before, after = getattr(saved, section, None), getattr(config, section, None)
        if before is None or after is None:
            continue
        fields = names or [f.name for f in dataclasses.fields(before)]
        changed += [f"{section}.{n}" for n in fields if getattr(before, n) != getattr(after, n)]
    if changed:
        was = ", ".join(f"{c}={_get(saved, c)!r}" for c in changed)
        raise ConfigError(
            f"a resumed run cannot change {', '.join(changed)} (the run was trained with {was})",
            where="--resume",
            fix="drop those options to resume, or start a new run with them",
        )


def _get(config: Any, dotted: str) -> Any:
    section, name = dotted.split(".")
    return getattr(getattr(config, section), name)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (floored at 1e-3) of uint8 images ``(N, C, H, W)``, on the 0..1 scale.

    >>> channel_stats(torch.tensor([[[[0, 255]]]], dtype=torch.uint8))
    ((0.5,), (0.7071067690849304,))
    """
    pixels = images.float() / 255.0  # (N, C, H, W)
    mean = tuple(pixels.mean(dim=(0, 2, 3)).tolist())
    std = tuple(max(s, 1e-3) for s in pixels.std(dim=(0, 2, 3)).tolist())
    return mean, std


def eval_transform(mean: tuple[float, ...], std: tuple[float, ...]) -> Compose:
    """uint8 batch -> normalised float batch, nothing random (what evaluation and prediction feed a model).

    >>> eval_transform((0.5,), (0.5,))(torch.full((1, 1, 1, 1), 255, dtype=torch.uint8)).item()
    1.0
    """
    return Compose([Rescale(), Normalize(mean, std)])
