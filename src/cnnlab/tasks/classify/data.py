"""Classification data: the source opened and split into train / validation / test, and the transforms
that turn its uint8 batches into what the model sees (augmentation preset, then normalisation)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cnnlab.core.errors import DataError
from cnnlab.data.augment import Compose, Normalize
from cnnlab.data.datasets import Dataset, open_source
from cnnlab.data.loader import TensorLoader
from cnnlab.data.named import resolve_source
from cnnlab.data.presets import PRESETS
from cnnlab.tasks.config import DataConfig, channel_stats
from cnnlab.transfer import (
    adapt_dataset,
    with_normalisation,
)


@dataclass
class Splits:
    """Decoded train / validation / test sets and what is known about them."""

    train: Dataset
    val: Dataset | None
    test: Dataset | None
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]


# Loads the full dataset once per process: several runs in one test session share it.
SourceLoader = Callable[[DataConfig, int], dict[str, Dataset]]


def load_splits(config: DataConfig, seed: int, loader: SourceLoader | None = None) -> Splits:
    """Open the source and choose train / validation / test (stratified, seeded, when held out)."""
    sets = (loader or _open)(config, seed)
    train = _first(sets, "train", "training", "all")
    if train is None:
        raise DataError(
            f"no training split found (splits: {', '.join(sets)})",
            where=config.source,
            fix="name the training folder train/ (val/ and test/ beside it), or put the class folders in --data itself",
        )
    if train.is_segmentation:
        raise DataError("this source has masks: it is a segmentation dataset", where=config.source)
    if len(train.classes) < 2:
        raise DataError(
            f"a classifier needs at least 2 classes; found {len(train.classes)}",
            where=config.source,
            fix="add a folder per class",
        )
    val = _first(sets, "val", "valid", "validation", "dev")
    if val is None and config.val_fraction > 0:
        train, val = train.split(config.val_fraction, seed=seed, at_least_one=True)
    mean, std = channel_stats(train.images)
    return Splits(train, val, _first(sets, "test", "testing"), list(train.classes), mean, std)


def _open(config: DataConfig, seed: int) -> dict[str, Dataset]:
    path, classes = resolve_source(config.source, config.data_dir)
    sets = open_source(path, size=config.img_size, strict=config.strict, fit=config.fit)
    if classes is not None:
        for dataset in sets.values():
            dataset.classes = list(classes)
    return sets


def train_transform(preset: str, splits: Splits, weights_normalisation: bool = False) -> Compose:
    """The augmentation preset, then the training set's normalisation (unless the preset normalises).

    ``weights_normalisation``: ``splits.mean``/``std`` are pretrained weights' own and replace any the preset has.
    """
    pipeline = PRESETS.get(preset)(splits.train.images)
    if weights_normalisation:
        return with_normalisation(pipeline, splits.mean, splits.std)
    if not any(isinstance(t, Normalize) for t in pipeline.transforms):
        pipeline = Compose([*pipeline.transforms, Normalize(splits.mean, splits.std)])
    return pipeline


def _first(sets: dict[str, Dataset], *names: str) -> Dataset | None:
    return next((sets[n] for n in names if n in sets), None)


def _loader(data: Dataset | None, batch_size: int, transform: Compose) -> TensorLoader | None:
    if data is None:
        return None
    return TensorLoader(data.images, data.targets, batch_size, transform=transform)


def _for_weights(
    splits: Splits, size: tuple[int, int, int], mean: tuple[float, ...], std: tuple[float, ...], fit: str
) -> Splits:
    """Every split at the weights' input size and channels, with the weights' normalisation."""

    def adapt(data: Dataset | None) -> Dataset | None:
        return adapt_dataset(data, size, fit) if data is not None else None  # type: ignore[arg-type]

    train = adapt_dataset(splits.train, size, fit)  # type: ignore[arg-type]
    return Splits(train, adapt(splits.val), adapt(splits.test), splits.classes, mean, std)
