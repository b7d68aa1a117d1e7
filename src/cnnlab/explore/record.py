"""One forward pass with every call of every module recorded, in the order the calls start (the order of
``cnnlab.layers.summary()``'s rows), with copies of what each call took and gave.

Copies, because a later in-place op (``ReLU(inplace=True)``) changes a tensor after its layer has run; a module
called twice (a ResNet block's shared ReLU) gives two calls, told apart by ``occurrence``.

>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(inplace=True))
>>> calls = record_calls(net, torch.randn(1, 1, 5, 5))
>>> [(c.name, c.type, tuple(c.output.shape)) for c in calls]
[('', 'Sequential', (1, 2, 3, 3)), ('0', 'Conv2d', (1, 2, 3, 3)), ('1', 'ReLU', (1, 2, 3, 3))]
>>> bool(calls[1].output.min() < 0), bool(calls[2].output.min() >= 0)  # the conv's own output, before the ReLU
(True, True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnlab.explain.hooks import HookSet, eval_mode
from cnnlab.layers.summary import tensors_in


@dataclass(frozen=True)
class Call:
    """One call of one module: ``name`` (dotted, ``''`` for the model), its ``occurrence`` among that module's
    calls, the shape of the first tensor it took, that tensor (``input``, kept for leaf modules only) and its
    ``output`` if that is one tensor (``None`` otherwise)."""

    index: int
    name: str
    module: nn.Module
    occurrence: int
    input_shape: tuple[int, ...] | None
    input: torch.Tensor | None
    output: torch.Tensor | None

    @property
    def type(self) -> str:
        """The module's class name."""
        return type(self.module).__name__

    @property
    def is_leaf(self) -> bool:
        """Whether the module has no children."""
        return next(self.module.children(), None) is None

    @property
    def has_maps(self) -> bool:
        """Whether the output is one batch of image feature maps ``(B, C, h, w)``."""
        return self.output is not None and self.output.dim() == 4


def record_calls(model: nn.Module, x: torch.Tensor) -> list[Call]:
    """Run ``model`` on ``x`` (eval mode, no gradients) and return every module call, outer calls first."""
    names = {id(module): name for name, module in model.named_modules()}
    slots: list[Call | None] = []
    stack: list[tuple[int, torch.Tensor | None, tuple[int, ...] | None]] = []
    counts: dict[str, int] = {}

    def before(module: nn.Module, args: tuple[Any, ...]) -> None:
        leaf = next(module.children(), None) is None
        first = next(tensors_in(args), None)
        taken = first.detach().clone() if leaf and first is not None else None
        stack.append((len(slots), taken, None if first is None else tuple(first.shape)))
        slots.append(None)

    def after(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        slot, taken, shape = stack.pop()
        name = names[id(module)]
        occurrence = counts.get(name, 0)
        counts[name] = occurrence + 1
        made = output.detach().clone() if isinstance(output, torch.Tensor) else None
        slots[slot] = Call(slot, name, module, occurrence, shape, taken, made)

    with HookSet() as hooks, eval_mode(model), torch.no_grad():
        for module in model.modules():
            hooks.add(module.register_forward_pre_hook(before))
            hooks.add(module.register_forward_hook(after))
        model(x)
    return [call for call in slots if call is not None]


def occurrence_hook(occurrence: int, found: Callable[[torch.Tensor], None]) -> Callable[..., None]:
    """A forward hook that calls ``found`` with the output of the module's ``occurrence``-th call (0-based)."""
    seen = [0]

    def hook(module: nn.Module, args: Any, output: Any) -> None:
        if seen[0] == occurrence and isinstance(output, torch.Tensor):
            found(output)
        seen[0] += 1

    return hook
