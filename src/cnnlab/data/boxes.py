"""Boxes as a data kind: Pascal-VOC XML, YOLO txt (+ data.yaml) and COCO JSON read into one form.

Every reader gives a :class:`BoxDataset`: one :class:`BoxRecord` per image holding its path, its size
(from the file header: nothing is decoded while reading), boxes as float32 ``xyxy`` absolute pixel
corners in continuous coordinates (a box covering pixel columns 0..9 has x1 = 0, x2 = 10), int64
class indices 0..K-1 and a ``difficult`` flag (VOC ``difficult``, COCO ``iscrowd``).
:meth:`BoxDataset.to_tensors` decodes the images into the tensors a detector trains on.

What the readers do with bad input (each message names the file, and the object or line):

- malformed XML, JSON entries or txt lines: the image is skipped and the problem recorded (a
  :class:`~cnnlab.data.cache.DataWarning`), or a :class:`~cnnlab.core.errors.DataError` with
  ``strict=True``; a COCO file that is not JSON at all is always an error;
- a box overhanging the image by a little (:func:`overhang_tolerance`) is clipped with a recorded
  warning, by more it is clipped with a warning to check the coordinates; a box entirely outside the
  image, or with zero or negative area, is dropped with a recorded warning (these keep the image,
  so they are warnings in ``strict`` mode too);
- a class id out of range or an unknown class name, and an annotation whose image is missing, are
  errors naming both;
- an image without an annotation file is a background image (allowed; :meth:`BoxDataset.summary`
  counts them).

>>> import tempfile
>>> from PIL import Image
>>> root = Path(tempfile.mkdtemp())
>>> Image.new("RGB", (64, 48)).save(root / "cells.jpg")
>>> _ = (root / "cells.xml").write_text(
...     "<annotation><object><name>RBC</name><bndbox><xmin>4</xmin><ymin>6</ymin>"
...     "<xmax>20</xmax><ymax>30</ymax></bndbox></object></annotation>")
>>> data = read_boxes(root)
>>> data.class_names, data.records[0].boxes.tolist(), (data.records[0].height, data.records[0].width)
(['RBC'], [[4.0, 6.0, 20.0, 30.0]], (48, 64))
"""

from __future__ import annotations

import json
import math
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
import yaml

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.data.cache import DataWarning, Problem, ProblemLog, decode_images
from cnnlab.data.images import MAX_PIXELS, check_image_size, image_info, is_image_file, list_image_files, natural_key

LAYOUTS = (
    "a data.yaml (YOLO: keys path, train, val, test, names) or a folder holding one",
    "a folder with images/ and labels/ (YOLO txt: 'class cx cy w h' normalised, one file per image)",
    "a COCO .json file (images, annotations with xywh bbox, categories)",
    "a Pascal-VOC folder with Annotations/*.xml and JPEGImages/ (optional ImageSets/Main/<split>.txt)",
    "a flat folder of images with their VOC .xml files side by side",
    "a folder with images/ and an annotations/ or labels/ folder of VOC .xml files",
)
"""The dataset layouts :func:`read_boxes` recognises (listed in its error when none matches)."""

XML_LABEL_FOLDERS = ("annotations", "Annotations", "labels")
"""Folders beside ``images/`` that may hold VOC ``.xml`` files, one per image."""

SMALL_OVERHANG_PX, SMALL_OVERHANG_FRACTION = 3.0, 0.02
"""A box reaching past the image by at most max(3 px, 2% of the longer side) is an annotation tool's slip:
clipped, with a warning. Further out, the coordinates themselves are suspect (clipped, warned as such)."""

ROUNDING_PX = 0.01
"""Overhangs below this are float rounding (a YOLO 1.0000001): clipped without a word."""

BoxFit = Literal["stretch", "pad"]


def overhang_tolerance(height: int, width: int) -> float:
    """Pixels a box may reach past the image and count as a small slip (see :data:`SMALL_OVERHANG_PX`).

    >>> overhang_tolerance(480, 640), overhang_tolerance(32, 32)
    (12.8, 3.0)
    """
    return max(SMALL_OVERHANG_PX, SMALL_OVERHANG_FRACTION * max(height, width))


@dataclass
class BoxRecord:
    """One image and its objects: ``boxes`` (N, 4) float32 xyxy pixels, ``labels`` (N,) int64 class
    indices, ``difficult`` (N,) bool (VOC difficult / COCO crowd: ignored when scoring)."""

    path: str
    height: int
    width: int
    boxes: torch.Tensor
    labels: torch.Tensor
    difficult: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.boxes = torch.as_tensor(self.boxes, dtype=torch.float32).reshape(-1, 4)
        self.labels = torch.as_tensor(self.labels, dtype=torch.int64).reshape(-1)
        n = len(self.boxes)
        self.difficult = (
            torch.zeros(n, dtype=torch.bool)
            if self.difficult is None
            else torch.as_tensor(self.difficult, dtype=torch.bool).reshape(-1)
        )
        if len(self.labels) != n or len(self.difficult) != n:
            raise DataError(
                f"{n} boxes but {len(self.labels)} labels and {len(self.difficult)} difficult flags", where=self.path
            )

    @property
    def id(self) -> str:
        """The image's file stem (VOC's image id)."""
        return Path(self.path).stem

    def objects(self) -> list[tuple[list[float], int, bool]]:
        """``(box, label, difficult)`` per object, as Python values (what writers and reports iterate over).

        >>> BoxRecord("a.jpg", 9, 9, [[0, 1, 2, 3]], [4]).objects()
        [([0.0, 1.0, 2.0, 3.0], 4, False)]
        """
        difficult = self.difficult if self.difficult is not None else torch.zeros(len(self.boxes), dtype=torch.bool)
        return list(zip(self.boxes.tolist(), self.labels.tolist(), difficult.tolist(), strict=True))


