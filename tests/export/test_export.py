"""Exports load back in the runtime a consumer would use and reproduce the PyTorch logits; the card is complete."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli.app import main
from cnnlab.core.errors import ConfigError
from cnnlab.core.rundir import save_checkpoint
from cnnlab.data.preprocess import preprocess_image
from cnnlab.export import ExportError, ModelCard, card_path, eager_runner, export_model, load_card, verify
from cnnlab.models import create_model
from cnnlab.tasks.classify.predictor import load_classifier

CLASSES = ["t-shirt", "trouser", "bag"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("fashion_cnn", num_classes=3, in_chans=1)
    path = tmp_path_factory.mktemp("run") / "checkpoints" / "best.pt"
    path.parent.mkdir()
    state = {"model": model.state_dict(), "config": {"model": {"name": "fashion_cnn"}}, "classes": CLASSES}
    save_checkpoint(path, {**state, "mean": [0.29], "std": [0.35], "input_size": [1, 28, 28]})
    return path


@pytest.fixture(scope="module")
def classifier(checkpoint):
    return load_classifier(checkpoint)


def test_card_preprocessing_equals_reading_the_file_for_training(classifier, tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "x.png"
    Image.fromarray(rng.integers(0, 256, (37, 50, 3), dtype=np.uint8)).save(path)
    card = ModelCard.from_classifier(classifier)
    with Image.open(path) as image:
        got = card.preprocess(image)
    np.testing.assert_allclose(got, classifier.preprocess([path])[0].numpy(), atol=1e-6)


def test_card_preprocessing_with_a_centre_crop_follows_the_imagenet_recipe():
    card = ModelCard(name="m", classes=("a",), input_size=(3, 8, 8), mean=(0.5,) * 3, std=(0.2,) * 3, resize=10)
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (12, 20, 3), dtype=np.uint8))
    np.testing.assert_array_equal(card.preprocess(image), preprocess_image(image, 8, 10, card.mean, card.std).numpy())
    assert card.to_dict()["preprocessing"]["fit"] == {
        "method": "resize_shorter_then_center_crop",
        "shorter_side": 10,
        "crop": [8, 8],
    }


def test_safetensors_export_reloads_into_the_architecture(classifier, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    result = export_model(classifier.model, ModelCard.from_classifier(classifier), tmp_path, "safetensors")
    fresh = create_model("fashion_cnn", num_classes=3, in_chans=1).eval()
    fresh.load_state_dict(load_file(result.path))
    x = torch.randn(5, 1, 28, 28)
    torch.testing.assert_close(fresh(x), classifier.model(x), rtol=0, atol=0)
    with safe_open(result.path, "pt") as weights:
        embedded = json.loads(weights.metadata()["cnnlab_card"])
    assert embedded["classes"] == CLASSES and embedded["file"] == "model.safetensors"
    assert load_card(result.path) == result.card and result.card_path == tmp_path / "model.safetensors.json"


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_export_runs_any_batch_size_and_carries_its_card(classifier, tmp_path):
    result = export_model(classifier.model, ModelCard.from_classifier(classifier), tmp_path, "torchscript")
    files = {"cnnlab_card.json": ""}
    loaded = torch.jit.load(str(result.path), _extra_files=files)
    x = torch.randn(7, 1, 28, 28)
    torch.testing.assert_close(loaded(x), classifier.model(x))
    assert json.loads(files["cnnlab_card.json"])["preprocessing"]["std"] == [0.35]
    assert result.card.verification["passed"] and result.card.verification["batch_sizes"] == [1, 3]


def test_verify_catches_a_wrong_model_and_a_fixed_batch():
    card = ModelCard(name="x", classes=("a", "b"), input_size=(1, 4, 4), mean=(0.0,), std=(1.0,))
    reference = eager_runner(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2)).eval())
    with pytest.raises(ExportError, match="differs from PyTorch"):
        verify(reference, lambda x: reference(x) * 1.01 + 1e-3, card)
    with pytest.raises(ExportError, match="batch axis may not be dynamic"):
        verify(reference, lambda x: reference(x[:1]), card)


def test_unknown_format_is_a_config_error(classifier, tmp_path):
    with pytest.raises(ConfigError, match="unknown export format 'tflite'"):
        export_model(classifier.model, ModelCard.from_classifier(classifier), tmp_path, "tflite")
    assert list(tmp_path.iterdir()) == []


def test_cli_exports_next_to_the_run(checkpoint, capsys):
    assert main(["export", str(checkpoint), "--format", "safetensors"]) == 0
    out = checkpoint.parent.parent / "export"
    assert sorted(p.name for p in out.iterdir()) == ["model.safetensors", "model.safetensors.json"]
    assert f"Folder: {out}" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize(("name", "input_size"), [("fashion_cnn", (1, 28, 28)), ("resnet18", (3, 224, 224))])
def test_onnx_export_matches_pytorch_in_onnxruntime(name, input_size, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    model = create_model(name, num_classes=4, in_chans=input_size[0]).eval()
    card = ModelCard(name=name, classes=("a", "b", "c", "d"), input_size=input_size, mean=(0.5,), std=(0.2,))
    result = export_model(model, card, tmp_path, "onnx")
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == ["batch", *input_size]  # a named dynamic batch axis
    x = torch.randn(5, *input_size)
    got = session.run(None, {"input": x.numpy()})[0]
    with torch.inference_mode():
        want = model(x).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-3)
    saved = json.loads(card_path(result.path).read_text())
    assert saved["verification"]["passed"] and saved["verification"]["runtime"].startswith("onnxruntime")
    assert saved["classes"] == ["a", "b", "c", "d"] and saved["input"]["shape"] == ["batch", *input_size]
