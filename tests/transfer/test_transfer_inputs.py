"""Input adaptation, weight/data mismatches, and the `cnnlab train --transfer` CLI on tiny synthetic data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from cnnlab.cli.app import main
from cnnlab.core.errors import ConfigError, WeightsError
from cnnlab.data.augment import Compose, Normalize, Rescale
from cnnlab.models import create_model, weight_spec
from cnnlab.transfer import adapt_images, head_classes, input_spec, load_pretrained, with_normalisation


def test_small_grey_images_are_padded_into_rgb():
    grey = torch.arange(28 * 28, dtype=torch.int32).remainder(256).to(torch.uint8).reshape(1, 1, 28, 28)
    out = adapt_images(grey, (3, 32, 32), fit="pad")
    assert out.shape == (1, 3, 32, 32) and out.dtype == torch.uint8
    assert torch.equal(out[0, :, 2:30, 2:30], grey[0].expand(3, -1, -1))  # centred, every channel the grey
    assert out[0, :, :2].sum() == 0 and out[0, :, :, 30:].sum() == 0


def test_large_images_are_padded_to_a_square_then_resized_or_stretched():
    wide = torch.full((2, 3, 40, 80), 255, dtype=torch.uint8)
    padded = adapt_images(wide, (3, 20, 20), fit="pad")
    assert padded.shape == (2, 3, 20, 20)
    assert padded[0, 0, 0, 10] == 0 and padded[0, 0, 10, 10] == 255  # black bands above and below
    stretched = adapt_images(wide, (3, 20, 20), fit="stretch")
    assert bool((stretched == 255).all())
    assert torch.equal(adapt_images(wide, (3, 40, 80)), wide)  # already right: unchanged
    cropped = adapt_images(torch.arange(36, dtype=torch.uint8).reshape(1, 1, 6, 6), (1, 4, 4), fit="crop")
    assert cropped[0, 0, 0].tolist() == [7, 8, 9, 10]  # the centre 4x4 of a 6x6 image
    with pytest.raises(ConfigError, match="fit"):
        adapt_images(wide, (3, 20, 20), fit="zoom")  # type: ignore[arg-type]


def test_rgb_into_a_grey_backbone_uses_luma():
    red = torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
    red[:, 0] = 255
    assert adapt_images(red, (1, 4, 4)).unique().tolist() == [76]  # 0.299 * 255


def test_the_weights_own_normalisation_replaces_the_presets():
    spec = input_spec(weight_spec("efficientnet_lite0.imagenet"))
    assert spec.size == (3, 224, 224) and spec.mean == pytest.approx((127 / 255,) * 3)
    preset = Compose([Rescale(), Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    pipeline = with_normalisation(preset, spec.mean, spec.std)
    out = pipeline(torch.full((1, 3, 2, 2), 127, dtype=torch.uint8))
    assert torch.allclose(out, torch.zeros_like(out), atol=1e-6)  # (127 - 127) / 128
    assert sum(isinstance(t, Normalize) for t in pipeline.transforms) == 1


def test_weights_for_another_architecture_list_the_keys_and_the_fix(tmp_path):
    path = tmp_path / "resnet32.pt"
    torch.save(create_model("resnet32").state_dict(), path)
    with pytest.raises(WeightsError) as err:
        load_pretrained("resnet20", path, num_classes=2)
    message = str(err.value)
    assert "unexpected in the file" in message and "layer1.3.conv1.weight (16, 16, 3, 3)" in message
    assert "--weights" in message and "--num-classes" in message
    shapes = tmp_path / "wide.pt"
    state = create_model("resnet20").state_dict()
    state["conv1.weight"] = torch.zeros(32, 3, 3, 3)
    torch.save(state, shapes)
    with pytest.raises(WeightsError, match=r"conv1.weight file \(32, 3, 3, 3\) vs model \(16, 3, 3, 3\)"):
        load_pretrained("resnet20", shapes, num_classes=2)


def test_another_class_count_in_the_file_gets_a_new_head(tmp_path):
    path = tmp_path / "ten.pt"
    source = create_model("resnet20", num_classes=10)
    torch.save(source.state_dict(), path)
    model, spec = load_pretrained("resnet20", path, num_classes=3)
    assert spec is None and model.linear.out_features == 3
    assert torch.equal(model.conv1.weight, source.conv1.weight)


def test_class_count_errors():
    with pytest.raises(ConfigError, match="at least 2 classes"):
        head_classes(None, ["only"])
    with pytest.raises(ConfigError, match="--num-classes 5 but the data has 2 classes"):
        head_classes(5, ["a", "b"])


def _image_folders(root, classes=("cat", "dog"), per_class=12):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 80, (20, 20, 3)) + 150 * label  # the class shows in the brightness
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
    return root


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["features", "finetune"])
def test_cli_transfer_runs_end_to_end(tmp_path, monkeypatch, capsys, mode):
    monkeypatch.setenv("CNNLAB_FEATURE_CACHE", str(tmp_path / "cache"))
    data = _image_folders(tmp_path / "data")
    weights = tmp_path / "pretrained.pt"
    torch.save(create_model("resnet20").state_dict(), weights)
    args = ["train", "--data", str(data), "--model", "resnet20", "--weights", str(weights), "--transfer", mode]
    args += ["--epochs", "2", "--batch-size", "8", "--precision", "fp32", "--runs-dir", str(tmp_path / "runs")]
    assert main([*args, "--unfreeze", "1"]) == 0, capsys.readouterr().err
    run = tmp_path / "runs" / "classify" / "resnet20-1"
    results = json.loads((run / "results.json").read_text())
    assert results["held_out_images"] == 24 and results["held_out_acc"] >= 0.5
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["transfer"]["mode"] == mode and config["transfer"]["unfreeze"] == 1
    checkpoint = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    assert checkpoint["input_size"] == [3, 20, 20]  # no spec for this file: the data's own size
    # features: train and val; finetune adds layer3's input for train, mirrored train and val (cached tail)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == {"features": 2, "finetune": 5}[mode]


def test_cli_transfer_errors_are_one_line(tmp_path, capsys):
    data = _image_folders(tmp_path / "data", classes=("only",))
    weights = tmp_path / "pretrained.pt"
    torch.save(create_model("resnet20").state_dict(), weights)
    base = ["train", "--data", str(data), "--model", "resnet20", "--runs-dir", str(tmp_path / "runs")]
    assert main([*base, "--weights", str(weights), "--transfer", "features"]) == 2
    assert "at least 2 classes" in capsys.readouterr().err
    assert main([*base, "--transfer", "features"]) == 2
    assert "needs pretrained weights" in capsys.readouterr().err