@dataclass
class BoxDataset:
    """Images with boxes (one :class:`BoxRecord` each), the class names, and the problems met reading them."""

    records: list[BoxRecord]
    class_names: list[str]
    problems: list[Problem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def ids(self) -> list[str]:
        """Image ids (file stems), in record order."""
        return [r.id for r in self.records]

    def box_counts(self) -> dict[str, int]:
        """Boxes per class name.

        >>> BoxDataset([BoxRecord("a.jpg", 9, 9, [[0, 0, 2, 2]] * 3, [1, 0, 1])], ["cat", "dog"]).box_counts()
        {'cat': 1, 'dog': 2}
        """
        labels = torch.cat([r.labels for r in self.records]) if self.records else torch.zeros(0, dtype=torch.long)
        counts = torch.bincount(labels, minlength=len(self.class_names)).tolist()
        return dict(zip(self.class_names, counts, strict=True))

    def summary(self) -> str:
        """One line: images (and how many have no box), boxes per class, boxes per image, box sides, problems.

        >>> BoxDataset([BoxRecord("a.jpg", 9, 9, [[0, 0, 2, 4]], [0]), BoxRecord("b.jpg", 9, 9, [], [])],
        ...            ["cat"]).summary()
        '2 images (1 without boxes), 1 boxes (cat 1), 0-1 per image (mean 0.5), box sides 2-4 px, 0 problems'
        """
        per_image = [len(r.boxes) for r in self.records]
        total = sum(per_image)
        classes = ", ".join(f"{name} {count:,}" for name, count in self.box_counts().items())
        text = f"{len(self):,} images ({per_image.count(0):,} without boxes), {total:,} boxes ({classes})"
        if per_image:
            text += f", {min(per_image)}-{max(per_image)} per image (mean {total / len(per_image):.1f})"
        if total:
            boxes = torch.cat([r.boxes for r in self.records])
            sides = torch.cat([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]])
            text += f", box sides {float(sides.min()):.3g}-{float(sides.max()):.3g} px"
        return text + f", {len(self.problems)} problems"

    def select(self, ids: Iterable[str | int]) -> BoxDataset:
        """The records with these image ids (file stems) or positions, in the order given.

        >>> data = BoxDataset([BoxRecord(f"{i}.jpg", 9, 9, [], []) for i in "abc"], ["cat"])
        >>> data.select(["c", 0]).ids
        ['c', 'a']
        """
        by_id: dict[str, int] = {}
        for i, record in enumerate(self.records):
            by_id.setdefault(record.id, i)
        chosen: list[int] = []
        unknown: list[str] = []
        for key in ids:
            if isinstance(key, int) and not isinstance(key, bool):
                if not -len(self) <= key < len(self):
                    unknown.append(str(key))
                else:
                    chosen.append(key)
            elif str(key) in by_id:
                chosen.append(by_id[str(key)])
            else:
                unknown.append(str(key))
        if unknown:
            raise DataError(
                f"{len(unknown)} image id(s) not in the dataset: {', '.join(unknown[:5])}",
                where="BoxDataset.select",
                fix="pass image file stems (e.g. BloodImage_00007) or positions 0..len-1",
            )
        return replace(self, records=[self.records[i] for i in chosen])

    def split(self, fraction: float, seed: int = 0) -> tuple[BoxDataset, BoxDataset]:
        """``(rest, held_out)``: ``round(fraction * len)`` random images held out (seeded; record order kept).

        >>> data = BoxDataset([BoxRecord(f"{i}.jpg", 9, 9, [], []) for i in range(10)], ["cat"])
        >>> rest, held = data.split(0.2, seed=1)
        >>> len(rest), len(held), sorted(rest.ids + held.ids) == sorted(data.ids)
        (8, 2, True)
        """
        if not 0.0 < fraction < 1.0:
            raise DataError(f"split fraction must be between 0 and 1. Received: fraction={fraction}", where="split")
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        count = round(fraction * len(self))
        if count == 0 or count == len(self):
            side = "the held-out set empty" if count == 0 else "nothing to train on"
            raise DataError(
                f"holding out {fraction:g} of {len(self)} images leaves {side}",
                where="split",
                fix="change the fraction or add images",
            )
        held = sorted(order[:count].tolist())
        rest = sorted(order[count:].tolist())
        return replace(self, records=[self.records[i] for i in rest]), replace(
            self, records=[self.records[i] for i in held]
        )

    def to_tensors(
        self,
        size: int | tuple[int, int] | None = None,
        fit: BoxFit = "stretch",
        channels: int = 3,
        keep_difficult: bool = False,
        cache_dir: str | Path | None = None,
        max_pixels: int = MAX_PIXELS,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode every image: ``(images uint8 (N, C, H, W), targets float32 (N, M, 5))``.

        Target rows are ``[class, x1, y1, x2, y2]`` in the decoded image's pixels, padded with rows of
        class -1; M is the most boxes any image has (at least 1). ``size`` = (height, width), or one int
        for a square, or None when every image already has the same size. ``fit="stretch"`` resizes each
        axis on its own; ``"pad"`` letterboxes (keeps the aspect ratio, centres the image on black) and
        moves the boxes with it. Difficult / crowd boxes are left out unless ``keep_difficult``. An image
        that does not decode is an error naming it (leave it out with :meth:`select`).

        >>> import tempfile
        >>> from PIL import Image
        >>> path = Path(tempfile.mkdtemp()) / "wide.png"
        >>> Image.new("RGB", (40, 20)).save(path)
        >>> data = BoxDataset([BoxRecord(str(path), 20, 40, [[0, 0, 40, 20]], [0])], ["cat"])
        >>> images, targets = data.to_tensors(size=20, fit="pad")
        >>> images.shape, targets.tolist()
        (torch.Size([1, 3, 20, 20]), [[[0.0, 0.0, 5.0, 20.0, 15.0]]])
        """
        if fit not in ("stretch", "pad"):
            raise ConfigError(
                f"fit must be 'stretch' or 'pad' for boxes. Received: fit={fit!r}",
                where="to_tensors",
                fix="use pad to keep the aspect ratio ('crop' would cut boxes off)",
            )
        target = check_image_size(size, smallest=1)
        files = [Path(r.path) for r in self.records]
        decoded = decode_images(files, channels, target, fit, strict=True, cache_dir=cache_dir, max_pixels=max_pixels)
        images = torch.from_numpy(decoded.pixels).permute(0, 3, 1, 2)  # (N, C, H, W)
        rows = []
        for record in self.records:
            keep = slice(None) if keep_difficult else ~record.difficult
            boxes = record.boxes[keep]
            if target is not None:
                scale_x, scale_y, left, top = resize_geometry((record.height, record.width), target, fit)
                boxes = boxes * torch.tensor([scale_x, scale_y, scale_x, scale_y]) + torch.tensor([left, top] * 2)
            rows.append(torch.cat([record.labels[keep, None].float(), boxes], 1))
        return images, pad_targets(rows)


def resize_geometry(source: tuple[int, int], target: tuple[int, int], fit: BoxFit) -> tuple[float, float, float, float]:
    """``(scale_x, scale_y, left, top)`` taking pixel coordinates of a ``source`` (height, width) image to
    those of the same image resized to ``target`` by :func:`~cnnlab.data.images.read_image` (the letterbox
    arithmetic of Pillow's ``ImageOps.pad``, rounding included).

    >>> resize_geometry((480, 640), (416, 416), "pad")
    (0.65, 0.65, 0.0, 52.0)
    """
    (height, width), (out_h, out_w) = source, target
    if fit == "stretch" or width / height == out_w / out_h:
        return out_w / width, out_h / height, 0.0, 0.0
    if width / height > out_w / out_h:
        new_h = round(height / width * out_w)
        return out_w / width, new_h / height, 0.0, float(round((out_h - new_h) * 0.5))
    new_w = round(width / height * out_h)
    return new_w / width, out_h / height, float(round((out_w - new_w) * 0.5)), 0.0


def pad_targets(rows: Sequence[torch.Tensor]) -> torch.Tensor:
    """Stack per-image ``(n_i, 5)`` rows into ``(N, M, 5)``, padding with rows of class -1 (M >= 1).

    >>> pad_targets([torch.tensor([[1.0, 0, 0, 2, 2]]), torch.zeros(0, 5)])[:, :, 0].tolist()
    [[1.0], [-1.0]]
    """
    most = max([len(r) for r in rows] + [1])
    out = torch.zeros(len(rows), most, 5)
    out[:, :, 0] = -1
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


# ----- validation shared by the readers ----------------------------------------------------------


def _note(log: ProblemLog, where: Path | str, message: str) -> None:
    """A problem that keeps the image (a box clipped or dropped): warned and recorded, never fatal."""
    warnings.warn(f"{message} [{where}]", DataWarning, stacklevel=4)
    log.problems.append(Problem(str(where), message))


def _format_box(box: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"


@dataclass
class _Objects:
    """Objects read from one annotation, before validation: ``tags`` name each in messages ("line 3")."""

    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    difficult: list[bool] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    def add(self, box: tuple[float, float, float, float], label: int, difficult: bool, tag: str) -> None:
        self.boxes.append(box)
        self.labels.append(label)
        self.difficult.append(difficult)
        self.tags.append(tag)


def _record(image: Path, size: tuple[int, int], objects: _Objects, source: Path, log: ProblemLog) -> BoxRecord:
    """Clip boxes that overhang the image, drop those outside it or without area (noting each), build the record."""
    height, width = size
    tolerance = overhang_tolerance(height, width)
    kept = _Objects()
    small: list[float] = []
    for box, label, hard, tag in zip(objects.boxes, objects.labels, objects.difficult, objects.tags, strict=True):
        x1, y1, x2, y2 = box
        if x2 <= x1 or y2 <= y1:
            _note(log, source, f"{tag} has zero or negative area {_format_box(box)}: dropped")
            continue
        if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
            _note(log, source, f"{tag} {_format_box(box)} lies entirely outside the {width}x{height} image: dropped")
            continue
        overhang = max(-x1, -y1, x2 - width, y2 - height)
        if overhang > 0:
            if ROUNDING_PX < overhang <= tolerance:
                small.append(overhang)
            elif overhang > tolerance:
                _note(
                    log,
                    source,
                    f"{tag} {_format_box(box)} reaches {overhang:.4g} px outside the {width}x{height} image: "
                    "clipped to it (check the coordinates)",
                )
            box = (max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height)))
        kept.add(box, label, hard, tag)
    if small:
        _note(
            log,
            source,
            f"{len(small)} box(es) overhang the {width}x{height} image by up to {max(small):.3g} px: clipped",
        )
    return BoxRecord(str(image), height, width, kept.boxes, kept.labels, kept.difficult)


def _image_size(image: Path, log: ProblemLog, max_pixels: int) -> tuple[int, int] | None:
    """(height, width) from the header; an unreadable image is a problem (skipped, or fatal when strict)."""
    try:
        (width, height), _ = image_info(image, max_pixels)
    except DataError as err:
        log.report(err)
        return None
    return height, width


def _number(text: str | None, what: str) -> float:
    """A finite float from annotation text, else a DataError saying which value was wrong."""
    try:
        value = float(text.strip()) if text is not None else math.nan
    except ValueError:
        raise DataError(f"{what} is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise DataError(f"{what} is missing or not finite: {text!r}")
    return value


def _missing_image(
    annotation: Path | str, tried: Sequence[Path], what: str = "annotation without its image"
) -> DataError:
    shown = ", ".join(str(p) for p in tried[:3])
    return DataError(
        f"{what} (looked for {shown})",
        where=str(annotation),
        fix="put the image where the annotation expects it, or delete the annotation",
    )


# ----- Pascal VOC ---------------------------------------------------------------------------------


@dataclass
class _VocFile:
    filename: str | None
    names: list[str]
    boxes: list[tuple[float, float, float, float]]
    difficult: list[bool]
    size: tuple[int, int] | None  # (height, width) as the XML states it


def _parse_voc(path: Path) -> _VocFile:
    """One VOC XML file; anything malformed is a DataError naming the file and the object."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DataError(f"malformed XML ({exc})", where=str(path), fix="fix or delete the file") from None
    out = _VocFile(root.findtext("filename"), [], [], [], None)
    width, height = root.findtext("size/width"), root.findtext("size/height")
    if width and height and width.strip().isdigit() and height.strip().isdigit() and int(width) and int(height):
        out.size = (int(height), int(width))
    for k, obj in enumerate(root.iter("object"), start=1):
        name = (obj.findtext("name") or "").strip()
        try:
            if not name:
                raise DataError("has no <name>")
            box = obj.find("bndbox")
            if box is None:
                raise DataError("has no <bndbox>")
            corners = tuple(_number(box.findtext(key), f"<{key}>") for key in ("xmin", "ymin", "xmax", "ymax"))
        except DataError as err:
            raise DataError(f"object {k} {err.what}", where=str(path), fix="fix or delete the object") from None
        out.names.append(name)
        out.boxes.append(corners)  # type: ignore[arg-type]
        out.difficult.append((obj.findtext("difficult") or "0").strip() in ("1", "true"))
    return out


def _voc_folders(root: Path) -> tuple[Path, Path, Path]:
    """``(annotations, images, root)`` of a VOC dataset: root/Annotations + root/JPEGImages (or images/), a flat
    folder, root/images + root/annotations or root/labels of XML files, or a folder holding exactly one such
    dataset folder (e.g. ``bccd/`` around ``BCCD/``)."""
    if (root / "Annotations").is_dir() and not (root / "images").is_dir():
        images = root / "JPEGImages"
        if not images.is_dir():
            raise DataError(
                "VOC folder has Annotations/ but no JPEGImages/", where=str(root), fix="put the images in JPEGImages/"
            )
        return root / "Annotations", images, root
    if root.is_dir() and any(root.glob("*.xml")):
        return root, root, root
    xml_folder = _xml_label_folder(root)
    if xml_folder is not None:
        return xml_folder, root / "images", root
    inner = [p for p in root.glob("*/Annotations") if p.is_dir()] if root.is_dir() else []
    if len(inner) == 1:
        return _voc_folders(inner[0].parent)
    raise DataError(
        "not a Pascal-VOC dataset: no Annotations/ folder and no .xml files",
        where=str(root),
        fix="pass the folder holding Annotations/ and JPEGImages/ (or images with their .xml side by side)",
    )


def _xml_label_folder(root: Path) -> Path | None:
    """``root/annotations`` or ``root/labels`` when it holds VOC ``.xml`` files (and no YOLO ``.txt`` labels)
    beside ``root/images``: a layout annotation tools export."""
    if not (root / "images").is_dir():
        return None
    for name in XML_LABEL_FOLDERS:
        folder = root / name
        if folder.is_dir() and any(folder.glob("*.xml")) and not any(folder.glob("*.txt")):
            return folder
    return None


def _split_ids(root: Path, split: str) -> tuple[Path, list[str]]:
    listing = root / "ImageSets" / "Main" / f"{split}.txt"
    if not listing.is_file():
        found = sorted(p.stem for p in (root / "ImageSets" / "Main").glob("*.txt") if "_" not in p.stem)
        raise DataError(
            f"no split '{split}'",
            where=str(listing),
            fix=f"use one of {', '.join(found)}" if found else "leave split out to read every image",
        )
    return listing, [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]


def read_voc(
    root: str | Path,
    split: str | None = None,
    classes: Sequence[str] | None = None,
    strict: bool = False,
    max_pixels: int = MAX_PIXELS,
) -> BoxDataset:
    """A Pascal-VOC dataset: ``root/Annotations/<id>.xml`` + ``root/JPEGImages/<id>.jpg``, or a flat folder of
    images with their XML side by side.

    Corners are taken as given (x1 = xmin, x2 = xmax: no -1 shift for VOC's 1-based pixel indices; a box
    xmin=1..xmax=10 is 9 pixels wide here). ``split`` reads the ids of ``ImageSets/Main/<split>.txt``
    (in its order), else every annotation and image is read (sorted). Classes are ``classes`` when given,
    else the lines of ``classes.txt`` in the dataset folder when there is one (an unknown name is then an
    error), else the sorted names found. The image size comes from the image file's header; an XML
    ``<size>`` that disagrees is a recorded warning. An image without an XML is a background image; an XML
    without its image is an error.
    """
    ann_dir, img_dir, root = _voc_folders(Path(root))
    log = ProblemLog(strict)
    parsed = _voc_files(ann_dir, img_dir, root, split, log)
    listed = root / "classes.txt"
    if classes is None and listed.is_file():
        classes = [line.strip() for line in listed.read_text().splitlines() if line.strip()]
    found = sorted({name for _, _, contents in parsed if contents is not None for name in contents.names})
    names = list(classes) if classes is not None else found
    records = []
    for image, xml, contents in parsed:
        size = _image_size(image, log, max_pixels)
        if size is not None:
            objects = _voc_objects(xml, contents, names, size, log) if xml and contents else _Objects()
            records.append(_record(image, size, objects, xml or image, log))
    if not records:
        raise DataError("no images found", where=str(root), fix="put the images in JPEGImages/ (or beside the XML)")
    return BoxDataset(records, names, log.problems)


def _voc_files(
    ann_dir: Path, img_dir: Path, root: Path, split: str | None, log: ProblemLog
) -> list[tuple[Path, Path | None, _VocFile | None]]:
    """``(image, xml, parsed xml)`` per image id (no XML: a background image); a malformed XML is a problem,
    an id with an XML but no image an error."""
    images = {p.stem: p for p in sorted(img_dir.iterdir()) if p.is_file() and is_image_file(p)}
    if split is not None:
        listing, ids = _split_ids(root, split)
    else:
        listing, ids = ann_dir, sorted({p.stem for p in ann_dir.glob("*.xml")} | set(images), key=natural_key)
    parsed: list[tuple[Path, Path | None, _VocFile | None]] = []
    for image_id in ids:
        xml = ann_dir / f"{image_id}.xml"
        contents = None
        if xml.is_file():
            try:
                contents = _parse_voc(xml)
            except DataError as err:
                log.report(err)
                continue
        image = images.get(image_id)
        if image is None and contents is not None and contents.filename:
            named = img_dir / contents.filename.strip()
            image = named if named.is_file() else None
        if image is None:
            tried = [img_dir / f"{image_id}.jpg"]
            if contents is None:
                raise _missing_image(f"{listing} (id {image_id})", tried, "no image and no annotation for this id")
            raise _missing_image(xml, tried + ([img_dir / contents.filename] if contents.filename else []))
        parsed.append((image, xml if contents is not None else None, contents))
    return parsed


def _voc_objects(xml: Path, contents: _VocFile, names: list[str], size: tuple[int, int], log: ProblemLog) -> _Objects:
    if contents.size is not None and contents.size != size:
        _note(
            log,
            xml,
            f"<size> says {contents.size[1]}x{contents.size[0]} but the image is {size[1]}x{size[0]}: "
            "the image's size is used",
        )
    index = {name: i for i, name in enumerate(names)}
    objects = _Objects()
    for k, (name, box, hard) in enumerate(zip(contents.names, contents.boxes, contents.difficult, strict=True), 1):
        if name not in index:
            raise DataError(
                f"object {k} has class '{name}', not in the classes {names}",
                where=str(xml),
                fix="add it to classes (or classes.txt), or leave them out to take every name found",
            )
        objects.add(box, index[name], hard, f"object {k} ({name})")
    return objects


# ----- YOLO ---------------------------------------------------------------------------------------


def _yolo_names(value: Any, where: Path) -> list[str] | None:
    """``names`` of a data.yaml as a list: a list, or a dict {id: name} with ids 0..K-1."""
    if value is None:
        return None
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, dict):
        try:
            ids = sorted(int(k) for k in value)
        except (TypeError, ValueError):
            ids = []
        if ids != list(range(len(value))):
            raise DataError(
                f"names must map ids 0..{len(value) - 1} to names, found keys {list(value)[:5]}",
                where=str(where),
                fix="write names: {0: cat, 1: dog} or names: [cat, dog]",
            )
        return [str(value[k] if k in value else value[str(k)]) for k in ids]
    raise DataError("names must be a list or a dict {id: name}", where=str(where), fix="write names: [cat, dog]")


def yolo_label_path(image: Path) -> Path:
    """Where a YOLO label file lives for ``image``: the last ``images`` folder swapped for ``labels``, suffix
    ``.txt`` (Ultralytics' rule); beside the image when no folder is named ``images``.

    >>> yolo_label_path(Path("data/images/train/a.jpg")).as_posix()
    'data/labels/train/a.txt'
    """
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def _yolo_sources(root: Path, value: Any, where: Path) -> tuple[list[Path], list[Path]]:
    """``(images, folders)`` of one data.yaml split entry: folders of images, txt lists of images, or a list."""
    entries = value if isinstance(value, list) else [value]
    images: list[Path] = []
    folders: list[Path] = []
    for entry in entries:
        path = Path(str(entry))
        path = path if path.is_absolute() else root / path
        if path.is_dir():
            folders.append(path)
            images += list_image_files(path)
        elif path.is_file() and path.suffix == ".txt":
            lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
            images += [Path(line) if Path(line).is_absolute() else path.parent / line for line in lines]
        else:
            raise DataError(
                f"split entry '{entry}' is neither a folder nor a .txt list of images",
                where=str(where),
                fix=f"check the path (relative paths start from {root})",
            )
    return images, folders


def _parse_yolo_line(tokens: list[str], size: tuple[int, int]) -> tuple[int, tuple[float, float, float, float]]:
    """``class cx cy w h`` (or ``class x1 y1 x2 y2 x3 y3 ...``, a polygon: its enclosing box) -> pixel xyxy."""
    if len(tokens) != 5 and (len(tokens) < 7 or len(tokens) % 2 == 0):
        raise DataError(f"expected 'class cx cy w h' (5 values), found {len(tokens)}")
    label = _number(tokens[0], "the class id")
    if label != int(label):
        raise DataError(f"the class id must be a whole number, found {tokens[0]!r}")
    values = [_number(t, f"value {i + 2}") for i, t in enumerate(tokens[1:])]
    height, width = size
    if len(values) == 4:
        cx, cy, w, h = values
        return int(label), ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)
    xs, ys = values[0::2], values[1::2]
    return int(label), (min(xs) * width, min(ys) * height, max(xs) * width, max(ys) * height)


