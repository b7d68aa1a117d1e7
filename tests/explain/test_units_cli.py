"""`cnnlab explain units` as a user runs it: a run folder (or a zoo model and weights file) and a folder of images
in, one page with every unit's top patches and activation-maximisation image out; mistakes are one-line errors.
The old `cnnlab explain CHECKPOINT IMAGE` keeps working (tests/explain/test_explain_cli.py has the rest)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli.app import main
from cnnlab.models import create_model


@pytest.fixture
def run_and_folder(tmp_path, fake_run):
    run, _ = fake_run(tmp_path / "run")
    folder = tmp_path / "images"
    rng = np.random.default_rng(0)
    for i in range(12):  # in a sub-folder too, and one file that is not an image
        path = folder / ("more" if i % 3 == 0 else "") / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (30, 26), dtype=np.uint8)).save(path)  # resized to 28x28 on reading
    (folder / "notes.txt").write_text("not an image")
    return run, folder


def test_the_page_holds_nine_patches_and_one_maximisation_image_per_unit(run_and_folder, tmp_path, capsys):
    run, folder = run_and_folder
    out = tmp_path / "out"
    assert (
        main(["explain", "units", str(run), "--data", str(folder), "--out", str(out), "--units", "2", "--steps", "2"])
        == 0
    )
    page = (out / "units.html").read_text()
    layers = ["features.1", "features.4"]  # cnn_small's default: the end of each stage
    assert page.count("<img ") == len(layers) * 2 * (9 + 1) and page.count('class="max"') == len(layers) * 2
    data = json.loads((out / "units.json").read_text())
    assert [layer["layer"] for layer in data["layers"]] == layers and data["images"] == 12
    for layer in data["layers"]:
        assert len(layer["units"]) == 2
        for unit in layer["units"]:
            images = [p["image"] for p in unit["patches"]]
            assert len(set(images)) == 9 and all(name.endswith(".png") for name in images)
    assert data["layers"][0]["field"]["rows"] == {"size": 5, "jump": 1, "start": -2}  # two 3x3 'same' convs
    err = capsys.readouterr().err
    assert "layers features.1, features.4" in err and "units.html" in err


def test_chosen_layers_and_units_without_maximisation(run_and_folder, tmp_path):
    run, folder = run_and_folder
    out = tmp_path / "out"
    args = ["--layers", "features.4", "--units", "0,3", "--steps", "0"]
    assert main(["explain", "units", str(run), "--data", str(folder), "--out", str(out), *args]) == 0
    page = (out / "units.html").read_text()
    assert page.count("<img ") == 2 * 9 and "no activation maximisation" in page
    units = json.loads((out / "units.json").read_text())["layers"][0]["units"]
    assert [unit["unit"] for unit in units] == [0, 3]


def test_a_zoo_model_with_a_weights_file(run_and_folder, tmp_path):
    _, folder = run_and_folder
    weights = tmp_path / "cnn_small.pt"
    torch.save(create_model("cnn_small").state_dict(), weights)
    args = ["--model", "cnn_small", "--weights", str(weights), "--data", str(folder), "--out", str(tmp_path / "o")]
    assert main(["explain", "units", *args, "--layers", "features.1", "--units", "1", "--steps", "1"]) == 0
    assert (tmp_path / "o" / "units.html").read_text().count("<img ") == 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{run}", "--data", "{data}", "--layers", "features.9"], "did you mean features.5, features.4, features.3?"),
        (["{run}", "--data", "{data}", "--layers", "classifier"], "use one of features.0.0, features.0.1"),
        (["{run}", "--data", "{empty}"], "no images in"),
        (["{run}", "--data", "{run}/missing"], "is not a folder"),
        (["{run}"], "needs --data FOLDER"),
        (["{run}", "--data", "{data}", "--units", "many"], "--units must be a count or a comma-separated list"),
        (["{run}", "--data", "{data}", "--units", "0,99"], "has units 0..31; asked for [99]"),
        (["{run}", "--data", "{data}", "--layer", "features.1"], "--layer do not apply to `cnnlab explain units`"),
        (["{run}", "{run}", "--data", "{data}"], "give one CHECKPOINT"),
    ],
)
def test_mistakes_are_one_line_errors(run_and_folder, tmp_path, capsys, args, message):
    run, folder = run_and_folder
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    filled = [a.format(run=run, data=folder, empty=tmp_path / "empty") for a in args]
    assert main(["explain", "units", *filled, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "units.html").exists()


def test_the_old_usage_still_works_and_refuses_units_options(run_and_folder, tmp_path, capsys):
    run, folder = run_and_folder
    image = str(folder / "1.png")
    assert main(["explain", str(run), image, "--out", str(tmp_path / "heat")]) == 0
    assert [p.suffix for p in (tmp_path / "heat").iterdir()] == [".png"]
    assert main(["explain", str(run), image, "--out", str(tmp_path / "heat"), "--data", str(folder)]) == 2
    assert "--data belong to `cnnlab explain units`" in capsys.readouterr().err
