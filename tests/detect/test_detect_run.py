"""Detection end to end: the detector learns on synthetic digits; the CLI trains on YOLO, VOC and COCO
layouts, evaluates the run's own validation split, predicts pictures with boxes; bad input stops early."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnlab.cli.app import main
from cnnlab.data.loader import TensorLoader
from cnnlab.data.synthetic_boxes import digit_canvases, sklearn_glyphs, write_synthetic
from cnnlab.models import create_model
from cnnlab.tasks.config import eval_transform
from cnnlab.tasks.detect.anchors import kmeans_anchors
from cnnlab.tasks.detect.loss import assign, yolo_loss
from cnnlab.tasks.detect.trainer import DetectionTrainer
from cnnlab.train.config import TrainConfig


def test_each_box_is_assigned_to_its_cell_and_the_nearest_neighbours_with_fitting_anchors():
    # A box centred at (44, 20) px at stride 8 = cell (5.5, 2.5): x and y sit on cell halves, no neighbour
    # is nearer than the other, so only its own cell; anchors within 4x of its 16x16 size take it.
    targets = torch.tensor([[[2, 36.0, 12.0, 52.0, 28.0]]])
    anchors = torch.tensor([[3.0, 3.0], [16.0, 16.0], [70.0, 70.0]])
    _, anchor, row, col, cls, box = assign(targets, anchors, 8, (8, 8))
    assert anchor.tolist() == [1] and (row.item(), col.item()) == (2, 5) and cls.tolist() == [2]
    assert torch.allclose(box, torch.tensor([[0.5, 0.5, 2.0, 2.0]]))
    # Moved a quarter cell left and up: the left and upper neighbours join (YOLOv5's three cells).
    targets[..., 1:] -= 2.0
    _, _, row, col, _, box = assign(targets, anchors, 8, (8, 8))
    assert sorted(zip(row.tolist(), col.tolist(), strict=True)) == [(1, 5), (2, 4), (2, 5)]
    assert box[:, :2].min() >= -0.5 and box[:, :2].max() <= 1.5  # within the decoder's reach (2 sigmoid - 0.5)


def test_padding_rows_and_empty_images_assign_nothing():
    targets = torch.full((2, 3, 5), -1.0)
    assert all(len(t) == 0 for t in assign(targets, torch.tensor([[8.0, 8.0]]), 8, (4, 4)))


@pytest.mark.slow
def test_loss_falls_and_map_rises_on_synthetic_digits():
    glyphs, labels = sklearn_glyphs()
    glyphs, labels = glyphs[labels < 3], labels[labels < 3]
    train = digit_canvases(glyphs, labels, 160, size=(64, 64), per_image=(1, 2), scale=(1.5, 2.5), channels=3)
    val = digit_canvases(glyphs, labels, 40, size=(64, 64), per_image=(1, 2), scale=(1.5, 2.5), seed=1, channels=3)
    valid = train.targets[..., 0] >= 0
    anchors = kmeans_anchors((train.targets[..., 3:5] - train.targets[..., 1:3])[valid], 6)
    torch.manual_seed(0)
    net = create_model("yolo_tiny", num_classes=3, width=8, anchors=anchors.tolist())
    normalise = eval_transform((0.1,) * 3, (0.25,) * 3)
    config = TrainConfig(epochs=10, batch_size=16, lr=5e-3, schedule="cosine", warmup_fraction=0.05)
    trainer = DetectionTrainer(net, config, class_names=["0", "1", "2"])
    held = TensorLoader(val.images, val.targets, 40, transform=normalise, target_kind="boxes")
    before = trainer.evaluate(held)["map50"]
    history = trainer.fit(TensorLoader(train.images, train.targets, 16, True, 0, normalise, target_kind="boxes"))
    after = trainer.evaluate(held)["map50"]
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]
    assert before < 0.15 and after > 0.25, (before, after)


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("digits")
    glyphs = sklearn_glyphs()
    return {
        kind: write_synthetic(root / kind, kind, train=24, val=8, size=(64, 96), per_image=(1, 3), glyphs=glyphs)
        for kind in ("yolo", "voc", "coco")
    }


@pytest.mark.parametrize("kind", ["yolo", "voc", pytest.param("coco", marks=pytest.mark.slow)])
def test_cli_trains_evaluates_and_predicts_every_layout(digits, kind, tmp_path):
    data = digits[kind]
    runs = tmp_path / "runs"
    args = ["train", "--task", "detect", "--data", str(data), "--model", "yolo_tiny", "--epochs", "1"]
    assert main([*args, "--runs-dir", str(runs), "--batch-size", "8"]) == 0
    (run,) = (runs / "detect").iterdir()
    results = json.loads((run / "results.json").read_text())
    assert 0 <= results["val_map50"] <= 1 and (run / "checkpoints" / "best.pt").is_file()
    for plot in ("pr_curves.png", "detection_confusion.png", "worst_images.png"):
        assert (run / "plots" / plot).stat().st_size > 1000
    log = (run / "log.txt").read_text()
    assert "anchors from k-means" in log and "input 64x96" in log  # chosen from the data, and said
    assert main(["evaluate", str(run)]) == 0
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert set(evaluation["conventions"]) == {"voc_map50", "voc07_map50", "coco_ap"}
    image = next((data.parent.parent if kind == "coco" else data.parent if data.is_file() else data).rglob("*.png"))
    assert main(["predict", str(run), str(image), "--out", str(tmp_path / "pred")]) == 0
    assert (tmp_path / "pred" / f"{image.stem}_boxes.jpg").stat().st_size > 500


def test_bad_dataset_and_classifier_model_stop_before_a_run_folder(tmp_path, digits, capsys):
    runs = tmp_path / "runs"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--task", "detect", "--data", str(empty), "--runs-dir", str(runs)]) == 2
    args = ["train", "--task", "detect", "--data", str(digits["yolo"]), "--model", "resnet18"]
    assert main([*args, "--runs-dir", str(runs)]) == 2
    unlabelled = tmp_path / "unlabelled"  # images/ and an empty labels/: no boxes anywhere
    for name in ("a.png", "b.png"):
        (unlabelled / "images").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32)).save(unlabelled / "images" / name)
    (unlabelled / "labels").mkdir()
    assert main(["train", "--task", "detect", "--data", str(unlabelled), "--runs-dir", str(runs)]) == 2
    assert "none of the 2 training images has a box" in " ".join(capsys.readouterr().err.split())
    assert not runs.exists()


@pytest.fixture(scope="module")
def tiny_run(digits, tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    args = ["train", "--task", "detect", "--data", str(digits["yolo"]), "--model", "yolo_tiny", "--epochs", "1"]
    assert main([*args, "--runs-dir", str(runs), "--batch-size", "8"]) == 0
    return next((runs / "detect").iterdir())


def test_server_answers_detect_with_boxes_and_a_picture(tiny_run, digits):
    from fastapi.testclient import TestClient

    from cnnlab.serve import create_app, load_served

    served = load_served(tiny_run)
    client = TestClient(create_app(served))
    assert client.get("/model").json()["endpoints"] == {
        "predict": False,
        "explain": False,
        "segment": False,
        "detect": True,
        "verify": False,
        "embed": False,
    }
    image = next(digits["yolo"].parent.rglob("*.png")).read_bytes()
    found = client.post("/detect?score=0", files={"file": ("x.png", image, "image/png")}).json()
    assert len(found["boxes"]) == len(found["labels"]) == len(found["scores"]) > 0
    assert all(0 <= x1 < x2 <= 96 and 0 <= y1 < y2 <= 64 for x1, y1, x2, y2 in found["boxes"])  # 64x96 canvases
    picture = client.post("/detect?view=picture", files={"file": ("x.png", image, "image/png")})
    assert picture.headers["content-type"] == "image/png" and int(picture.headers["X-Detections"]) >= 0
    assert client.post("/predict", files={"file": ("x.png", image, "image/png")}).status_code == 404


def test_export_writes_a_verified_onnx_graph_ending_in_decoded_boxes(tiny_run, tmp_path):
    pytest.importorskip("onnxruntime")
    assert main(["export", str(tiny_run), "--out", str(tmp_path)]) == 0
    card = json.loads((tmp_path / "model.onnx.json").read_text())
    assert card["task"] == "detect" and card["verification"]["passed"]
    assert card["verification"]["top1_agreement"] is None  # boxes, not class scores


@pytest.mark.parametrize("name", ["yolo_tiny", "yolo_lite0", "yolo"])
def test_every_detector_parameter_after_the_backbone_stem_gets_a_gradient(name, one_thread):
    torch.manual_seed(0)
    net = create_model(name, num_classes=2, in_chans=1, width=8)
    outputs = net(torch.randn(2, 1, 64, 96))
    assert [tuple(o.shape[2:4]) for o in outputs] == [(8, 12), (4, 6), (2, 3)]  # strides 8, 16, 32
    loss, _ = yolo_loss(outputs, torch.tensor([[[1, 8.0, 8, 40, 30]]] * 2), net.anchors, net.strides, 96)
    loss.backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert all(n.startswith("backbone.") for n in missing), missing  # backbone layers past the last tap only
    assert not any(n.startswith("backbone._fc") or n.startswith("backbone.fc") for n, _ in net.named_parameters())
