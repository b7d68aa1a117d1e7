"""The Trainer with metric-learning steps: a triplet (or contrastive) loss mined inside P x K batches, and
verification scores (ROC AUC, EER) over all pairs of the validation images.

>>> from cnnlab.data.loader import TensorLoader
>>> from cnnlab.models import create_model
>>> from cnnlab.models.embed.head import EmbeddingNet
>>> from cnnlab.tasks.embed.sampler import PeopleBatches
>>> net = EmbeddingNet(create_model("lenet5", num_classes=2, in_chans=1), dim=8)
>>> x, y = torch.rand(8, 1, 28, 28), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
>>> trainer = EmbeddingTrainer(net, TrainConfig(epochs=1, monitor="last"))
>>> sorted(trainer.fit(PeopleBatches(x, y, people=2, images=2))[0])
['epoch', 'loss', 'lr', 'negative', 'positive', 'time_s']
>>> sorted(trainer.evaluate(TensorLoader(x, y, batch_size=4)))
['auc', 'eer']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.tasks.embed.losses import (
    batch_contrastive_loss,
    batch_hard_soft_margin_loss,
    batch_hard_triplet_loss,
    batch_hard_triplets,
    pairwise_distances,
    semi_hard_triplet_loss,
)
from cnnlab.tasks.embed.verification import pair_distances, roc
from cnnlab.train.config import TrainConfig
from cnnlab.train.trainer import Batch, Callback, Logs, Trainer

Mining = Literal["batch_hard", "batch_hard_soft", "semi_hard", "contrastive"]
LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]] = {
    "batch_hard": batch_hard_triplet_loss,
    "batch_hard_soft": batch_hard_soft_margin_loss,
    "semi_hard": semi_hard_triplet_loss,
    "contrastive": batch_contrastive_loss,
}
"""The training losses by ``embed.mining`` name."""


class VerificationScores:
    """A Trainer metric: collects every validation embedding, then scores all pairs (``auc``, ``eer``)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.embeddings: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.embeddings.append(outputs.float())
        self.labels.append(targets)

    def result(self) -> dict[str, float]:
        distances, same = pair_distances(torch.cat(self.embeddings), torch.cat(self.labels))
        curve = roc(distances, same)
        return {"auc": curve.auc, "eer": curve.eer}


class EmbeddingTrainer(Trainer):
    """The :class:`~cnnlab.train.trainer.Trainer` for an embedding net fed by
    :class:`~cnnlab.tasks.embed.sampler.PeopleBatches`.

    Logs ``loss`` and, per batch, the mean distance of each anchor to its hardest ``positive`` and to its
    hardest ``negative`` (the two numbers the triplet loss pulls apart); evaluation adds ``auc`` and ``eer``
    over all pairs of the validation set.
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig | None = None,
        *,
        callbacks: Sequence[Callback] = (),
        mining: Mining = "batch_hard",
        margin: float = 0.2,
    ) -> None:
        if mining not in LOSSES:
            raise ConfigError(f"unknown mining {mining!r}", where="--mining", fix="use " + " | ".join(LOSSES))
        super().__init__(model, config, callbacks=callbacks, metrics=[VerificationScores()])
        self.loss, self.margin = LOSSES[mining], margin

    def train_step(self, batch: Batch) -> Logs:
        x, y = self.prepare(batch)
        with self.autocast():
            embeddings = self.model(x)
        embeddings = embeddings.float()
        loss = self.loss(embeddings, y, self.margin)
        self.optimise(loss)
        with torch.no_grad():
            distances = pairwise_distances(embeddings)
            positive, negative = batch_hard_triplets(distances, y)
            rows = torch.arange(len(y))[positive >= 0]
            logs = {
                "positive": distances[rows, positive[rows]].mean(),
                "negative": distances[torch.arange(len(y)), negative].mean(),
            }
        return {"loss": loss.detach(), **logs}

    def eval_step(self, batch: Batch) -> Logs:
        x, y = self.prepare(batch)
        with self.autocast():
            embeddings = self.eval_model(x)
        self.update_metrics(embeddings.float(), y)
        return {}

    def predict_step(self, batch: Batch) -> torch.Tensor:
        """Embeddings (float32) for one batch."""
        x, _ = self.prepare(batch)
        with self.autocast():
            return self.eval_model(x).float()
