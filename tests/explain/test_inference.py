"""Loading a trained checkpoint for inference: the model, its preprocessing and its class names."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.core.errors import ConfigError, RunDirError, WeightsError
from cnnlab.core.rundir import save_checkpoint
from cnnlab.models import create_model
from cnnlab.tasks.classify.predictor import Classifier, load_classifier, load_pretrained


def test_a_run_folder_loads_its_best_checkpoint(tmp_path, fake_run):
    run, model = fake_run(tmp_path / "run")
    clf = load_classifier(run)
    assert (
        clf.name == "cnn_small"
        and clf.classes == ("0", "1", "10", "tabby, tabby cat")
        and clf.input_size == (1, 28, 28)
    )
    assert not clf.model.training and clf.resize is None and clf.source.endswith("best.pt")
    for key, value in model.state_dict().items():
        assert torch.equal(clf.model.state_dict()[key], value), key
    x = torch.randn(3, 1, 28, 28)
    torch.testing.assert_close(clf.predict_proba(x, precision="fp32"), model.eval()(x).softmax(dim=1))
    assert load_classifier(run / "checkpoints" / "best.pt").classes == clf.classes


def test_preprocess_stretches_to_the_input_size_and_normalises(tmp_path, fake_run):
    clf = load_classifier(fake_run(tmp_path / "run")[0])
    Image.new("L", (50, 30), 100).save(tmp_path / "flat.png")
    Image.new("RGB", (28, 28), (255, 0, 0)).save(tmp_path / "red.png")  # to grey by Pillow: L = 0.299 R
    x = clf.preprocess([tmp_path / "flat.png", tmp_path / "red.png"])
    assert x.shape == (2, 1, 28, 28)
    torch.testing.assert_close(x[0], torch.full((1, 28, 28), (100 / 255 - 0.25) / 0.5))
    torch.testing.assert_close(x[1], torch.full((1, 28, 28), (76 / 255 - 0.25) / 0.5))
    assert np.array_equal(clf.to_image(x[0]), np.full((28, 28, 1), 100, np.uint8))


def test_rgb_checkpoint_and_the_image_the_model_saw(tmp_path, fake_run):
    clf = load_classifier(fake_run(tmp_path / "run", "resnet20", channels=3, size=32)[0])
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "noise.png")
    x = clf.preprocess([tmp_path / "noise.png"])
    assert x.shape == (1, 3, 32, 32)
    assert np.array_equal(clf.to_image(x[0]), pixels)


def test_class_index_by_name_synonym_or_index(tmp_path, fake_run):
    clf = load_classifier(fake_run(tmp_path / "run")[0])
    assert clf.class_index("10") == 2  # a class named "10" wins over index 10
    assert clf.class_index("3") == 3 and clf.class_index(1) == 1
    assert clf.class_index("Tabby Cat") == 3 and clf.class_index("tabby, tabby cat") == 3
    with pytest.raises(ConfigError, match=r"'tabbby' is not one of the 4 classes.*did you mean"):
        clf.class_index("tabbby")
    with pytest.raises(ConfigError, match="out of range"):
        clf.class_index("7")


def test_checkpoint_errors_say_what_to_do(tmp_path, fake_run):
    with pytest.raises(RunDirError, match="checkpoint not found"):
        load_classifier(tmp_path)
    save_checkpoint(tmp_path / "bare.pt", {"model": create_model("cnn_small").state_dict()})
    with pytest.raises(WeightsError, match=r"lacks config, classes, mean, std, input_size.*--model NAME --weights"):
        load_classifier(tmp_path / "bare.pt")
    run, _ = fake_run(tmp_path / "run")
    state = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    state["config"]["model"]["name"] = "lenet5"
    save_checkpoint(tmp_path / "other.pt", state)
    with pytest.raises(WeightsError, match="do not fit model 'lenet5'"):
        load_classifier(tmp_path / "other.pt")


def test_pretrained_with_an_unknown_weights_file_gets_the_model_defaults(tmp_path):
    torch.manual_seed(0)
    torch.save(create_model("resnet20").state_dict(), tmp_path / "mine.pth")
    clf = load_pretrained("resnet20", tmp_path / "mine.pth")
    assert isinstance(clf, Classifier) and clf.input_size == (3, 32, 32) and clf.resize == 37
    assert clf.classes == tuple(str(i) for i in range(10)) and not clf.model.training
    Image.new("RGB", (64, 48), (10, 20, 30)).save(tmp_path / "a.png")
    assert clf.preprocess([tmp_path / "a.png"]).shape == (1, 3, 32, 32)
    with pytest.raises(ConfigError, match="segment model"):
        load_pretrained("unet", tmp_path / "mine.pth")
