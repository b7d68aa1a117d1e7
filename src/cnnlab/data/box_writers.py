"""Write a :class:`~cnnlab.data.boxes.BoxDataset` as Pascal-VOC XML, YOLO txt + data.yaml, or COCO JSON.

Each writer builds its output in a hidden folder beside the target and renames it into place at the
end, so a failure (a missing image, a full disk) leaves nothing half-written; a target folder that
already holds files is refused. Image files are hard-linked when the file system allows it, else
copied. A mapping ``{split: dataset}`` writes several splits at once (VOC: ``ImageSets/Main/<split>.txt``;
YOLO: ``images/<split>/`` and a data.yaml naming each).

Coordinates: VOC corners are written as they are held (x1 = xmin, no +1), YOLO values normalised to
six decimals (1e-6 of the side: under a thousandth of a pixel for images up to 1000 px), COCO boxes as
``[x, y, width, height]`` in pixels; VOC ``difficult`` and COCO ``iscrowd`` carry the difficult flag.

>>> import tempfile
>>> from PIL import Image
>>> from cnnlab.data.boxes import BoxDataset, BoxRecord, read_yolo
>>> folder = Path(tempfile.mkdtemp())
>>> Image.new("RGB", (40, 20)).save(folder / "a.png")
>>> data = BoxDataset([BoxRecord(str(folder / "a.png"), 20, 40, [[4, 2, 24, 12]], [0])], ["cat"])
>>> yaml_path = write_yolo(data, folder / "yolo")
>>> (folder / "yolo" / "labels" / "a.txt").read_text()
'0 0.350000 0.350000 0.500000 0.500000\\n'
>>> read_yolo(yaml_path).records[0].boxes.tolist()
[[4.0, 2.0, 24.0, 12.0]]
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import yaml

from cnnlab.core.errors import DataError
from cnnlab.core.rundir import atomic_write_text
from cnnlab.data.boxes import BoxDataset, BoxRecord
from cnnlab.data.images import GRAY_MODES, image_info

Splits = BoxDataset | Mapping[str, BoxDataset]


@contextmanager
def _staged(folder: Path) -> Iterator[Path]:
    """A hidden sibling folder to write into, renamed to ``folder`` on success and removed on failure."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise DataError(
            "the output folder already exists and is not empty",
            where=str(folder),
            fix="choose a new folder, or delete this one first",
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        yield staging
        if folder.exists():
            folder.rmdir()  # empty, checked above
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _link(source: Path, target: Path) -> None:
    """Hard-link ``source`` at ``target`` (same file system), else copy it; a missing source names the file."""
    if not source.is_file():
        raise DataError("image file not found while writing", where=str(source), fix="check the dataset's paths")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _as_splits(data: Splits) -> dict[str, BoxDataset]:
    return dict(data) if isinstance(data, Mapping) else {"": data}


def _unique_names(splits: Mapping[str, BoxDataset]) -> None:
    """Output files are named after the images: two images with one file name would overwrite each other."""
    seen: dict[str, str] = {}
    for data in splits.values():
        for record in data.records:
            name = Path(record.path).name
            if name in seen and seen[name] != record.path:
                raise DataError(
                    f"two images share the file name {name}: {seen[name]} and {record.path}",
                    where="box writer",
                    fix="rename one of them (outputs are named after the image files)",
                )
            seen[name] = record.path


def _class_names(splits: Mapping[str, BoxDataset]) -> list[str]:
    names = {tuple(d.class_names) for d in splits.values()}
    if len(names) != 1:
        raise DataError(
            "the splits have different class names", where="box writer", fix="read every split with the same classes"
        )
    return list(names.pop())


