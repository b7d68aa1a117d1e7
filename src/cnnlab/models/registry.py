"""The model registry: every architecture is registered here, and CLI, docs and tests read it.

>>> "cnn_small" in list_models()
True
>>> model = create_model("cnn_small", num_classes=10, in_chans=1)
>>> model.num_features
64
>>> create_model("resnet_18")
Traceback (most recent call last):
...
cnnlab.core.errors.RegistryError: unknown model 'resnet_18'; did you mean 'resnet18'...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from torch import nn

from cnnlab.core.registry import Registry
from cnnlab.models.weights import WeightSpec, load_weights, resolve_weights

Task = Literal["classify", "segment"]


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one architecture."""

    name: str
    builder: Callable[..., nn.Module]
    paper: str
    default_input: tuple[int, int, int]  # (C, H, W) the paper used
    task: Task = "classify"


MODELS: Registry[ModelEntry] = Registry("model")


def register_model(
    name: str, *, paper: str, default_input: tuple[int, int, int] = (3, 224, 224), task: Task = "classify"
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a builder ``fn(num_classes=..., in_chans=..., **kw) -> nn.Module``."""

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        MODELS.add(name, ModelEntry(name, builder, paper, default_input, task))
        return builder

    return decorator


def list_models(task: Task | None = None) -> list[str]:
    """Names of all registered models, optionally only those of one task."""
    _import_families()
    return [name for name in MODELS.names() if task is None or MODELS.get(name).task == task]


def model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name`` (unknown names answer "did you mean ...")."""
    _import_families()
    return MODELS.get(name)


def create_model(
    name: str,
    *,
    weights: str | Path | WeightSpec | None = None,
    num_classes: int | None = None,
    in_chans: int | None = None,
    **kwargs: object,
) -> nn.Module:
    """Build a registered model by name, optionally with pretrained ``weights``.

    ``weights`` is a local file path, a :class:`~cnnlab.models.weights.WeightSpec` or a spec name
    (``"resnet20.cifar10"``). Known files are checksum-checked; ``num_classes`` defaults to the
    file's class count, and a different ``num_classes`` or ``in_chans`` gets a new head or an
    adapted first conv. Other keyword arguments go to the builder (e.g. ``small_input=True``).
    """
    entry = model_entry(name)
    spec = None
    if weights is not None:
        weights, spec = resolve_weights(weights)
    if num_classes is None and spec is not None:
        num_classes = spec.num_classes
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if in_chans is not None:
        kwargs["in_chans"] = in_chans
    model = entry.builder(**kwargs)
    if weights is not None:
        load_weights(model, weights, model_name=name)
    return model


def _import_families() -> None:
    # Importing the package registers every family (each file registers its builders).
    import cnnlab.models  # noqa: F401
