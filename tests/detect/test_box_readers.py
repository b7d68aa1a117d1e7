"""Box datasets: VOC / YOLO / COCO readers against hand-written files, pycocotools and BCCD's own CSV; the
three writers round-trip; validation names the file and the object or line; to_tensors moves boxes with
the pixels."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.data.box_writers import write_coco, write_voc, write_yolo
from cnnlab.data.boxes import BoxDataset, BoxRecord, read_boxes, read_coco, read_voc, read_yolo, yolo_label_path
from cnnlab.data.cache import DataWarning


def _from_yolo(rows: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Reference: normalised (cx, cy, w, h) -> pixel corners, written out here (YOLO's definition)."""
    cx, cy, w, h = rows.unbind(-1)
    return torch.stack([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height], -1)


def _from_xywh(boxes: torch.Tensor) -> torch.Tensor:
    """Reference: COCO's [x, y, width, height] -> corners."""
    return torch.cat([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1)


def _image(path: Path, width: int, height: int, rects: list[tuple[int, int, int, int]] = ()) -> Path:
    """A black image with white filled rectangles (x1, y1, x2, y2: pixel columns x1..x2-1)."""
    pixels = np.zeros((height, width, 3), np.uint8)
    for x1, y1, x2, y2 in rects:
        pixels[y1:y2, x1:x2] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _voc_xml(objects: list[tuple[str, tuple[float, ...], int]], size: tuple[int, int] | None = None) -> str:
    """VOC XML written by hand: (name, (xmin, ymin, xmax, ymax), difficult) per object; size = (w, h)."""
    head = f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>" if size else ""
    body = "".join(
        f"<object><name>{name}</name><difficult>{hard}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for name, b, hard in objects
    )
    return f"<annotation><filename>x.jpg</filename>{head}{body}</annotation>"


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    root = tmp_path / "voc"
    _image(root / "JPEGImages" / "b.png", 50, 40)
    _image(root / "JPEGImages" / "a.png", 60, 30)
    _image(root / "JPEGImages" / "empty.png", 20, 20)
    (root / "Annotations").mkdir()
    (root / "Annotations" / "a.xml").write_text(
        _voc_xml([("dog", (1, 2, 11.5, 22), 0), ("cat", (30, 5, 59, 29), 1)], (60, 30))
    )
    (root / "Annotations" / "b.xml").write_text(_voc_xml([("cat", (0, 0, 50, 40), 0)]))
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text("b\na\n")
    return root


def test_voc_reads_corners_as_given_difficult_background_and_splits(voc: Path) -> None:
    data = read_voc(voc)
    assert data.class_names == ["cat", "dog"]  # sorted names found
    assert data.ids == ["a", "b", "empty"]
    a, b, empty = data.records
    assert a.boxes.tolist() == [[1.0, 2.0, 11.5, 22.0], [30.0, 5.0, 59.0, 29.0]]  # no -1 shift
    assert a.labels.tolist() == [1, 0] and a.difficult.tolist() == [False, True]
    assert (a.height, a.width, b.height, b.width) == (30, 60, 40, 50)  # sizes from the image headers
    assert len(empty.boxes) == 0 and empty.boxes.dtype == torch.float32 and empty.labels.dtype == torch.int64
    assert data.summary().startswith("3 images (1 without boxes), 3 boxes (cat 2, dog 1), 0-2 per image")
    assert read_voc(voc, split="train").ids == ["b", "a"]  # the split file's order
    with pytest.raises(DataError, match=r"no split 'val'.*use one of train"):
        read_voc(voc, split="val")


def test_voc_classes_fix_the_order_and_an_unknown_name_names_file_and_object(voc: Path) -> None:
    assert read_voc(voc, classes=["dog", "cat", "bird"]).records[0].labels.tolist() == [0, 1]
    with pytest.raises(DataError, match=r"object 1 has class 'dog', not in the classes.*a\.xml"):
        read_voc(voc, classes=["cat"])


def test_malformed_annotations_skip_the_image_or_fail_when_strict(voc: Path) -> None:
    (voc / "Annotations" / "b.xml").write_text("<annotation><object><name>cat</name>")  # cut off
    (voc / "Annotations" / "a.xml").write_text(_voc_xml([("cat", (1, 2, "ten", 4), 0)]))
    with pytest.warns(DataWarning) as caught:
        data = read_voc(voc)
    assert "malformed XML" in str(caught[1].message) and len(caught) == 2
    assert data.ids == ["empty"]
    assert [Path(p.path).name for p in data.problems] == ["a.xml", "b.xml"]
    assert "object 1 <xmax> is not a number: 'ten'" in data.problems[0].message
    with pytest.raises(DataError, match=r"object 1 <xmax> is not a number.*a\.xml"):
        read_voc(voc, strict=True)


def test_boxes_outside_the_image_are_clipped_or_dropped_with_a_recorded_warning(tmp_path: Path) -> None:
    _image(tmp_path / "img.png", 100, 80)
    objects = [
        ("a", (10, 10, 101.5, 50), 0),  # 1.5 px past the right edge: a slip, clipped
        ("a", (-30, 10, 40, 50), 0),  # 30 px past the left edge: clipped, coordinates suspect
        ("a", (120, 10, 140, 50), 0),  # entirely outside: dropped
        ("a", (20, 20, 20, 30), 0),  # zero width: dropped
        ("a", (50, 60, 40, 70), 0),  # reversed corners: dropped
        ("a", (0, 0, 100, 80.004), 0),  # float rounding: clipped without a word
    ]
    (tmp_path / "img.xml").write_text(_voc_xml(objects, size=(200, 160)))  # <size> is wrong: the image wins
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = read_voc(tmp_path, strict=True)  # warnings, not errors: the image is kept
    assert data.records[0].boxes.tolist() == [[10, 10, 100, 50], [0, 10, 40, 50], [0, 0, 100, 80]]
    messages = [p.message for p in data.problems]
    assert all(p.path.endswith("img.xml") for p in data.problems) and len(caught) == len(messages) == 6
    assert messages[0] == "<size> says 200x160 but the image is 100x80: the image's size is used"
    assert "object 2 (a) [-30, 10, 40, 50] reaches 30 px outside the 100x80 image: clipped" in messages[1]
    assert "object 3 (a) [120, 10, 140, 50] lies entirely outside the 100x80 image: dropped" in messages[2]
    assert "object 4 (a) has zero or negative area" in messages[3]
    assert "object 5 (a) has zero or negative area" in messages[4]
    assert messages[5] == "1 box(es) overhang the 100x80 image by up to 1.5 px: clipped"


def test_an_annotation_without_its_image_is_an_error_naming_both(voc: Path, tmp_path: Path) -> None:
    (voc / "JPEGImages" / "a.png").unlink()
    with pytest.raises(DataError, match=r"annotation without its image \(looked for .*a\.jpg.*\) \[.*a\.xml\]"):
        read_voc(voc)
    yolo = tmp_path / "yolo"
    _image(yolo / "images" / "one.png", 10, 10)
    (yolo / "labels").mkdir()
    (yolo / "labels" / "one.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (yolo / "labels" / "two.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(DataError, match=r"annotation without its image \(looked for .*two\.jpg\) \[.*two\.txt\]"):
        read_yolo(yolo)
    coco = {"images": [{"id": 1, "file_name": "gone.png"}], "annotations": [], "categories": []}
    (tmp_path / "c.json").write_text(json.dumps(coco))
    with pytest.raises(DataError, match=r"looked for .*gone\.png.*\[.*c\.json \(image id 1\)\]"):
        read_coco(tmp_path / "c.json")


def _yolo_folder(root: Path) -> dict[str, tuple[tuple[int, int], list[list[float]]]]:
    """A YOLO folder with split sub-folders; returns {image name: ((height, width), label rows)}."""
    rows = {"p.png": ((40, 80), [[1, 0.5, 0.5, 0.25, 0.5], [0, 0.1, 0.2, 0.1, 0.2]]), "q.png": ((30, 30), [])}
    for name, ((height, width), lines) in rows.items():
        _image(root / "images" / "train" / name, width, height)
        if lines:
            text = "".join(" ".join(f"{v:g}" for v in line) + "\n" for line in lines)
            (root / "labels" / "train").mkdir(parents=True, exist_ok=True)
            (root / "labels" / "train" / name.replace(".png", ".txt")).write_text(text)
    _image(root / "images" / "val" / "r.png", 16, 16)
    return rows


@pytest.mark.parametrize("names", [["cat", "dog"], {0: "cat", 1: "dog"}])
def test_yolo_yaml_labels_match_an_independent_conversion(tmp_path: Path, names: object) -> None:
    rows = _yolo_folder(tmp_path / "set")
    (tmp_path / "set" / "data.yaml").write_text(json.dumps({"path": ".", "train": "images/train", "names": names}))
    data = read_boxes(tmp_path / "set" / "data.yaml")
    assert data.class_names == ["cat", "dog"] and data.ids == ["p", "q"]
    for record in data.records:
        size, lines = rows[Path(record.path).name]
        expected = torch.tensor(lines).reshape(-1, 5)
        assert record.labels.tolist() == expected[:, 0].long().tolist()
        torch.testing.assert_close(record.boxes, _from_yolo(expected[:, 1:], *size))
    assert len(data.records[1].boxes) == 0  # no label file: a background image
    with pytest.raises(DataError, match=r"no 'val' split in data\.yaml.*use one of train"):
        read_yolo(tmp_path / "set" / "data.yaml", split="val")


def test_yolo_folder_with_split_folders_and_a_list_file(tmp_path: Path) -> None:
    _yolo_folder(tmp_path / "set")
    assert read_yolo(tmp_path / "set", split="val").ids == ["r"]
    assert read_yolo(tmp_path / "set").class_names == ["0", "1"]  # no names: "0".. up to the largest id
    (tmp_path / "set" / "list.txt").write_text("images/train/q.png\nimages/val/r.png\n")
    (tmp_path / "set" / "data.yaml").write_text("train: list.txt\nnames: [cat, dog]\n")
    assert read_boxes(tmp_path / "set").ids == ["q", "r"]
    assert yolo_label_path(Path("/d/images/x/images/a.jpg")).as_posix() == "/d/images/x/labels/a.txt"


def test_yolo_bad_lines_name_file_and_line(tmp_path: Path) -> None:
    _yolo_folder(tmp_path / "set")
    label_file = tmp_path / "set" / "labels" / "train" / "p.txt"
    label_file.write_text("1 0.5 0.5 0.2 0.2\n\n0 0.5 0.5 0.2\n")
    with pytest.warns(DataWarning, match=r"line 3: expected 'class cx cy w h' \(5 values\), found 4"):
        data = read_yolo(tmp_path / "set")
    assert data.ids == ["q"] and data.problems[0].path == str(label_file)
    label_file.write_text("0 0.5 0.5 0.2 0.2\n2 0.5 0.5 0.2 0.2\n")
    (tmp_path / "set" / "data.yaml").write_text("train: images/train\nnames: [cat, dog]\n")
    with pytest.raises(DataError, match=r"line 2: class id 2 is out of range 0\.\.1.*p\.txt"):
        read_yolo(tmp_path / "set")


def _coco_file(tmp_path: Path) -> Path:
    _image(tmp_path / "images" / "u.png", 64, 48)
    _image(tmp_path / "images" / "v.png", 32, 32)
    _image(tmp_path / "images" / "w.png", 20, 10)
    coco = {
        "images": [
            {"id": 10, "file_name": "u.png", "width": 64, "height": 48},
            {"id": 11, "file_name": "v.png", "width": 32, "height": 32},
            {"id": 12, "file_name": "w.png", "width": 20, "height": 10},
        ],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 7, "bbox": [1.5, 2, 10, 20], "area": 200, "iscrowd": 0},
            {"id": 2, "image_id": 10, "category_id": 3, "bbox": [30, 5, 20, 30], "area": 600, "iscrowd": 1},
            {"id": 3, "image_id": 11, "category_id": 9, "bbox": [0, 0, 32, 32], "area": 1024, "iscrowd": 0},
        ],
        "categories": [{"id": 9, "name": "z"}, {"id": 3, "name": "x"}, {"id": 7, "name": "y"}],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(coco))
    return path