def _number(value: float) -> str:
    """Up to four decimals, no trailing zeros (an integer pixel stays '12')."""
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _voc_xml(record: BoxRecord, names: list[str]) -> str:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "JPEGImages"
    ET.SubElement(root, "filename").text = Path(record.path).name
    size = ET.SubElement(root, "size")
    _, mode = image_info(record.path)
    for key, value in (("width", record.width), ("height", record.height), ("depth", 1 if mode in GRAY_MODES else 3)):
        ET.SubElement(size, key).text = str(value)
    for box, label, hard in record.objects():
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = names[label]
        ET.SubElement(obj, "difficult").text = "1" if hard else "0"
        bndbox = ET.SubElement(obj, "bndbox")
        for key, value in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True):
            ET.SubElement(bndbox, key).text = _number(value)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def write_voc(data: Splits, folder: str | Path) -> Path:
    """Write ``folder/Annotations/<id>.xml`` and ``folder/JPEGImages/<image>`` (+ ``ImageSets/Main/<split>.txt``
    for a mapping of splits) and ``folder/classes.txt`` (one name a line, in class order: VOC itself has no
    class list, so classes no box uses would otherwise be lost); returns ``folder``. Every image gets an XML,
    a background image one without objects.
    """
    folder, splits = Path(folder), _as_splits(data)
    names = _class_names(splits)
    _unique_names(splits)
    with _staged(folder) as out:
        for split, dataset in splits.items():
            for record in dataset.records:
                _link(Path(record.path), out / "JPEGImages" / Path(record.path).name)
                atomic_write_text(out / "Annotations" / f"{record.id}.xml", _voc_xml(record, names))
            if split:
                atomic_write_text(out / "ImageSets" / "Main" / f"{split}.txt", "".join(f"{i}\n" for i in dataset.ids))
        atomic_write_text(out / "classes.txt", "".join(f"{name}\n" for name in names))
    return folder


def _yolo_lines(record: BoxRecord) -> str:
    height, width = record.height, record.width
    lines = []
    for (x1, y1, x2, y2), label in zip(record.boxes.tolist(), record.labels.tolist(), strict=True):
        values = ((x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height)
        lines.append(f"{label} " + " ".join(f"{v:.6f}" for v in values) + "\n")
    return "".join(lines)


def write_yolo(data: Splits, folder: str | Path) -> Path:
    """Write ``folder/images/``, ``folder/labels/`` (one txt per image, empty for a background image) and
    ``folder/data.yaml``; returns the data.yaml path. One dataset goes to ``images/`` (data.yaml: ``train:
    images``), a mapping of splits to ``images/<split>/`` each. The yaml has no ``path`` key: the dataset
    root is the yaml's folder (for cnnlab and Ultralytics alike).
    """
    folder, splits = Path(folder), _as_splits(data)
    names = _class_names(splits)
    _unique_names(splits)
    config: dict[str, object] = {}
    with _staged(folder) as out:
        for split, dataset in splits.items():
            images = Path("images") / split if split else Path("images")
            for record in dataset.records:
                image = Path(record.path)
                _link(image, out / images / image.name)
                labels = Path("labels") / split if split else Path("labels")
                atomic_write_text(out / labels / f"{image.stem}.txt", _yolo_lines(record))
            config[split or "train"] = images.as_posix()
        config["nc"] = len(names)
        config["names"] = dict(enumerate(names))
        atomic_write_text(out / "data.yaml", yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return folder / "data.yaml"


def write_coco(data: BoxDataset, json_path: str | Path, images_dir: str | Path | None = None) -> Path:
    """Write a COCO detection JSON (category ids 1..K in class order); returns ``json_path``.

    With ``images_dir`` the images are linked there (a new folder, written whole or not at all) and
    ``file_name`` is their name, so ``read_coco(json_path, images_dir)`` finds them; without it no image
    is copied and ``file_name`` is each image's path relative to the JSON's folder.
    """
    json_path = Path(json_path)
    _unique_names({"": data})
    images, annotations = [], []
    for image_id, record in enumerate(data.records, start=1):
        name = Path(record.path).name if images_dir is not None else os.path.relpath(record.path, json_path.parent)
        images.append({"id": image_id, "file_name": name, "width": record.width, "height": record.height})
        for box, label, hard in record.objects():
            x, y, w, h = box[0], box[1], box[2] - box[0], box[3] - box[1]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": label + 1,
                    "bbox": [round(v, 4) for v in (x, y, w, h)],
                    "area": round(w * h, 4),
                    "iscrowd": int(hard),
                }
            )
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(data.class_names)]
    text = json.dumps(
        {
            "info": {"description": "written by cnnlab"},
            "images": images,
            "annotations": annotations,
            "categories": categories,
        }
    )
    if images_dir is not None:
        with _staged(Path(images_dir)) as out:
            for record in data.records:
                _link(Path(record.path), out / Path(record.path).name)
            atomic_write_text(json_path, text)  # inside: a failed JSON write leaves no image folder either
    else:
        atomic_write_text(json_path, text)
    return json_path