def _read_yolo_labels(
    label_file: Path, size: tuple[int, int], num_classes: int | None, log: ProblemLog
) -> _Objects | None:
    objects = _Objects()
    if not label_file.is_file():
        return objects  # no label file: a background image
    try:
        lines = label_file.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        log.report(DataError(f"cannot read label file ({exc})", where=str(label_file), fix="check the file"))
        return None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            label, box = _parse_yolo_line(line.split(), size)
        except DataError as err:
            log.report(DataError(f"line {number}: {err.what}", where=str(label_file), fix="fix or delete the line"))
            return None
        if label < 0 or (num_classes is not None and label >= num_classes):
            allowed = f"0..{num_classes - 1}" if num_classes is not None else "0 and up"
            raise DataError(
                f"line {number}: class id {label} is out of range {allowed}",
                where=str(label_file),
                fix="renumber the class, or add its name to names in data.yaml",
            )
        objects.add(box, label, False, f"line {number}")
    return objects


def _orphan_labels(folders: Sequence[Path], images: Sequence[Path]) -> None:
    """A label file in a label folder of ``folders`` whose image is missing is an error naming both."""
    expected = {yolo_label_path(image).resolve() for image in images}
    for folder in folders:
        label_folder = yolo_label_path(folder / "x.jpg").parent
        if label_folder == folder or not label_folder.is_dir():
            continue
        for label_file in sorted(label_folder.rglob("*.txt")):
            if label_file.name != "classes.txt" and label_file.resolve() not in expected:
                relative = label_file.relative_to(label_folder).with_suffix(".jpg")
                raise _missing_image(label_file, [folder / relative])


