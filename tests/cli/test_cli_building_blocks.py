"""cnnlab summary / conv-calc / kernels as a user runs them: textbook numbers, saved files, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.signal import correlate2d

from cnnlab.cli.app import main
from cnnlab.models import create_model


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_conv_calc_textbook_walk_to_1960(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "conv-calc", "--input", "39x39x3",
        "--layer", "conv:f=3,s=1,p=0,c=10", "--layer", "conv:f=5,s=2,c=20", "--layer", "conv:f=5,s=2,c=40",
    )  # fmt: skip
    assert code == 0
    assert "floor((39 + 2*0 - 3) / 1) + 1 = 37" in out and "-> 37x37x10" in out
    assert "floor((37 + 2*0 - 5) / 2) + 1 = 17" in out and "-> 17x17x20" in out
    assert "floor((17 + 2*0 - 5) / 2) + 1 = 7" in out and "-> 7x7x40" in out
    assert "flatten: 7*7*40 = 1,960" in out
    assert "params 10*(3*3*3 + 1) = 280" in out


def test_conv_calc_lenet5_like_and_bottleneck(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "conv-calc", "--input", "32x32x3", "--layer", "conv:f=5,c=6", "--layer", "maxpool:f=2",
        "--layer", "conv:f=5,c=16", "--layer", "pool:f=2,type=avg", "--layer", "fc:n=120", "--layer", "fc:n=84",
        "--layer", "fc:n=10",
    )  # fmt: skip
    assert code == 0
    for shape in ("-> 28x28x6", "-> 14x14x6", "-> 10x10x16", "-> 5x5x16", "flatten: 5*5*16 = 400", "-> 120", "-> 84"):
        assert shape in out
    assert "total: 62,006 parameters" in out
    code, out, _ = run(capsys, "conv-calc", "--input", "28x28x192", "--layer", "conv:f=5,c=32,p=same")
    assert "28*28*32*5*5*192 = 120,422,400" in out
    code, out, _ = run(
        capsys, "conv-calc", "--input", "28x28x192", "--layer", "conv:f=1,c=16", "--layer", "conv:f=5,c=32,p=same"
    )
    assert "12,443,648 mult-adds (12.4M)" in out


def test_conv_calc_same_padding_dilation_and_asymmetric_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "conv-calc", "--input", "28x20x1", "--layer", "conv:f=3,d=2,s=2,p=same,c=4")
    assert code == 0
    assert "H: floor((28 + 1 + 2 - 5) / 2) + 1 = 14   (f' = 3 + (3 - 1)(2 - 1) = 5)" in out
    assert "W: floor((20 + 1 + 2 - 5) / 2) + 1 = 10" in out
    conv = torch.nn.Conv2d(1, 4, 3, stride=2, dilation=2)
    real = conv(torch.nn.functional.pad(torch.zeros(1, 1, 28, 20), (1, 2, 1, 2))).shape
    assert tuple(real[2:]) == (14, 10)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "10x10x1", "--layer", "conv:f=11,c=2"],
         "kernel extent 11 (kernel_size=11, dilation=1) is larger than the padded input 10"),
        (["--input", "8x8x1", "--layer", "conv:f=0,c=2"],
         "kernel_size must be a positive integer. Received: kernel_size=0"),
        (["--input", "8x8x1", "--layer", "conv:k=3,c=2"], "bad option 'k=3' for conv"),
        (["--input", "8", "--layer", "conv:f=3,c=2"], "--input needs HxWxC"),
        (["--input", "8x8x1", "--layer", "cnv:f=3"], "unknown layer kind 'cnv'"),
        (["--input", "8x8x1", "--layer", "fc:n=3", "--layer", "conv:f=1,c=1"], "conv after flatten/fc"),
    ],
)  # fmt: skip
def test_conv_calc_bad_input_is_one_line(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, _, err = run(capsys, "conv-calc", *args)
    assert code == 2
    assert message in err and err.strip().count("\n") == 0 and "Traceback" not in err


def test_summary_of_a_registered_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "summary", "cnn_small", "--input", "3x32x32", "--num-classes", "5", "--format", "json")
    assert code == 0
    data = json.loads(out)
    model = create_model("cnn_small", in_chans=3, num_classes=5)
    assert data["totals"]["params"] == sum(p.numel() for p in model.parameters())
    assert data["layers"][0]["output_shapes"] == [[1, 5]]
    code, out, _ = run(capsys, "summary", "cnn_small")  # the registry's default input, rich table
    assert code == 0 and "Total params: 65,834" in out and "1x64x7x7" in out
    code, out, _ = run(capsys, "summary", "cnn_small", "--format", "text")
    assert "features.0.0" in out and "Conv2d" in out


def test_summary_of_a_yaml_model_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "lenet.yaml"
    spec.write_text(
        "input_shape: [3, 32, 32]\n"
        "layers:\n"
        "  - {layer: Conv2D, filters: 6, kernel_size: 5, activation: relu}\n"
        "  - {layer: MaxPooling2D, pool_size: 2}\n"
        "  - {layer: Conv2D, filters: 16, kernel_size: 5, activation: relu}\n"
        "  - {layer: MaxPooling2D, pool_size: 2}\n"
        "  - {layer: Flatten}\n"
        "  - {layer: Dense, units: 120, activation: relu}\n"
        "  - {layer: Dense, units: 84, activation: relu}\n"
        "  - {layer: Dense, units: 10}\n"
    )
    code, out, _ = run(capsys, "summary", str(spec), "--format", "json")
    assert code == 0
    data = json.loads(out)
    shapes = [row["output_shapes"][0][1:] for row in data["layers"] if row["depth"] == 1]
    assert shapes == [[6, 28, 28], [6, 14, 14], [16, 10, 10], [16, 5, 5], [400], [120], [84], [10]]
    assert data["totals"]["params"] == 62006
    spec.write_text("layers:\n  - {layer: Flatten}\n")
    code, _, err = run(capsys, "summary", str(spec))
    assert code == 2 and "the model spec has no input_shape" in err


def test_summary_bad_input_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "summary", "cnn_smal")
    assert code == 2 and "did you mean 'cnn_small'" in err
    code, _, err = run(capsys, "summary", "cnn_small", "--input", "3x32")
    assert code == 2 and "--input needs CxHxW" in err
    code, _, err = run(capsys, "summary", "cnn_small", "--input", "3x2x2")  # pooled to nothing
    assert code == 2 and "layer features.5 (MaxPool2d) on input 1x64x1x1" in err


def _synthetic_png(path: Path) -> np.ndarray:
    grey = np.zeros((20, 30), dtype=np.uint8)
    grey[:, 15:] = 200
    grey[10:, :] //= 2
    Image.fromarray(grey).save(path)
    return grey.astype(np.float64) / 255


def test_kernels_saves_the_feature_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grey = _synthetic_png(tmp_path / "img.png")
    code, out, _ = run(
        capsys, "kernels", str(tmp_path / "img.png"), "--kernel", "sobel-x", "--out", str(tmp_path / "e.png")
    )
    assert code == 0 and "saved" in out and "20x30 feature map of sobel-x" in out
    saved = np.asarray(Image.open(tmp_path / "e.png"), dtype=np.float64)
    reference = correlate2d(grey, [[1, 0, -1], [2, 0, -2], [1, 0, -1]], mode="same")
    scaled = (reference - reference.min()) / (reference.max() - reference.min()) * 255
    np.testing.assert_allclose(saved, scaled, atol=0.51)  # 8-bit rounding


def test_kernels_all_figure_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _synthetic_png(tmp_path / "img.png")
    code, _, _ = run(capsys, "kernels", str(tmp_path / "img.png"), "--all")
    assert code == 0 and (tmp_path / "img-kernels.png").stat().st_size > 10_000
    assert Image.open(tmp_path / "img-kernels.png").size[0] > 600
    code, _, err = run(capsys, "kernels", str(tmp_path / "img.png"))
    assert code == 2 and "pass exactly one of --kernel NAME or --all" in err
    code, _, err = run(capsys, "kernels", str(tmp_path / "img.png"), "--kernel", "sobelx")
    assert code == 2 and "did you mean 'sobel-x'" in err
    code, _, err = run(capsys, "kernels", str(tmp_path / "none.png"), "--kernel", "sobel-x")
    assert code == 2 and "image file not found" in err


@pytest.mark.data
def test_kernels_on_a_real_photo(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = shared_data / "gradcam-samples" / "both.png"
    code, out, _ = run(
        capsys, "kernels", str(image), "--kernel", "laplacian", "--stride", "2", "--out", str(tmp_path / "l.png")
    )
    assert code == 0 and "112x112 feature map of laplacian on 224x224" in out
    assert Image.open(tmp_path / "l.png").size == (112, 112)
