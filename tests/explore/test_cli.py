"""`cnnlab explore` refuses what it cannot explore with one clear line (exit 2), before it listens anywhere."""

from __future__ import annotations

import pytest

from cnnlab.cli.app import main


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    return " ".join(capsys.readouterr().err.split())  # rich wraps long lines


def test_a_missing_run_is_one_clear_error(tmp_path, capsys):
    missing = tmp_path / "runs" / "classify" / "cnn_small-9"
    assert main(["explore", str(missing)]) == 2
    err = _error(capsys)
    assert err.startswith("error: checkpoint not found") and str(missing) in err
    assert "pass a run folder" in err


def test_a_missing_checkpoint_file_is_one_clear_error(tmp_path, capsys):
    assert main(["explore", str(tmp_path / "best.pt")]) == 2
    assert "checkpoint not found" in _error(capsys)


def test_a_folder_that_is_no_run_says_so(tmp_path, capsys):
    assert main(["explore", str(tmp_path)]) == 2
    assert "not a run folder: it has no checkpoints/best.pt" in _error(capsys)


def test_an_unknown_model_name_suggests_the_zoo_name(capsys):
    assert main(["explore", "resnet_18"]) == 2
    err = _error(capsys)
    assert "no run folder, checkpoint or zoo model named 'resnet_18'" in err and "did you mean resnet18" in err


def test_a_model_that_is_not_an_image_classifier_is_refused(capsys):
    assert main(["explore", "unet"]) == 2
    assert "'unet' is a segment model; cnnlab explore shows classifiers" in _error(capsys)


def test_a_data_folder_without_images_is_refused(classifier_checkpoint, tmp_path, capsys):
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    assert main(["explore", str(classifier_checkpoint), "--data", str(tmp_path)]) == 2  # before taking the port
    assert f"no images in {tmp_path}" in _error(capsys)