def read_yolo(path: str | Path, split: str = "train", strict: bool = False, max_pixels: int = MAX_PIXELS) -> BoxDataset:
    """A YOLO dataset: a ``data.yaml`` (keys ``path``, ``train``, ``val``, ``test``, ``names`` as a list or
    ``{id: name}``) or a folder with ``images/`` and ``labels/`` (split sub-folders such as ``images/train``
    optional; class names from ``data.yaml`` or ``classes.txt`` there, else ``"0"``.. up to the largest id).

    ``path`` in the yaml is the dataset root, relative to the yaml's folder (default: that folder); a split
    entry is a folder of images, a .txt list of images, or a list of those. Label lines are
    ``class cx cy w h`` normalised to the image size, read from the header of each image (a polygon line
    ``class x1 y1 x2 y2 ...`` gives its enclosing box). An image without a label file has no objects.
    """
    path = Path(path)
    if path.is_dir():
        path = next((path / n for n in ("data.yaml", "dataset.yaml") if (path / n).is_file()), path)
    if path.is_file():
        images, folders, names = _yolo_yaml(path, split)
    elif (path / "images").is_dir():
        images, folders, names = _yolo_folder(path, split)
    else:
        raise DataError(
            "not a YOLO dataset: no data.yaml and no images/ folder",
            where=str(path),
            fix="pass data.yaml, or a folder with images/ and labels/",
        )
    if not images:
        raise DataError(f"split '{split}' holds no images", where=str(path), fix="check the split's folder or list")
    _orphan_labels(folders, images)
    log = ProblemLog(strict)
    read: list[tuple[Path, tuple[int, int], _Objects]] = []
    for image in images:
        if not image.is_file():
            raise _missing_image(path, [image], f"split '{split}' lists an image that does not exist")
        size = _image_size(image, log, max_pixels)
        count = len(names) if names is not None else None
        objects = _read_yolo_labels(yolo_label_path(image), size, count, log) if size else None
        if size is not None and objects is not None:
            read.append((image, size, objects))
    if names is None:
        top = max((label for _, _, objects in read for label in objects.labels), default=-1)
        names = [str(i) for i in range(top + 1)]
    records = [_record(image, size, objects, yolo_label_path(image), log) for image, size, objects in read]
    return BoxDataset(records, names, log.problems)


