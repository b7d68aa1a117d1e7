"""Named datasets (``fashion-mnist``, ``mnist``) resolved from a local data directory.

The directory is ``--data-dir``, else ``$CNNLAB_DATA``, else ``~/.cnnlab/data``; a named dataset
lives in ``<data dir>/<name>/`` as its four original IDX files. cnnlab never downloads at run
time: on a machine without the files, the error says where to put them.

>>> NAMED_DATASETS["fashion-mnist"].classes[0]
'T-shirt/top'
"""

from __future__ import annotations

import difflib
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

    A source that is neither a named dataset nor an existing path, but close to a name (say
    ``fashion_mnist``), is an error that suggests the name.

    >>> resolve_source(".")
    (PosixPath('.'), None)
    >>> resolve_source("Fashion_MNIST")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.DataError: no dataset or path named 'Fashion_MNIST' ... did you mean 'fashion-mnist'? ...
    """
    named = NAMED_DATASETS.get(source.lower())
    if named is None:
        path = Path(source)
        spelled = source.lower().replace("_", "-").replace(" ", "-")
        close = difflib.get_close_matches(spelled, list(NAMED_DATASETS), n=1, cutoff=0.75)
        if close and not path.exists():
            raise DataError(
                f"no dataset or path named '{source}'",
                where="--data",
                fix=f"did you mean '{close[0]}'? (named datasets: {', '.join(NAMED_DATASETS)}; "
                "or pass a folder, .npz or .csv)",
            )
        if not path.exists() and len(path.parts) == 1 and not path.suffix:  # a name, not a mistyped path
            raise DataError(
                f"no folder named '{source}' here, and no dataset cnnlab knows by that name",
                where="--data",
                fix=f"pass a folder of class folders, a .npz or a .csv; named datasets: {', '.join(NAMED_DATASETS)} "
                "(from --data-dir or $CNNLAB_DATA); a UCR/UEA set by name needs --data-dir holding its folder",
            )
        return path, None
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
