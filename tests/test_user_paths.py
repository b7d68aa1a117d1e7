"""The user-path matrix: what a newcomer types, on folders of images nobody prepared for the model.

Generated from the registries: every classification model of the zoo is trained through ``cnnlab train``
on a tiny folder (1 epoch), then ``evaluate``, ``predict`` and ``export`` run on its run folder, at the
input sizes a course user feeds it (28x28 grey, 32x32 colour, 64x64, a non-square size, 224 for the
ImageNet nets). Segmentation runs at 64, 96, 200x150 and 512 pixels; two processes train a 40-image folder.
The full CLI matrix is marked ``matrix`` (``make test-matrix``); the model-level matrix (every model
x size, forward + backward, on every CI pass) is tests/models/test_input_sizes.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli.app import main
from cnnlab.models import list_models, model_entry

SIZES = {"grey28": (1, 28, 28), "rgb32": (3, 32, 32), "rgb64": (3, 64, 64), "rgb40x56": (3, 40, 56)}
# Run on every CI pass (about 6 s a chain on 2 cores): the textbook nets at every size, one of each other
# family at one size. The whole matrix (every model x size, about 130 chains and 25 minutes) is marked
# `matrix`: `make test-matrix` runs it.
EVERY_PASS = {
    *((name, size) for name in ("cnn_small", "lenet5") for size in SIZES),
    ("resnet20", "rgb32"),
    ("resnet9_w16", "grey28"),
    ("fashion_cnn", "rgb40x56"),
    ("nin", "rgb64"),
    ("mobilenet_v2", "rgb32"),
}


def _cases() -> list:
    cases = []
    for name in list_models("classify"):
        imagenet = model_entry(name).default_input[-1] >= 224
        sizes = [*SIZES, "rgb224"] if imagenet else list(SIZES)
        for size in sizes:
            marks = () if (name, size) in EVERY_PASS else pytest.mark.matrix
            cases.append(pytest.param(name, size, id=f"{name}-{size}", marks=marks))
    return cases


def write_folder(root: Path, channels: int, height: int, width: int, per_class: int = 6, classes: int = 2) -> Path:
    """Class folders of PNG and JPEG images: class k has a bright bar at height k (learnable in one epoch)."""
    rng = np.random.default_rng(0)
    for k in range(classes):
        folder = root / f"class_{k}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (height, width, channels)).astype(np.uint8)
            top = (k + 1) * height // (classes + 2)
            pixels[top : top + max(2, height // 8)] = 230
            image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
            image.save(folder / (f"{i}.png" if i % 2 else f"{i}.jpg"), quality=95)
    return root


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("user-paths")
    sizes = {**SIZES, "rgb224": (3, 224, 224)}
    return {key: write_folder(root / key, *shape) for key, shape in sizes.items()}


@pytest.mark.parametrize(("model", "size"), _cases())
def test_train_evaluate_predict_export(model, size, folders, tmp_path, capsys, one_thread):
    data = folders[size]
    runs = tmp_path / "runs"
    code = main(
        [
            "train", "--data", str(data), "--model", model, "--epochs", "1", "--batch-size", "4",
            "--val-fraction", "0.34", "--runs-dir", str(runs), "--precision", "fp32",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    run = next((runs / "classify").iterdir())
    results = json.loads((run / "results.json").read_text())
    assert 0 <= results["held_out_acc"] <= 1 and results["held_out_images"] == 4
    assert main(["evaluate", str(run), "--precision", "fp32", "--compile", "off", "--json"]) == 0
    image = next((data / "class_1").glob("*.png"))
    capsys.readouterr()
    assert main(["predict", str(run), str(image), "--json", "--precision", "fp32", "--compile", "off"]) == 0
    top = json.loads(capsys.readouterr().out)[0]["top"]
    assert {row["label"] for row in top} == {"class_0", "class_1"}
    assert main(["export", str(run), "--out", str(tmp_path / "export")]) == 0
    card = json.loads((tmp_path / "export" / "model.onnx.json").read_text())
    assert card["verification"]["top1_agreement"] == 1.0
    shutil.rmtree(tmp_path)  # the whole matrix would keep ~80 GB of checkpoints and ONNX files otherwise


@pytest.mark.parametrize(
    "shape",
    [
        (64, 64),
        (96, 96),
        pytest.param((150, 200), marks=pytest.mark.slow),
        pytest.param((512, 512), marks=pytest.mark.slow),
    ],
    ids=lambda s: f"{s[0]}x{s[1]}",
)
def test_segmentation_at_any_size(shape, tmp_path, capsys, one_thread):
    """The default patch is chosen from the image size (round 1 refused 96-pixel images: crop 256)."""
    height, width = shape
    rng = np.random.default_rng(1)
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    for i in range(4):
        mask = np.zeros((height, width), np.uint8)
        top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
        mask[top : top + height // 3, left : left + width // 3] = 255
        image = np.clip(rng.normal(90, 20, (height, width)) + (mask > 0) * 100, 0, 255).astype(np.uint8)
        Image.fromarray(image).save(tmp_path / "images" / f"{i}.png")
        Image.fromarray(mask).save(tmp_path / "masks" / f"{i}.png")
    code = main(
        [
            "train", "--task", "segment", "--data", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"),
            "--epochs", "1", "--runs-dir", str(tmp_path / "runs"), "--val-fraction", "0.25", "--precision", "fp32",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    run = next((tmp_path / "runs" / "segment").iterdir())
    log = (run / "train.log").read_text() if (run / "train.log").is_file() else ""
    assert "patch size" in log or "patch" in capsys.readouterr().out
    assert main(["predict", str(run), str(tmp_path / "images" / "0.png"), "--out", str(tmp_path / "pred")]) == 0
    assert Image.open(tmp_path / "pred" / "0_mask.png").size == (width, height)


def test_two_processes_train_a_40_image_folder(tmp_path, capsys):
    """--nproc 2 on little data: few steps per process (round 1: ZeroDivisionError in the one-cycle schedule)."""
    data = write_folder(tmp_path / "data", 3, 32, 32, per_class=20)
    code = main(
        [
            "train", "--data", str(data), "--model", "cnn_small", "--epochs", "1", "--nproc", "2",
            "--runs-dir", str(tmp_path / "runs"), "--precision", "fp32",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    run = next((tmp_path / "runs" / "classify").iterdir())
    assert (run / "checkpoints" / "best.pt").is_file() and (run / "results.json").is_file()