def _yolo_yaml(path: Path, split: str) -> tuple[list[Path], list[Path], list[str] | None]:
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DataError(f"cannot read YAML ({exc})", where=str(path), fix="check the file") from None
    if not isinstance(config, dict):
        raise DataError("data.yaml must be a mapping of keys", where=str(path), fix="write train:, val:, names:")
    root = Path(str(config.get("path") or "."))
    root = root if root.is_absolute() else path.parent / root
    if not config.get(split):
        present = [k for k in ("train", "val", "test") if config.get(k)]
        raise DataError(
            f"no '{split}' split in data.yaml", where=str(path), fix=f"use one of {', '.join(present) or 'none'}"
        )
    images, folders = _yolo_sources(root, config[split], path)
    return images, folders, _yolo_names(config.get("names"), path)


def _yolo_folder(root: Path, split: str) -> tuple[list[Path], list[Path], list[str] | None]:
    folder = root / "images"
    splits = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if splits and not any(is_image_file(p) for p in folder.iterdir()):
        if split not in splits:
            raise DataError(f"no split '{split}' in images/", where=str(folder), fix=f"use one of {', '.join(splits)}")
        folder = folder / split
    classes = root / "classes.txt"
    names = [line.strip() for line in classes.read_text().splitlines() if line.strip()] if classes.is_file() else None
    return list_image_files(folder), [folder], names


