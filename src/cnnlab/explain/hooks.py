"""Hooks as owned resources, and finding the layer to explain in any ``nn.Module``.

Every hook handle is kept by a :class:`HookSet` and removed in ``close()`` / ``__exit__``, which
never swallows an exception: a failed forward pass leaves no hook behind on the model.

>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3), nn.ReLU())
>>> default_target_layer(net)  # no ``gradcam_layer`` attribute: the last Conv2d
'2'
>>> with record_output(net, "1") as seen:
...     _ = net(torch.zeros(1, 1, 8, 8))
>>> seen[0].shape, len(net[1]._forward_hooks)
(torch.Size([1, 4, 6, 6]), 0)
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from cnnlab.core.errors import ConfigError


class HookSet:
    """Owns hook handles and removes every one of them in :meth:`close` (also on ``with`` exit).

    >>> from torch import nn
    >>> layer = nn.ReLU()
    >>> with HookSet() as hooks:
    ...     _ = hooks.add(layer.register_forward_hook(lambda module, args, out: None))
    ...     len(hooks), len(layer._forward_hooks)
    (1, 1)
    >>> len(layer._forward_hooks)
    0
    """

    def __init__(self) -> None:
        self._handles: list[RemovableHandle] = []

    def add(self, handle: RemovableHandle) -> RemovableHandle:
        """Keep ``handle`` so that :meth:`close` removes it."""
        self._handles.append(handle)
        return handle

    def close(self) -> None:
        """Remove every hook (safe to call twice)."""
        while self._handles:
            self._handles.pop().remove()

    def __len__(self) -> int:
        return len(self._handles)

    def __enter__(self) -> HookSet:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()  # returns None: an exception from the block goes on up


def default_target_layer(model: nn.Module) -> str:
    """The layer Grad-CAM explains by default: ``model.gradcam_layer`` (every zoo classifier has one),
    else the last convolution (``nn.Conv1d``, ``nn.Conv2d`` or ``nn.Conv3d``) in the model.

    >>> from torch import nn
    >>> default_target_layer(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Sequential(nn.Conv2d(8, 8, 3), nn.ReLU())))
    '1.0'
    """
    name = getattr(model, "gradcam_layer", None)
    if isinstance(name, str):
        return name
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d)]
    if not convs:
        raise ConfigError(
            f"{type(model).__name__} has no convolution and no 'gradcam_layer' attribute",
            where="layer=None",
            fix="name the layer to explain, e.g. layer='features.3' (any name from model.named_modules())",
        )
    return convs[-1]


def resolve_layer(model: nn.Module, layer: str | nn.Module | None) -> tuple[str, nn.Module]:
    """``(dotted name, module)`` for a layer given by name, as a module of ``model``, or ``None`` (the default).

    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    >>> resolve_layer(net, net[1])[0], resolve_layer(net, "0")[1]
    ('1', Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1)))
    """
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer:
                return name, module
        raise ConfigError(
            f"the {type(layer).__name__} passed as layer is not part of {type(model).__name__}",
            where="layer",
            fix="pass a submodule of this model, or its dotted name from model.named_modules()",
        )
    name = default_target_layer(model) if layer is None else layer
    try:
        return name, model.get_submodule(name)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(
            f"{type(model).__name__} has no layer '{name}'",
            where="layer",
            fix=f"{hint}use a dotted name from model.named_modules(), e.g. {', '.join(names[-3:])}",
        ) from None


@contextmanager
def record_output(model: nn.Module, layer: str | nn.Module | None) -> Iterator[list[torch.Tensor]]:
    """Within the block, every output of ``layer`` is appended (detached) to the list it yields."""
    _, module = resolve_layer(model, layer)
    outputs: list[torch.Tensor] = []
    with HookSet() as hooks:
        hooks.add(module.register_forward_hook(_appender(outputs)))
        yield outputs


def _appender(outputs: list[torch.Tensor]) -> Callable[[nn.Module, Any, Any], None]:
    def hook(module: nn.Module, args: Any, output: Any) -> None:
        outputs.append(tensor_output(module, output).detach())

    return hook


def tensor_output(module: nn.Module, output: Any) -> torch.Tensor:
    """The output of a hooked layer, which must be one tensor of feature maps ``(B, C, h, w)`` (``(B, C, t)`` or
    ``(B, C, d, h, w)`` in Conv1D and Conv3D nets)."""
    if not isinstance(output, torch.Tensor) or output.dim() not in (3, 4, 5):
        kind = f"a tensor of shape {tuple(output.shape)}" if isinstance(output, torch.Tensor) else type(output).__name__
        raise ConfigError(
            f"layer {type(module).__name__} returns {kind}, not feature maps (B, C, h, w)",
            where="layer",
            fix="choose a convolutional layer or block (one whose output has channels and positions)",
        )
    return output


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block, then give every submodule back its own ``training`` flag.

    >>> from torch import nn
    >>> net = nn.Sequential(nn.Dropout(), nn.BatchNorm2d(2)).train()
    >>> _ = net[1].eval()
    >>> with eval_mode(net):
    ...     net[0].training
    False
    >>> net.training, net[0].training, net[1].training
    (True, True, False)
    """
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in flags:
            module.training = training
