"""Named datasets (``fashion-mnist``, ``mnist``) resolved from a local data directory.

The directory is ``--data-dir``, else ``$CNNLAB_DATA``, else ``~/.cnnlab/data``; a named dataset
lives in ``<data dir>/<name>/`` as its four original IDX files. cnnlab never downloads at run
time: on a machine without the files, the error says where to put them.

>>> NAMED_DATASETS["fashion-mnist"].classes[0]
'T-shirt/top'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cnnlab.core.errors import DataError
from cnnlab.data.datasets import FASHION_MNIST_CLASSES


@dataclass(frozen=True)
class NamedDataset:
    """A dataset known by name: its class names and where the files come from."""

    name: str
    classes: tuple[str, ...]
    source_url: str
    files: tuple[str, ...] = (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    )


NAMED_DATASETS = {
    "fashion-mnist": NamedDataset(
        "fashion-mnist", tuple(FASHION_MNIST_CLASSES), "https://github.com/zalandoresearch/fashion-mnist"
    ),
    "mnist": NamedDataset("mnist", tuple(str(d) for d in range(10)), "http://yann.lecun.com/exdb/mnist/"),
}


def default_data_dir() -> Path:
    """``$CNNLAB_DATA`` or ``~/.cnnlab/data``."""
    return Path(os.environ.get("CNNLAB_DATA", Path.home() / ".cnnlab" / "data"))


def resolve_source(source: str, data_dir: str | Path | None = None) -> tuple[Path, tuple[str, ...] | None]:
    """The folder or file to read for ``source`` (a name or a path), and the class names if known.

    >>> resolve_source(".")
    (PosixPath('.'), None)
    """
    named = NAMED_DATASETS.get(source.lower())
    if named is None:
        return Path(source), None
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    folder = root / named.name
    missing = [f for f in named.files if not (folder / f).is_file() and not (folder / f.removesuffix(".gz")).is_file()]
    if missing:
        raise DataError(
            f"{named.name} is not in the data directory (missing {', '.join(missing)})",
            where=str(folder),
            fix=f"copy the four IDX files from {named.source_url} into that folder, "
            "or point --data-dir / CNNLAB_DATA at a folder that has them",
        )
    return folder, named.classes