# ----- COCO ---------------------------------------------------------------------------------------


def coco_image_folders(json_path: Path) -> list[Path]:
    """Where a COCO JSON's images may be, in the order looked at: beside it, in ``images/`` beside it, and for
    ``annotations/instances_val2017.json`` (or ``annotations/val.json``) also ``val2017/`` and ``images/val2017/``
    next to ``annotations/`` (the layouts of COCO itself and of Ultralytics' copies).

    >>> [p.as_posix() for p in coco_image_folders(Path("coco/annotations/instances_val2017.json"))][2:4]
    ['coco/val2017', 'coco/images/val2017']
    """
    base, split = json_path.parent, json_path.stem.rsplit("_", 1)[-1]
    return [base, base / "images", base.parent / split, base.parent / "images" / split, base.parent / "images"]


def _coco_image_path(folders: Sequence[Path], name: str) -> tuple[Path | None, list[Path]]:
    tried = [folder / name for folder in folders]
    return next((p for p in tried if p.is_file()), None), tried


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(
            f"malformed JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            where=str(path),
            fix="fix the file (an interrupted download or export leaves it cut off)",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read JSON ({exc})", where=str(path), fix="check the path") from None
    missing = [k for k in ("images", "annotations", "categories") if not isinstance(data, dict) or k not in data]
    if missing:
        raise DataError(
            f"not a COCO detection file: no {', '.join(missing)}",
            where=str(path),
            fix="pass a COCO instances JSON (images, annotations, categories)",
        )
    return data


def read_coco(
    json_path: str | Path, images_dir: str | Path | None = None, strict: bool = False, max_pixels: int = MAX_PIXELS
) -> BoxDataset:
    """A COCO detection JSON: ``bbox`` [x, y, width, height] in pixels; categories renumbered 0..K-1 in
    category-id order (their names kept); ``iscrowd`` boxes are marked difficult (COCO ignores them when
    scoring). Images are found at ``images_dir/file_name``, or without ``images_dir`` in the first of
    :func:`coco_image_folders` that holds them. Images with no annotation are background images.
    """
    json_path = Path(json_path)
    folders = [Path(images_dir)] if images_dir is not None else coco_image_folders(json_path)
    data = _load_json(json_path)
    log = ProblemLog(strict)
    categories = sorted(data["categories"], key=lambda c: int(c["id"]))
    index = {int(c["id"]): i for i, c in enumerate(categories)}
    names = [str(c.get("name", c["id"])) for c in categories]
    entries = {}
    for entry in data["images"]:
        if not isinstance(entry, dict) or "id" not in entry or not entry.get("file_name"):
            log.report(DataError(f"image entry without id or file_name: {str(entry)[:80]}", where=str(json_path)))
            continue
        entries[entry["id"]] = entry
    objects = {image_id: _Objects() for image_id in entries}
    bad: set[Any] = set()
    for ann in data["annotations"]:
        image_id, ann_id = ann.get("image_id"), ann.get("id", "?")
        if image_id not in entries:
            raise DataError(
                f"annotation id {ann_id} refers to image id {image_id}, which is not in images",
                where=str(json_path),
                fix="add the image entry, or delete the annotation",
            )
        if ann.get("category_id") not in index:
            raise DataError(
                f"annotation id {ann_id} has category_id {ann.get('category_id')}, not in categories",
                where=str(json_path),
                fix="add the category, or fix the annotation's category_id",
            )
        try:
            box = ann.get("bbox")
            if not isinstance(box, list) or len(box) != 4:
                raise DataError(f"bbox must be [x, y, width, height], found {box!r}")
            x, y, w, h = (_number(str(v), "a bbox value") for v in box)
        except DataError as err:
            log.report(
                DataError(
                    f"annotation id {ann_id}: {err.what} (image {entries[image_id]['file_name']} skipped)",
                    where=str(json_path),
                )
            )
            bad.add(image_id)
            continue
        tag = f"annotation id {ann_id} ({names[index[ann['category_id']]]})"
        objects[image_id].add((x, y, x + w, y + h), index[ann["category_id"]], bool(ann.get("iscrowd", 0)), tag)
    records = []
    for image_id, entry in entries.items():
        if image_id in bad:
            continue
        image, tried = _coco_image_path(folders, str(entry["file_name"]))
        if image is None:
            raise _missing_image(f"{json_path} (image id {image_id})", tried)
        size = _image_size(image, log, max_pixels)
        if size is None:
            continue
        stated = (entry.get("height"), entry.get("width"))
        if all(stated) and tuple(stated) != size:
            _note(
                log,
                json_path,
                f"image id {image_id} is {stated[1]}x{stated[0]} in the JSON but {size[1]}x{size[0]} on disk: "
                "the image's size is used",
            )
        records.append(_record(image, size, objects[image_id], json_path, log))
    return BoxDataset(records, names, log.problems)


# ----- any of them --------------------------------------------------------------------------------


def read_boxes(path: str | Path, split: str | None = None, strict: bool = False) -> BoxDataset:
    """Read a detection dataset in any layout of :data:`LAYOUTS`, recognised by looking at ``path``.

    ``split`` picks a YOLO split (default ``train``) or a VOC ``ImageSets/Main`` list (default: every
    image); a COCO JSON file is one split already.
    """
    path = Path(path)
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
        return read_yolo(path, split or "train", strict)
    if path.is_file() and path.suffix.lower() == ".json":
        if split is not None:
            raise ConfigError(
                "a COCO JSON file is one split", where="split", fix="pass the JSON file of that split instead"
            )
        return read_coco(path, strict=strict)
    if path.is_dir():
        if _xml_label_folder(path) is not None:
            return read_voc(path, split, strict=strict)
        if (path / "labels").is_dir() or any((path / n).is_file() for n in ("data.yaml", "dataset.yaml")):
            return read_yolo(path, split or "train", strict)
        if (path / "Annotations").is_dir() or any(path.glob("*.xml")) or any(path.glob("*/Annotations")):
            return read_voc(path, split, strict=strict)
    layouts = "; ".join(f"({i}) {layout}" for i, layout in enumerate(LAYOUTS, start=1))
    raise DataError(
        "not a detection dataset" if path.exists() else "no such file or folder",
        where=str(path),
        fix=f"pass one of: {layouts}",
    )
