"""Layer groups of a zoo model: freeze / unfreeze them, keep frozen BatchNorm in eval mode, and give
each group its own learning rate.

A model's groups come from its own structure, input to output: every top-level child with
parameters is a unit (a ``ModuleList`` of blocks counts block by block, and a backbone that is one
``Sequential``, as in VGG or MobileNet, is split into its layers); a normalisation layer joins the
unit before it (a conv and its BatchNorm freeze together); the children holding
``model.classifier_layers`` form the last group, ``head``.

Frozen BatchNorm: a BatchNorm whose parameters are all frozen is put into eval mode, so its running
statistics are used and never updated. ``nn.Module.train()`` would switch it back (the Trainer calls it
every epoch), so :class:`FrozenBatchNormEval` re-applies it at the start of every epoch; outside the
Trainer call :func:`frozen_bn_eval` after ``model.train()``.

>>> from cnnlab.models import create_model
>>> model = create_model("resnet20", num_classes=2)
>>> [g.name for g in layer_groups(model)]
['conv1', 'layer1', 'layer2', 'layer3', 'head']
>>> freeze(model, trainable=1)  # layer3 and the head train
>>> [g.name for g in layer_groups(model) if g.trainable(model)]
['layer3', 'head']
>>> _ = model.train()  # what the Trainer does every epoch: every BatchNorm back in training mode
>>> frozen_bn_eval(model)
>>> model.bn1.training, model.layer3[0].bn1.training
(False, True)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.train.trainer import Callback, Logs, Trainer

_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


@dataclass(frozen=True)
class LayerGroup:
    """One unit that is frozen or trained as a whole: a name and the dotted names of its modules."""

    name: str
    modules: tuple[str, ...]

    def parameters(self, model: nn.Module) -> Iterator[nn.Parameter]:
        """The group's parameters in ``model``."""
        for name in self.modules:
            yield from model.get_submodule(name).parameters()

    def trainable(self, model: nn.Module) -> bool:
        """Whether any of its parameters is trained."""
        return any(p.requires_grad for p in self.parameters(model))


def layer_groups(model: nn.Module) -> list[LayerGroup]:
    """The model's groups, input to output; the last one is ``head`` (see the module docstring)."""
    classifier = tuple(getattr(model, "classifier_layers", ()))
    head = [name for name, _ in model.named_children() if any(_inside(c, name) for c in classifier)]
    if not head:
        raise ConfigError(
            f"{type(model).__name__} names no classifier layers, so its head is unknown",
            where="layer_groups",
            fix="use a zoo model (cnnlab models lists them) or set model.classifier_layers",
        )
    units = [(n, m) for n, m in model.named_children() if n not in head and _has_params(m)]
    if len(units) == 1 and isinstance(units[0][1], nn.Sequential | nn.ModuleList):
        units = _expand(*units[0])  # the whole backbone is one container: its layers are the units
    else:
        units = [u for name, module in units for u in (_expand(name, module) if _is_list(module) else [(name, module)])]
    groups: list[list[str]] = []
    for name, module in units:
        if groups and isinstance(module, _NORMS):
            groups[-1].append(name)  # a norm layer freezes with the conv it normalises
        else:
            groups.append([name])
    return [LayerGroup(g[0], tuple(g)) for g in groups] + [LayerGroup("head", tuple(head))]


def freeze(model: nn.Module, trainable: int = 0) -> None:
    """Freeze the backbone except its last ``trainable`` groups; the head always trains.

    ``trainable=0`` freezes the whole backbone (feature extraction); a number at least the number
    of backbone groups unfreezes everything. Frozen BatchNorm layers go to eval mode.
    """
    if trainable < 0:
        raise ConfigError(f"trainable must be >= 0. Received: {trainable}", where="freeze", fix="pass 0 or more")
    groups = layer_groups(model)
    backbone = groups[:-1]
    cut = max(len(backbone) - trainable, 0)
    for index, group in enumerate(groups):
        for p in group.parameters(model):
            p.requires_grad_(index >= cut)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train(model.training)  # unfrozen ones follow the model again
    frozen_bn_eval(model)


def frozen_bn_eval(model: nn.Module) -> None:
    """Put every BatchNorm whose parameters are all frozen into eval mode (running statistics fixed).

    A BatchNorm without affine parameters follows the parameters of the group it belongs to
    only through :func:`freeze`; here it counts as frozen when it has no trainable parameters.
    """
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.eval()


class FrozenBatchNormEval(Callback):
    """Trainer callback: frozen BatchNorm layers back to eval mode after the Trainer's ``model.train()``."""

    def on_epoch_start(self, trainer: Trainer, logs: Logs) -> None:
        frozen_bn_eval(trainer.model)


def param_groups(model: nn.Module, lr: float, decay: float = 0.3) -> list[dict[str, Any]]:
    """Optimiser parameter groups with discriminative learning rates for the trainable groups.

    The head gets ``lr``; each trainable backbone group one step further from the head gets
    ``decay`` times the rate of the next one (layer-wise decay, as in ULMFiT's discriminative
    fine-tuning). Frozen groups are left out.

    >>> from cnnlab.models import create_model
    >>> model = create_model("resnet20", num_classes=2)
    >>> freeze(model, trainable=2)
    >>> [round(g["lr"], 6) for g in param_groups(model, lr=1e-2, decay=0.1)]
    [0.0001, 0.001, 0.01]
    """
    if not 0 < decay <= 1:
        raise ConfigError(f"decay must be in (0, 1]. Received: {decay}", where="param_groups", fix="try 0.3")
    trainable = [g for g in layer_groups(model) if g.trainable(model)]
    out = []
    for depth, group in enumerate(reversed(trainable)):
        params = [p for p in group.parameters(model) if p.requires_grad]
        out.append({"params": params, "lr": lr * decay**depth, "name": group.name})
    return out[::-1]


def _inside(dotted: str, child: str) -> bool:
    return dotted == child or dotted.startswith(child + ".")


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def _is_list(module: nn.Module) -> bool:
    return isinstance(module, nn.ModuleList)


def _expand(name: str, module: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(f"{name}.{n}", m) for n, m in module.named_children() if _has_params(m)]
