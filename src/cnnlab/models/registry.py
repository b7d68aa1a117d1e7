"""The model registry: every architecture is registered here, and CLI, docs and tests read it.

>>> "cnn_small" in list_models()
True
>>> model = create_model("cnn_small", num_classes=10, in_chans=1)
>>> model.num_features
64
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from torch import nn

from cnnlab.core.registry import Registry

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


def create_model(name: str, **kwargs: object) -> nn.Module:
    """Build a registered model by name; keyword arguments go to its builder."""
    return model_entry(name).builder(**kwargs)


def _import_families() -> None:
    # Importing the package registers every family (each file registers its builders).
    import cnnlab.models  # noqa: F401
