"""Mistakes a newcomer makes on the command line: one-line errors that say what, where and what to do, before
any run folder exists; and the settings chosen from the data when they are left open (issue 19)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from cnnlab.cli.app import main
from tests.test_user_paths import write_folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_folder(tmp_path_factory.mktemp("folder") / "shapes", 3, 32, 32, per_class=10)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "segmnt"], "unknown task 'segmnt'; did you mean 'segment'?"),
        (["--model", "resnt20"], "did you mean 'resnet20'"),
        (["--aug", "cifr"], "did you mean 'cifar'"),
        (["--optimizer", "adm"], "did you mean 'adam'?"),
        (["--img-size", "0"], "img_size must be between"),
        (["--img-size", "100000"], "img_size must be between"),
        (["--lr", "nan"], "lr must be > 0"),
        (["--masks", "masks/"], "--masks does not apply to --task classify"),
        (["--task", "segment", "--transfer", "features"], "--transfer does not apply to --task segment"),
    ],
)
def test_a_mistake_is_one_line_and_leaves_no_run_folder(args, message, folder, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", "--data", str(folder), "--runs-dir", str(runs), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) <= 3
    assert not runs.exists()


def test_bad_data_leaves_no_run_folder(tmp_path, capsys):
    image = tmp_path / "one.jpg"
    write_folder(tmp_path / "x", 3, 8, 8, per_class=1)
    next((tmp_path / "x").rglob("*.jpg")).rename(image)
    for data in (str(image), str(tmp_path / "missing")):
        assert main(["train", "--data", data, "--runs-dir", str(tmp_path / "runs")]) == 2
    assert not (tmp_path / "runs").exists()
    assert "not a dataset" in capsys.readouterr().err


def test_settings_left_open_are_chosen_from_the_data_and_said(folder, tmp_path, capsys):
    assert main(["train", "--data", str(folder), "--model", "cnn_small", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    run = tmp_path / "classify" / "cnn_small-1"
    config = (run / "config.yaml").read_text()
    assert "aug: photos" in config and "epochs: 40" in config and "batch_size: 8" in config
    assert out.count("Chosen from the data:") == 3 and "chosen from the data" in (run / "log.txt").read_text()


def test_resume_refuses_another_model_and_keeps_the_run(folder, tmp_path, capsys):
    args = ["train", "--data", str(folder), "--model", "cnn_small", "--epochs", "1", "--runs-dir", str(tmp_path)]
    assert main(args) == 0
    run = tmp_path / "classify" / "cnn_small-1"
    before = (run / "config.yaml").read_text()
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--model", "resnet20"]) == 2
    err = capsys.readouterr().err
    assert "cannot change model.name" in err and "'cnn_small'" in err
    assert (run / "config.yaml").read_text() == before
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 0  # more epochs is what resume is for
    assert json.loads((run / "results.json").read_text())["epochs"] == 2


def test_patch_size_larger_than_the_images_is_refused(tmp_path, capsys):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    for i in range(3):
        Image.new("L", (48, 48), 90).save(images / f"{i}.png")
        Image.new("L", (48, 48), 255 * (i % 2)).save(masks / f"{i}.png")
    code = main(["train", "--task", "segment", "--data", str(images), "--masks", str(masks), "--patch-size", "64"])
    assert code == 2 and "patch size 64 is larger than the 48x48 images" in capsys.readouterr().err


@pytest.mark.slow
def test_ctrl_c_stops_with_a_checkpoint_and_a_nonzero_exit(folder, tmp_path):
    """`cnnlab train ... && cnnlab evaluate ...` must not go on after Ctrl-C: exit 130, resumable checkpoint."""
    command = [sys.executable, "-m", "cnnlab.cli.app", "train", "--data", str(folder), "--model", "cnn_small"]
    command += ["--epochs", "500", "--runs-dir", str(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "classify" / "cnn_small-1" / "log.txt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (log.is_file() and "epoch 1:" in log.read_text()):
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Resume with --resume" in out and (log.parent / "checkpoints" / "last.pt").is_file()