def test_coco_boxes_and_categories_match_pycocotools(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    path = _coco_file(tmp_path)
    data = read_coco(path)
    reference = COCO(str(path))
    category_ids = sorted(reference.getCatIds())
    assert data.class_names == [reference.loadCats(i)[0]["name"] for i in category_ids] == ["x", "y", "z"]
    for record, image_id in zip(data.records, sorted(reference.getImgIds()), strict=True):
        annotations = reference.loadAnns(reference.getAnnIds(imgIds=image_id))
        expected = torch.tensor([a["bbox"] for a in annotations], dtype=torch.float32).reshape(-1, 4)
        torch.testing.assert_close(record.boxes, _from_xywh(expected))
        assert record.labels.tolist() == [category_ids.index(a["category_id"]) for a in annotations]
        assert record.difficult.tolist() == [bool(a["iscrowd"]) for a in annotations]
    assert len(data.records[2].boxes) == 0  # an image without annotations: background


def test_coco_errors_name_the_json_and_the_annotation(tmp_path: Path) -> None:
    path = _coco_file(tmp_path)
    text = path.read_text()
    path.write_text(text[:-40])
    with pytest.raises(DataError, match=r"malformed JSON: .* at line 1, column \d+ \[.*instances\.json\]"):
        read_coco(path)
    coco = json.loads(text)
    coco["annotations"][1]["category_id"] = 4
    path.write_text(json.dumps(coco))
    with pytest.raises(DataError, match="annotation id 2 has category_id 4, not in categories"):
        read_coco(path)
    coco["annotations"][1].update(category_id=3, bbox=[1, 2, 3])
    path.write_text(json.dumps(coco))
    with pytest.warns(DataWarning, match=r"annotation id 2: bbox must be \[x, y, width, height\].*u\.png skipped"):
        assert read_coco(path).ids == ["v", "w"]


def test_read_boxes_lists_the_layouts_it_knows(tmp_path: Path) -> None:
    _image(tmp_path / "just" / "a.png", 8, 8)
    with pytest.raises(DataError, match=r"not a detection dataset.*\(1\) a data.yaml.*\(5\) a flat folder"):
        read_boxes(tmp_path / "just")
    with pytest.raises(ConfigError, match="a COCO JSON file is one split"):
        read_boxes(_coco_file(tmp_path), split="val")


@pytest.mark.parametrize("labels", ["labels", "annotations", "Annotations"])
def test_images_beside_a_folder_of_voc_xml_read_as_voc(tmp_path: Path, labels: str) -> None:
    """What annotation tools export: images/ and labels/ (or annotations/) of .xml, not YOLO .txt."""
    _image(tmp_path / "images" / "a.png", 60, 30)
    _image(tmp_path / "images" / "b.png", 50, 40)
    (tmp_path / labels).mkdir()
    (tmp_path / labels / "a.xml").write_text(_voc_xml([("cell", (5, 6, 20, 25), 0), ("dot", (30, 2, 40, 12), 0)]))
    data = read_boxes(tmp_path)
    assert data.class_names == ["cell", "dot"] and [len(r.boxes) for r in data.records] == [2, 0]
    assert data.records[0].boxes.tolist() == [[5, 6, 20, 25], [30, 2, 40, 12]]


def _mixed_dataset(tmp_path: Path) -> BoxDataset:
    """Three images of different sizes: fractional corners, a difficult box, two classes, a background image."""
    records = [
        BoxRecord(str(_image(tmp_path / "src" / "one.png", 64, 48)), 48, 64, [[1.25, 2.5, 30, 40.75]], [1]),
        BoxRecord(
            str(_image(tmp_path / "src" / "two.jpg", 37, 53)),
            53,
            37,
            [[0, 0, 37, 53], [10.5, 11, 20, 12]],
            [0, 1],
            [False, True],
        ),
        BoxRecord(str(_image(tmp_path / "src" / "three.png", 16, 16)), 16, 16, [], []),
    ]
    return BoxDataset(records, ["cat", "dog"])


def _assert_same_boxes(read: BoxDataset, original: BoxDataset, atol: float, difficult: bool = True) -> None:
    assert read.class_names == original.class_names
    by_id = {r.id: r for r in read.records}
    assert sorted(by_id) == sorted(original.ids)
    for record in original.records:
        other = by_id[record.id]
        assert (other.height, other.width) == (record.height, record.width)
        torch.testing.assert_close(other.boxes, record.boxes, atol=atol, rtol=0)
        assert other.labels.tolist() == record.labels.tolist()
        if difficult:
            assert other.difficult.tolist() == record.difficult.tolist()


def test_three_formats_give_back_the_same_boxes(tmp_path: Path) -> None:
    original = _mixed_dataset(tmp_path)
    voc = read_boxes(write_voc(original, tmp_path / "voc"))
    yolo = read_boxes(write_yolo(original, tmp_path / "yolo"))
    coco = read_boxes(write_coco(original, tmp_path / "coco" / "instances.json", tmp_path / "coco" / "images"))
    _assert_same_boxes(voc, original, atol=1e-4)
    _assert_same_boxes(coco, original, atol=1e-4)
    # YOLO keeps 6 decimals of the side: 0.5e-6 x (cx and w/2) x 64 px < 1e-4 px; no difficult flag in YOLO.
    _assert_same_boxes(yolo, original, atol=1e-4, difficult=False)
    assert not voc.problems and not yolo.problems and not coco.problems
    assert (tmp_path / "yolo" / "labels" / "three.txt").read_text() == ""  # a background image: empty file
    assert (tmp_path / "voc" / "JPEGImages" / "two.jpg").read_bytes() == Path(original.records[1].path).read_bytes()


def test_written_coco_is_read_the_same_by_pycocotools(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    original = _mixed_dataset(tmp_path)
    path = write_coco(original, tmp_path / "out" / "instances.json")  # no images_dir: paths relative to the JSON
    reference = COCO(str(path))
    for image_id, record in zip(sorted(reference.getImgIds()), original.records, strict=True):
        annotations = reference.loadAnns(reference.getAnnIds(imgIds=image_id))
        boxes = torch.tensor([a["bbox"] for a in annotations], dtype=torch.float32).reshape(-1, 4)
        torch.testing.assert_close(_from_xywh(boxes), record.boxes)
        assert [reference.loadCats(a["category_id"])[0]["name"] for a in annotations] == [
            original.class_names[i] for i in record.labels.tolist()
        ]
    _assert_same_boxes(read_coco(path), original, atol=1e-4)


def test_splits_write_and_read_back(tmp_path: Path) -> None:
    original = _mixed_dataset(tmp_path)
    train, val = original.select(["one", "three"]), original.select(["two"])
    yaml_path = write_yolo({"train": train, "val": val}, tmp_path / "yolo")
    assert read_yolo(yaml_path, "val").ids == ["two"] and read_yolo(yaml_path, "train").ids == ["one", "three"]
    voc = write_voc({"train": train, "val": val}, tmp_path / "voc")
    assert read_voc(voc, split="val").ids == ["two"] and read_voc(voc).ids == ["one", "three", "two"]


def test_writers_refuse_a_full_folder_and_leave_nothing_half_written(tmp_path: Path) -> None:
    original = _mixed_dataset(tmp_path)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="already exists and is not empty"):
        write_yolo(original, tmp_path / "full")
    Path(original.records[2].path).unlink()  # the last image goes missing: found only after two were written
    for writer, target in ((write_voc, "voc"), (write_yolo, "yolo")):
        with pytest.raises(DataError, match=r"image file not found while writing \[.*three\.png\]"):
            writer(original, tmp_path / target)
        assert not (tmp_path / target).exists()
    with pytest.raises(DataError, match="image file not found"):
        write_coco(original, tmp_path / "c" / "a.json", tmp_path / "c" / "images")
    assert not (tmp_path / "c" / "a.json").exists() and not (tmp_path / "c" / "images").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "full", "src"]  # no staging folders left
    assert not list((tmp_path / "c").iterdir())


