"""The Trainer with per-pixel steps: logits maps, targets cropped to fit, IoU/Dice from a confusion metric."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.tasks.segment.losses import LossFn, cross_entropy
from cnnlab.tasks.segment.metrics import ConfusionMetric, confusion, fit_target
from cnnlab.tasks.segment.tiling import predict_padded, predict_tiled
from cnnlab.train.config import TrainConfig
from cnnlab.train.trainer import Batch, Callback, Logs, Trainer


class SegmentationTrainer(Trainer):
    """The :class:`~cnnlab.train.trainer.Trainer` with per-pixel steps.

    Logs ``loss``, ``acc`` (pixel accuracy, so the progress bar shows it) and ``dice`` (mean over
    classes) per training batch. Evaluation is the Trainer's own loop (the eval model: the EMA copy
    when weight EMA is on, in eval mode) with a :class:`~cnnlab.tasks.segment.metrics.ConfusionMetric`:
    exact pixel accuracy, IoU and Dice per class and their means over the whole set. ``tile``
    switches validation and prediction to :func:`predict_tiled` (needed for unpadded nets); without
    it whole images go through in one pass, mirrored up to the model's ``size_multiple`` when it has one.

    >>> from cnnlab.data.loader import TensorLoader
    >>> from cnnlab.models import create_model
    >>> net = create_model("unet", num_classes=2, in_chans=1, depth=1, base_width=4, padding="same")
    >>> x, y = torch.rand(4, 1, 8, 8), (torch.rand(4, 8, 8) > 0.5).long()
    >>> trainer = SegmentationTrainer(net, TrainConfig(epochs=1, batch_size=2), class_names=["bg", "fg"])
    >>> sorted(trainer.fit(TensorLoader(x, y, batch_size=2, target_kind="mask"))[0])
    ['acc', 'dice', 'epoch', 'loss', 'lr', 'time_s']
    >>> sorted(trainer.evaluate(TensorLoader(x, y, batch_size=2, target_kind="mask")))
    ['acc', 'dice', 'dice_bg', 'dice_fg', 'iou', 'iou_bg', 'iou_fg', 'loss']
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig | None = None,
        *,
        loss_fn: LossFn | None = None,
        callbacks: Sequence[Callback] = (),
        class_names: Sequence[str] = ("background", "foreground"),
        tile: int | None = None,
        margin: int = 32,
    ) -> None:
        self.class_names = list(class_names)
        metric = ConfusionMetric(self.class_names)
        super().__init__(model, config, loss_fn=loss_fn or cross_entropy, callbacks=callbacks, metrics=[metric])
        self.tile, self.margin = tile, margin

    def segment(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Float32 logits of ``model`` for a normalised image batch: one pass, or overlap-tiles when ``tile`` is set."""

        def forward(window: torch.Tensor) -> torch.Tensor:
            window, _ = self.prepare((window, window))
            return self.logits(model, window).float()

        if self.tile is None:
            return predict_padded(forward, x, getattr(self.model, "size_multiple", 1))
        return predict_tiled(forward, x, self.tile, self.margin)

    def train_step(self, batch: Batch) -> Logs:
        x, _ = self.prepare(batch)
        logits = self.logits(self.model, x).float()  # (B, K, H', W')
        y = fit_target(batch[1].to(logits.device), logits)
        loss = self.loss_fn(logits, y)
        self.optimise(loss)
        counts = confusion(logits.detach().argmax(1), y, logits.shape[1])
        hit, true, pred = counts.diagonal(), counts.sum(1), counts.sum(0)
        present = (true + pred) > 0
        dice = (2 * hit[present] / (true + pred)[present]).mean()
        return {"loss": loss.detach(), "acc": hit.sum() / counts.sum(), "dice": dice}

    def eval_step(self, batch: Batch) -> Logs:
        """The batch's loss; its confusion matrix goes to the metric."""
        logits = self.segment(self.eval_model, batch[0])
        y = fit_target(batch[1].to(logits.device), logits)
        self.update_metrics(logits, y)
        return {"loss": self.loss_fn(logits, y)}

    def predict_step(self, batch: Batch) -> torch.Tensor:
        return self.segment(self.eval_model, batch[0])
