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
>>> input_options("resnet18", (3, 32, 32)), input_options("resnet18", (3, 224, 224))
({'small_input': True}, {})
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.core.registry import Registry
from cnnlab.models.weights import WeightSpec, load_weights, resolve_weights

Task = str
"""The task a model's head serves (``classify``, ``segment``, ...): a name in :data:`cnnlab.tasks.TASKS`;
``models/<task>/`` files register theirs with ``task="<task>"``."""


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one architecture.

    ``min_size``: the shortest image side the net takes (with the layout :func:`input_options` picks);
    below it the strides and pools leave no pixel. ``small_input_max``: the builder has a
    ``small_input`` layout, used for images whose shorter side is at most this (``None``: no such option).
    """

    name: str
    builder: Callable[..., nn.Module]
    paper: str
    default_input: tuple[int, ...]  # the paper's input without the batch axis: (C, T), (C, H, W) or (C, D, H, W)
    task: Task = "classify"
    min_size: int = 1
    small_input_max: int | None = None


MODELS: Registry[ModelEntry] = Registry("model")

# Images whose shorter side is at most this get an ImageNet net's ``small_input`` layout: its stride-1
# stem keeps 28x28 to 64x64 images (MNIST, CIFAR, Tiny ImageNet) from shrinking to 1x1-2x2 maps.
SMALL_INPUT_MAX = 64


def register_model(
    name: str,
    *,
    paper: str,
    default_input: tuple[int, ...] = (3, 224, 224),
    task: Task = "classify",
    min_size: int = 1,
    small_input_max: int | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a builder ``fn(num_classes=..., in_chans=..., **kw) -> nn.Module``.

    ``min_size`` and ``small_input_max`` are the input-size rules of :class:`ModelEntry`
    (``tests/models/test_input_sizes.py`` checks them against real forward passes).
    """

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        MODELS.add(name, ModelEntry(name, builder, paper, default_input, task, min_size, small_input_max))
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
    if num_classes is None and spec is not None and spec.num_classes:  # 0: a headless file, the builder's head
        num_classes = spec.num_classes
    for option, value, meaning in (
        ("num_classes", num_classes, "the number of classes"),
        ("in_chans", in_chans, "the image channels: 1 grey, 3 RGB"),
    ):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(
                f"{option} must be a whole number >= 1. Received: {option}={value!r}",
                where=f"create_model({name!r})",
                fix=f"pass {meaning}",
            )
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if in_chans is not None:
        kwargs["in_chans"] = in_chans
    model = entry.builder(**kwargs)
    if weights is not None:
        load_weights(model, weights, model_name=name)
    return model


def input_options(name: str, input_size: tuple[int, ...]) -> dict[str, object]:
    """The builder options right for ``(C, H, W)`` images (``(C, T)`` signals and ``(C, D, H, W)`` volumes for
    Conv1D and Conv3D nets), or a :class:`ConfigError` if the net cannot take them.

    The one place that knows which input sizes each model takes: nets with a ``small_input`` layout
    (the ImageNet nets' stride-1 stems, LeNet-5's 2-pixel padding) get ``{"small_input": True}``
    when the image's shorter side is at most their ``small_input_max`` (the shorter side decides: it
    is the one the strides use up first), and images with a side under the model's ``min_size``
    are refused here, before anything is built, naming the smallest size that works. Segmentation
    nets declare no size rules here and get ``{}``.

    >>> import torch
    >>> input_options("lenet5", (1, 28, 28)), input_options("lenet5", (3, 32, 32))
    ({'small_input': True}, {})
    >>> model = create_model("lenet5", num_classes=3, in_chans=3, **input_options("lenet5", (3, 40, 56)))
    >>> model(torch.zeros(2, 3, 40, 56)).shape
    torch.Size([2, 3])
    >>> input_options("resnet9", (1, 6, 6))
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.ConfigError: resnet9 needs images of at least 8x8 pixels; these are 6x6 [resnet9]...
    """
    entry = model_entry(name)
    rank = len(entry.default_input) - 1
    if len(input_size) != rank + 1 or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in input_size):
        raise ConfigError(
            f"input_size must be {_INPUT_LAYOUT[rank]}, {rank + 1} whole numbers >= 1. Received: {input_size!r}",
            where=name,
            fix=f"pass the shape of one sample, channels first, e.g. {_INPUT_EXAMPLE[rank]}"
            + ("" if len(input_size) == rank + 1 else f"; {name} is {_INPUT_KIND[rank]}: cnnlab models lists others"),
        )
    sides = input_size[1:]
    if min(sides) < entry.min_size:
        size = entry.min_size
        if rank == 2:
            height, width = sides
            raise ConfigError(
                f"{name} needs images of at least {size}x{size} pixels; these are {height}x{width}",
                where=name,
                fix=f"resize them larger (cnnlab train --img-size {size} or more), "
                "or pick a net for tiny images (resnet20 takes any size)",
            )
        shown = "x".join(str(n) for n in sides)
        raise ConfigError(
            f"{name} needs at least {size} {'time steps' if rank == 1 else 'voxels per side'}; these are {shown}",
            where=name,
            fix="pad the inputs longer, or pick a net with less downsampling (fcn takes any length)",
        )
    small = entry.small_input_max is not None and min(sides[-2:]) <= entry.small_input_max  # strides are spatial
    return {"small_input": True} if small else {}


_INPUT_LAYOUT = {1: "(channels, steps)", 2: "(channels, height, width)", 3: "(channels, depth, height, width)"}
_INPUT_EXAMPLE = {1: "(1, 128)", 2: "(3, 32, 32)", 3: "(1, 16, 64, 64)"}
_INPUT_KIND = {1: "a Conv1D net for signals", 2: "a 2-D net for images", 3: "a Conv3D net for clips and volumes"}


def _import_families() -> None:
    # Importing the package registers every family (each file registers its builders).
    import cnnlab.models  # noqa: F401