def _ink_box(image: torch.Tensor) -> list[float]:
    """Bounding box (continuous xyxy) of the bright pixels of a (C, H, W) uint8 image."""
    rows, cols = torch.nonzero(image[0] > 127, as_tuple=True)
    return [float(cols.min()), float(rows.min()), float(cols.max()) + 1, float(rows.max()) + 1]


@pytest.mark.parametrize("fit", ["stretch", "pad"])
def test_to_tensors_moves_the_boxes_with_the_pixels(tmp_path: Path, fit: str) -> None:
    rects = {"wide": (90, 40, (10, 6, 50, 30)), "tall": (30, 70, (4, 20, 26, 62)), "square": (50, 50, (0, 0, 20, 50))}
    records = []
    for name, (width, height, rect) in rects.items():
        path = _image(tmp_path / f"{name}.png", width, height, [rect])
        records.append(BoxRecord(str(path), height, width, [rect], [0]))
    images, targets = BoxDataset(records, ["box"]).to_tensors(size=(32, 48), fit=fit)
    assert images.shape == (3, 3, 32, 48) and images.dtype == torch.uint8
    assert targets.shape == (3, 1, 5) and targets.dtype == torch.float32
    for image, target in zip(images, targets, strict=True):
        np.testing.assert_allclose(target[0, 1:].tolist(), _ink_box(image), atol=1.0)


