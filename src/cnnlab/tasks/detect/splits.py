"""Which named splits a detection dataset has (VOC ``ImageSets/Main/<split>.txt``, data.yaml keys,
``images/<split>/`` folders), so a run can train on ``train`` and validate on ``val`` as the dataset intends.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> (root / "ImageSets" / "Main").mkdir(parents=True)
>>> for name in ("train", "val", "test", "RBC_train"):
...     _ = (root / "ImageSets" / "Main" / f"{name}.txt").write_text("a\\n")
>>> named_splits(root)
['test', 'train', 'val']
"""

from __future__ import annotations

from pathlib import Path

import yaml

SPLIT_KEYS = ("train", "val", "test")


def _yaml_splits(path: Path) -> list[str]:
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []  # the reader reports a broken file with its own message
    return sorted(k for k in SPLIT_KEYS if isinstance(values, dict) and values.get(k))


def named_splits(path: Path) -> list[str]:
    """The split names ``path`` (a dataset file or folder) defines, sorted; ``[]`` when it defines none."""
    if path.is_file():
        return _yaml_splits(path) if path.suffix.lower() in (".yaml", ".yml") else []
    if not path.is_dir():
        return []
    for name in ("data.yaml", "dataset.yaml"):
        if (path / name).is_file():
            return _yaml_splits(path / name)
    for lists in [path / "ImageSets" / "Main", *path.glob("*/ImageSets/Main")]:
        if lists.is_dir():
            return sorted(p.stem for p in lists.glob("*.txt") if "_" not in p.stem)
    images = path / "images"
    return sorted(p.name for p in images.iterdir() if p.is_dir()) if images.is_dir() else []
