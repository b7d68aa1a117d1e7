"""Pretrained backbones with new heads, and the two-phase ``fine_tune`` schedule.

``fine_tune(frozen_epochs, unfrozen_epochs)``: first the head alone on cached backbone features
(the backbone frozen, so it runs once, see :mod:`cnnlab.transfer.features`); then the last
``unfreeze`` layer groups and the head together on augmented images, with discriminative learning
rates (each group further from the head at ``decay`` times the rate) and frozen BatchNorm layers kept
in eval mode. Both phases write into one history, numbered on from the first.

>>> from cnnlab.models import create_model
>>> from cnnlab.train.config import TrainConfig
>>> model = create_model("resnet20", num_classes=2)
>>> x, y = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8), torch.randint(0, 2, (16,))
>>> trainer = fine_tune(model, (x, y), (x, y), frozen_epochs=1, unfrozen_epochs=1, unfreeze=1,
...                     config=TrainConfig(batch_size=8, precision="fp32"))
>>> [h["epoch"] for h in trainer.history], [g["name"] for g in trainer.optimizer.param_groups]
([1, 2], ['layer3', 'head'])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from cnnlab.core.errors import ConfigError, WeightsError
from cnnlab.data.augment import Compose, Rescale
from cnnlab.data.images import Fit
from cnnlab.data.loader import TensorLoader
from cnnlab.models import create_model
from cnnlab.models.weights import WeightSpec, resolve_weights
from cnnlab.train.config import TrainConfig
from cnnlab.train.trainer import Callback, Trainer
from cnnlab.transfer.features import (
    FeatureTrainer,
    TailTrainer,
    backbone_tail,
    default_cache_dir,
    extract_features,
    train_head,
)
from cnnlab.transfer.groups import FrozenBatchNormEval, freeze, layer_groups, param_groups

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
Data = tuple[torch.Tensor, torch.Tensor]  # uint8 images (N, C, H, W), int64 targets (N,)


@dataclass(frozen=True)
class TransferConfig:
    """How a pretrained model is reused (the ``transfer`` section of a run config)."""

    mode: Literal["none", "features", "finetune"] = "none"
    unfreeze: int = 2  # finetune: backbone layer groups trained after the frozen phase
    frozen_epochs: int = 3  # finetune: head-only epochs on cached features before unfreezing
    decay: float = 0.3  # discriminative LRs: each group further from the head trains at decay x the rate
    unfrozen_lr: float = 1e-3  # finetune: the head's peak LR once the backbone groups train too
    flip: bool = True  # finetune without augmentation: also train on the mirrored images (cached)
    fit: Fit = "pad"  # how images of another shape reach the weights' input size: pad, stretch or crop
    num_classes: int | None = None  # classes of the new head; default and only allowed value: the data's
    cache_dir: str | None = None  # feature cache (default $CNNLAB_FEATURE_CACHE or ~/.cache/cnnlab/features)

    def __post_init__(self) -> None:
        if self.unfreeze < 0 or self.frozen_epochs < 0:
            raise ConfigError(
                f"unfreeze and frozen_epochs must be >= 0. Received: {self.unfreeze}, {self.frozen_epochs}",
                where="transfer",
            )


def head_classes(requested: int | None, classes: Sequence[str]) -> int:
    """The new head's class count: the data's; ``requested`` (``--num-classes``) must agree with it.

    >>> head_classes(None, ["ants", "bees"])
    2
    >>> head_classes(3, ["ants", "bees"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.ConfigError: --num-classes 3 but the data has 2 classes (ants, bees) [transfer.num_classes]...
    """
    if len(classes) < 2:
        raise ConfigError(
            f"a classifier needs at least 2 classes; the data has {len(classes)} ({', '.join(classes)})",
            where="transfer",
            fix="add a folder per class",
        )
    if requested is not None and requested != len(classes):
        raise ConfigError(
            f"--num-classes {requested} but the data has {len(classes)} classes ({', '.join(classes)})",
            where="transfer.num_classes",
            fix=f"drop --num-classes or pass --num-classes {len(classes)} (the classes come from the data's folders)",
        )
    return len(classes)


def pretrained_spec(weights: str | Path | WeightSpec | None) -> WeightSpec | None:
    """The spec of the weights a transfer run starts from (``None`` for a file no spec knows).

    >>> pretrained_spec(None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.ConfigError: transfer learning needs pretrained weights [--weights]. Fix: pass --weights...
    """
    if weights is None:
        raise ConfigError(
            "transfer learning needs pretrained weights",
            where="--weights",
            fix="pass --weights FILE (a weights file) or a spec name such as efficientnet_lite0.imagenet",
        )
    return resolve_weights(weights)[1]


def load_pretrained(
    name: str, weights: str | Path | WeightSpec, num_classes: int, in_chans: int | None = None
) -> tuple[nn.Module, WeightSpec | None]:
    """Model ``name`` with ``weights`` loaded and a fresh head for ``num_classes``; also the file's spec.

    A file for another architecture raises :class:`WeightsError` listing the mismatched keys and
    shapes and what to pass instead.
    """
    try:
        _, spec = resolve_weights(weights)
        model = create_model(name, weights=weights, num_classes=num_classes, in_chans=in_chans)
    except WeightsError as err:
        raise WeightsError(
            err.what,
            where=err.where,
            fix=f"pass --weights with a file saved from '{name}' (or --model with the file's architecture); "
            f"the new head gets {num_classes} classes from the data, so the file's class count does not matter "
            "(--num-classes only states it)",
        ) from None
    model.reset_classifier(num_classes)  # a fresh head even when the class count equals the file's
    return model, spec


def fine_tune(
    model: nn.Module,
    train: Data,
    val: Data | None,
    frozen_epochs: int,
    unfrozen_epochs: int,
    unfreeze: int = 2,
    config: TrainConfig | None = None,
    unfrozen_lr: float | None = None,
    decay: float = 0.3,
    train_transform: Transform | None = None,
    eval_transform: Transform | None = None,
    cache_dir: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    flip: bool = False,
) -> Trainer:
    """Head alone for ``frozen_epochs`` (on cached features), then ``unfreeze`` groups for ``unfrozen_epochs``.

    ``config.lr`` is the head's rate in the frozen phase, ``unfrozen_lr`` (default ``config.lr / 10``)
    its peak rate in the unfrozen phase. ``eval_transform`` (default: scale to [0, 1]) feeds the
    feature cache and validation, ``train_transform`` (augmentation) the unfrozen phase. Without
    ``train_transform`` the frozen groups' output is cached too (:class:`TailTrainer`): each epoch
    runs only the unfrozen groups and the head; ``flip=True`` then adds the mirrored training images
    (cached as well), the usual horizontal-flip augmentation. Returns the trainer of the last phase that ran.
    """
    config = config or TrainConfig()
    eval_transform = eval_transform or Compose([Rescale()])
    trainer: Trainer | None = None
    if frozen_epochs:
        maps = extract_features(model, train[0], eval_transform, cache_dir, config.eval_batch_size, config.precision)
        val_maps = (
            extract_features(model, val[0], eval_transform, cache_dir, config.eval_batch_size, config.precision)
            if val is not None
            else None
        )
        trainer = train_head(
            model,
            (maps.maps, train[1]),
            (val_maps.maps, val[1]) if val_maps is not None else None,
            replace(config, epochs=frozen_epochs),
            callbacks,
        )
    if not unfrozen_epochs:
        if trainer is None:
            raise ConfigError("nothing to train: frozen_epochs and unfrozen_epochs are both 0", where="fine_tune")
        return trainer
    freeze(model, trainable=unfreeze)
    lr = unfrozen_lr if unfrozen_lr is not None else config.lr / 10
    phase = replace(config, lr=lr, epochs=frozen_epochs + unfrozen_epochs)
    options: dict[str, Any] = {
        "callbacks": [FrozenBatchNormEval(), *callbacks],
        "param_groups": param_groups(model, lr, decay),
    }
    groups = layer_groups(model)
    start = next(g for g in groups if g.trainable(model)).modules[0]
    tail = None
    if train_transform is None and start != groups[-1].modules[0]:
        # No augmentation: the frozen groups compute the same every epoch, so run them once (cached).
        tail = backbone_tail(model, start, eval_transform(train[0][:2], torch.Generator()))
    second: Trainer
    if tail is not None:
        second = TailTrainer(model, replace(phase, channels_last=False), tail=tail, layer=start, **options)

        def inputs(images: torch.Tensor) -> torch.Tensor:
            batch, precision = config.eval_batch_size, config.precision
            return extract_features(model, images, eval_transform, cache_dir, batch, precision, layer=start).maps

        x, y = inputs(train[0]), train[1]
        if flip:
            x, y = torch.cat([x, inputs(train[0].flip(-1))]), torch.cat([y, y])
        loader = TensorLoader(x, y, config.batch_size, shuffle=True, seed=config.seed)
        val_loader = TensorLoader(inputs(val[0]), val[1], config.eval_batch_size) if val is not None else None
    else:
        second = Trainer(model, phase, **options)
        augment = train_transform or eval_transform
        loader = TensorLoader(*train, config.batch_size, shuffle=True, seed=config.seed, transform=augment)
        val_loader = TensorLoader(*val, config.eval_batch_size, transform=eval_transform) if val is not None else None
    if trainer is not None:  # number the epochs on, and keep the best score for the checkpointer
        second.epoch, second.history, second.best_score = trainer.epoch, list(trainer.history), trainer.best_score
        second.global_step = trainer.epoch * len(loader)
    second.fit(loader, val_loader)
    return second


def fit_transfer(
    model: nn.Module,
    config: TransferConfig,
    train_config: TrainConfig,
    train: Data,
    val: Data | None,
    train_transform: Transform,
    eval_transform: Transform,
    callbacks: Sequence[Callback] = (),
) -> tuple[Trainer, Callable[[torch.Tensor], torch.Tensor]]:
    """Train as ``config.mode`` says; returns the trainer and ``predict(uint8 images) -> logits``.

    ``features``: the head for ``train_config.epochs`` epochs on cached features (prediction reads
    the cache too). ``finetune``: :func:`fine_tune` with ``config.frozen_epochs`` frozen epochs, then
    ``train_config.epochs`` epochs with ``config.unfreeze`` groups unfrozen.
    """
    if config.mode not in ("features", "finetune"):
        raise ConfigError(f"transfer mode must be features or finetune. Received: {config.mode!r}", where="transfer")
    cache = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
    features = config.mode == "features"
    trainer = fine_tune(
        model,
        train,
        val,
        frozen_epochs=train_config.epochs if features else config.frozen_epochs,
        unfrozen_epochs=0 if features else train_config.epochs,
        unfreeze=config.unfreeze,
        config=train_config,
        unfrozen_lr=config.unfrozen_lr,
        decay=config.decay,
        train_transform=None if repr(train_transform) == repr(eval_transform) else train_transform,
        eval_transform=eval_transform,
        cache_dir=cache,
        callbacks=callbacks,
        flip=config.flip,
    )
    batch = train_config.eval_batch_size

    def predict(images: torch.Tensor) -> torch.Tensor:
        no_targets = torch.zeros(len(images), dtype=torch.long)
        if isinstance(trainer, FeatureTrainer):  # cached inputs: the backbone's output, or the frozen groups'
            layer = trainer.layer if isinstance(trainer, TailTrainer) else None
            found = extract_features(model, images, eval_transform, cache, batch, train_config.precision, layer)
            return trainer.predict(TensorLoader(found.maps, no_targets, batch))
        return trainer.predict(TensorLoader(images, no_targets, batch, transform=eval_transform))

    return trainer, predict