def test_to_tensors_pads_with_class_minus_one_and_leaves_difficult_boxes_out(tmp_path: Path) -> None:
    original = _mixed_dataset(tmp_path)
    targets = original.to_tensors(size=24)[1]
    assert targets.shape == (3, 1, 5)  # two's second box is difficult: left out
    assert targets[:, 0, 0].tolist() == [1.0, 0.0, -1.0]
    assert original.to_tensors(size=24, keep_difficult=True)[1].shape == (3, 2, 5)
    with pytest.raises(ConfigError, match="fit must be 'stretch' or 'pad'"):
        original.to_tensors(size=24, fit="crop")  # type: ignore[arg-type]


def test_split_and_select(tmp_path: Path) -> None:
    data = BoxDataset([BoxRecord(f"{i}.png", 8, 8, [], []) for i in range(20)], ["a"])
    rest, held = data.split(0.25, seed=3)
    assert len(held) == 5 and sorted(rest.ids + held.ids, key=int) == data.ids
    assert data.split(0.25, seed=3)[1].ids == held.ids != data.split(0.25, seed=4)[1].ids
    assert data.select(["3", 0, -1]).ids == ["3", "0", "19"]
    with pytest.raises(DataError, match=r"2 image id.* not in the dataset: x, 20"):
        data.select(["x", 20])
    with pytest.raises(DataError, match="leaves the held-out set empty"):
        data.split(0.01)


