"""Training an ensemble held in one model: a loss per member, so the members learn independently.

A model with ``member_logits(x) -> (B, members, classes)`` (e.g. :mod:`cnnlab.models.sequence.fcn_ensemble`)
returns the ensemble's log-probabilities from ``forward``; a cross-entropy of those would train the members as
one mixture, which couples them and loses the ensemble's benefit (Webb et al. 2020, "To Ensemble or Not
Ensemble"). :class:`EnsembleTrainer` puts the cross-entropy on each member's own logits instead, as a deep
ensemble of separately trained nets (Lakshminarayanan et al. 2017), in one pass. Evaluation is the Trainer's:
the model's ``forward``, so the loss and accuracy it reports are the ensemble's.

>>> import torch
>>> from cnnlab.data.loader import TensorLoader
>>> from cnnlab.models import create_model
>>> from cnnlab.train.config import TrainConfig
>>> model = create_model("fcn_ensemble", num_classes=2, members=2, width=0.1)
>>> trainer = EnsembleTrainer(model, TrainConfig(epochs=1, batch_size=4))
>>> history = trainer.fit(TensorLoader(torch.randn(8, 1, 16), torch.tensor([0, 1] * 4), batch_size=4))
>>> sorted(history[0])
['acc', 'epoch', 'loss', 'lr', 'time_s']
"""

from __future__ import annotations

from typing import Any, Protocol, cast, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.train.metrics import accuracy, hard_labels
from cnnlab.train.trainer import Batch, Logs, Trainer


@runtime_checkable
class MemberEnsemble(Protocol):
    """A model holding several classifiers whose logits it can return side by side."""

    members: int

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, members, classes)`` logits for a batch ``x``."""
        ...


def member_cross_entropy(
    member_logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """The mean over members of each member's cross-entropy: ``(B, members, classes)`` logits against class
    indices ``(B,)`` or class probabilities ``(B, classes)`` (MixUp's).

    >>> logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0]]])
    >>> one = [F.cross_entropy(logits[:, k], torch.tensor([0])) for k in range(2)]
    >>> round(member_cross_entropy(logits, torch.tensor([0])).item(), 6) == round(sum(one).item() / 2, 6)
    True
    """
    batch, members, classes = member_logits.shape
    per_member = targets.repeat_interleave(members, dim=0)  # sample i's target for each of its member rows
    flat = member_logits.reshape(batch * members, classes)
    return F.cross_entropy(flat, per_member, label_smoothing=label_smoothing)


class EnsembleTrainer(Trainer):
    """The :class:`~cnnlab.train.trainer.Trainer` for a :class:`MemberEnsemble`: each training step's loss is
    :func:`member_cross_entropy`; the progress bar's ``acc`` is the members' mean accuracy on the batch."""

    def __init__(self, model: nn.Module, *args: Any, **kwargs: Any) -> None:
        if not isinstance(model, MemberEnsemble):
            raise TypeError(f"EnsembleTrainer trains models with member_logits(); {type(model).__name__} has none")
        super().__init__(model, *args, **kwargs)

    def train_step(self, batch: Batch) -> Logs:
        x, y = self.prepare(batch)
        with self.autocast():
            logits = cast(MemberEnsemble, self.model).member_logits(x)  # checked in __init__
        loss = member_cross_entropy(logits.float(), y, self.config.label_smoothing)
        self.optimise(loss)
        flat = logits.detach().flatten(0, 1)
        return {"loss": loss.detach(), "acc": accuracy(flat, hard_labels(y).repeat_interleave(logits.shape[1]))}
