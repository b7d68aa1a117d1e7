"""``cnnlab models`` and ``cnnlab predict`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnlab.cli.app import main
from cnnlab.cli.models_cmd import count_macs
from cnnlab.models import create_model, list_models


def test_models_markdown_lists_every_registered_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--markdown"]) == 0
    lines = {line.split(" | ")[0].removeprefix("| "): line for line in capsys.readouterr().out.splitlines()[2:]}
    assert sorted(lines) == list_models()
    assert "| 61,706 | 416.52K | 1x32x32 |" in lines["lenet5"]
    assert "resnet20.cifar10" in lines["resnet20"]
    assert "| 4.09G |" in lines["resnet50"]  # torchvision reports 4.09 GMACs


def test_models_rejects_unknown_task(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--task", "detect"]) == 2
    assert "unknown task 'detect'" in capsys.readouterr().err


def test_count_macs_by_hand() -> None:
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, groups=1), torch.nn.Flatten(), torch.nn.Linear(8, 2))
    # conv: 8 maps x 1 pixel x (3 x 3 x 3) = 216; linear 8 x 2 = 16
    assert count_macs(conv, (3, 1, 1)) == 216 + 16


def test_predict_json_with_an_unknown_weights_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = tmp_path / "net.pt"
    torch.save(create_model("resnet20").state_dict(), weights)
    image = tmp_path / "red.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(image)
    assert (
        main(["predict", "--model", "resnet20", "--weights", str(weights), "--top-k", "3", "--json", str(image)]) == 0
    )
    [result] = json.loads(capsys.readouterr().out)
    assert result["assumed"] is True and len(result["top"]) == 3
    assert sum(row["probability"] for row in result["top"]) <= 1.0 + 1e-6


def test_predict_needs_model_and_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", str(tmp_path / "x.png")]) == 2
    assert "--model and --weights" in capsys.readouterr().err


@pytest.mark.data
def test_predict_dog_and_cat_prints_imagenet_names(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = shared_data / "efficientnet-lite0-imagenet" / "efficientnet-lite0-57934424.pth"
    image = shared_data / "gradcam-samples" / "both.png"
    assert main(["predict", "--model", "efficientnet_lite0", "--weights", str(weights), str(image)]) == 0
    out = capsys.readouterr().out
    assert "bull mastiff" in out and "tiger cat" in out