@pytest.mark.data
def test_bccd_matches_its_own_csv_and_split_files(shared_data: Path) -> None:
    root = shared_data / "bccd"
    with pytest.warns(DataWarning, match="zero or negative area"):
        data = read_boxes(root)  # the folder around BCCD/ is found too
    assert len(data) == 364 and data.class_names == ["Platelets", "RBC", "WBC"]
    assert data.box_counts() == {"Platelets": 361, "RBC": 4155 - 2, "WBC": 372}
    assert sorted(Path(p.path).name for p in data.problems) == ["BloodImage_00338.xml", "BloodImage_00343.xml"]
    expected: dict[str, list[list[float]]] = {}
    with (root / "test.csv").open() as handle:  # filename, cell_type, xmin, xmax, ymin, ymax
        for row in csv.DictReader(handle):
            box = [float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")]
            if box[2] > box[0] and box[3] > box[1]:
                label = float(data.class_names.index(row["cell_type"]))
                expected.setdefault(Path(row["filename"]).stem, []).append([label, *box])
    for record in data.records:
        got = torch.cat([record.labels[:, None].float(), record.boxes], 1).tolist()
        assert sorted(got) == sorted(expected[record.id]), record.id
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # the two zero-area boxes again, checked above
        sizes = {s: len(read_voc(root / "BCCD", split=s)) for s in ("train", "val", "trainval", "test")}
    assert sizes == {"train": 205, "val": 87, "trainval": 292, "test": 72}
