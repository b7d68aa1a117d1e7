"""``cnnlab models`` and ``cnnlab predict`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnlab.cli.app import main
from cnnlab.layers.summary import summary
from cnnlab.models import create_model, list_models
from cnnlab.tasks.classify.predictor import load_pretrained


def test_models_markdown_lists_every_registered_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--markdown"]) == 0
    lines = {line.split(" | ")[0].removeprefix("| "): line for line in capsys.readouterr().out.splitlines()[2:]}
    assert sorted(lines) == list_models()
    assert "| 61,706 | 416.52K | 1x32x32 |" in lines["lenet5"]
    assert "resnet20.cifar10" in lines["resnet20"]
    assert "| 4.09G |" in lines["resnet50"]  # torchvision reports 4.09 GMACs


def test_models_rejects_unknown_task(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--task", "detec"]) == 2
    assert "unknown task 'detec'; did you mean 'detect'" in capsys.readouterr().err


def test_macs_by_hand() -> None:
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, groups=1), torch.nn.Flatten(), torch.nn.Linear(8, 2))
    # conv: 8 maps x 1 pixel x (3 x 3 x 3) = 216; linear 8 x 2 = 16
    assert summary(conv, (3, 1, 1)).total_macs == 216 + 16  # the one MAC counter `cnnlab models` uses


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


def test_predict_precision_and_compile_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    model = create_model("resnet20").eval()
    torch.save(model.state_dict(), tmp_path / "net.pt")
    image = tmp_path / "noise.png"
    Image.fromarray(torch.randint(0, 256, (32, 32, 3), dtype=torch.uint8).numpy()).save(image)
    args = ["predict", "--model", "resnet20", "--weights", str(tmp_path / "net.pt"), "--top-k", "10", "--json"]

    def probabilities(*options: str) -> torch.Tensor:
        assert main([*args, *options, str(image)]) == 0
        [result] = json.loads(capsys.readouterr().out)
        return torch.tensor([row["probability"] for row in sorted(result["top"], key=lambda row: row["index"])])

    x = load_pretrained("resnet20", tmp_path / "net.pt").preprocess([image])
    with torch.no_grad():
        exact = model(x).softmax(dim=1)[0]
    torch.testing.assert_close(probabilities("--precision", "fp32", "--compile", "off"), exact, atol=1e-6, rtol=0)
    torch.testing.assert_close(probabilities(), exact, atol=2e-2, rtol=0)  # the default: bf16 where native
    assert main([*args, "--precision", "fp16", str(image)]) == 2
    assert "unknown precision 'fp16' [--precision]" in capsys.readouterr().err


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
