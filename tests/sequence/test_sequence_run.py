"""The user's paths for non-image data: ``cnnlab train --data`` on a UCR-style folder, a folder of WAV files and
a folder of clips picks the sequence task by itself, trains, scores the test split, writes the report; then
``cnnlab evaluate`` and ``cnnlab predict`` on the run. Bad input stops before any run folder exists."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from cnnlab.cli.app import main
from cnnlab.data.series_files import read_ts
from cnnlab.serve.model import load_served
from cnnlab.tasks.base import task_for_data

pytestmark = pytest.mark.usefixtures("one_thread")


def cli(*args: str) -> int:
    return main(list(args))


def only_run(runs: Path) -> Path:
    (run,) = (runs / "sequence").iterdir()
    return run


def test_a_ucr_folder_trains_without_task_and_beats_chance(wave_set: Path, tmp_path: Path, capsys) -> None:
    assert task_for_data(str(wave_set)) == "sequence"
    assert cli("train", "--data", str(wave_set), "--runs-dir", str(tmp_path), "--epochs", "8") == 0
    out = " ".join(capsys.readouterr().out.split())
    run = only_run(tmp_path)
    results = json.loads((run / "results.json").read_text())
    assert results["test_samples"] == 40 and results["test_acc"] >= 0.9, results
    assert "model fcn_ensemble: four FCNs" in out and "test set: the source's own" in out and "Test accuracy" in out
    assert "precision fp32" in out and yaml.safe_load((run / "config.yaml").read_text())["train"]["precision"] == "fp32"
    assert "BatchNorm statistics: those of the training set" in out  # precise BN; evaluate below agrees with it
    rows = [line.split(",") for line in (run / "metrics.csv").read_text().splitlines()]
    losses = [float(row[rows[0].index("loss")]) for row in rows[1:]]
    assert losses[-1] < losses[0] / 2  # the training loss falls
    page = (run / "report.html").read_text()
    assert "Where the model looked" in page and (run / "plots" / "signal_cams.png").is_file()
    assert (run / "plots" / "samples.png").is_file() and (run / "plots" / "confusion_matrix.png").is_file()

    assert cli("evaluate", str(run)) == 0
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["accuracy"] == pytest.approx(results["test_acc"])
    capsys.readouterr()
    assert cli("predict", str(run), str(wave_set / "Waves_TEST.ts"), "--json", "--top-k", "1") == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 40 and {r["top"][0]["label"] for r in rows} <= {"sine", "square"}
    truth = ["square" if i % 2 else "sine" for i in range(40)]
    hits = sum(r["top"][0]["label"] == t for r, t in zip(rows, truth, strict=True))
    assert hits / 40 == pytest.approx(results["test_acc"])  # predict reads files as training did

    assert cli("export", str(run), "--format", "torchscript", "--out", str(tmp_path / "export")) == 0
    card = json.loads((tmp_path / "export" / "model.torchscript.json").read_text())
    assert card["input"]["shape"] == ["batch", 1, 64] and card["verification"]["top1_agreement"] == 1.0
    exported = torch.jit.load(tmp_path / "export" / "model.torchscript.pt")
    raw = read_ts(wave_set / "Waves_TEST.ts").x  # as read: the graph normalises each series itself
    labels = [card["classes"][i] for i in exported(raw).argmax(1).tolist()]
    assert [r["top"][0]["label"] for r in rows] == labels
    assert load_served(run).routes == ("predict", "explain")  # uploads: tests/sequence/test_serve_sequence.py


def test_a_run_yaml_without_a_task_keeps_the_task_the_data_picks(wave_set: Path, tmp_path: Path) -> None:
    """``--config`` with only training settings (no ``task:``) trained a classifier on a UCR set before: the data
    still picks the task, and the file's settings apply."""
    (tmp_path / "run.yaml").write_text("train:\n  lr: 0.002\n")
    settings = ("--config", str(tmp_path / "run.yaml"), "--epochs", "1")
    assert cli("train", "--data", str(wave_set), *settings, "--runs-dir", str(tmp_path)) == 0
    config = yaml.safe_load((only_run(tmp_path) / "config.yaml").read_text())
    assert config["task"] == "sequence" and config["train"]["lr"] == 0.002


def test_keras_style_arrays_and_a_series_csv_train_without_task(tmp_path: Path, capsys) -> None:
    """A newcomer's own series: an .npz of (N, T) floats with string labels, and a CSV of rows (a header, the
    label first). Both were read as images before (a range error; 'cannot read image' per row)."""
    rng = np.random.default_rng(0)
    labels = np.array(["up", "down"] * 15)
    x = rng.normal(0, 0.3, (30, 40)) + np.where(labels == "up", 1, -1)[:, None] * np.linspace(0, 2, 40)
    np.savez(tmp_path / "trend.npz", x=x.astype(np.float32), y=labels)
    rows = ["label," + ",".join(f"t{i}" for i in range(40))]
    rows += [f"{label}," + ",".join(f"{v:.4f}" for v in row) for label, row in zip(labels, x, strict=True)]
    (tmp_path / "trend.csv").write_text("\n".join(rows) + "\n")
    for name in ("trend.npz", "trend.csv"):
        runs = tmp_path / name.replace(".", "-")
        assert cli("train", "--data", str(tmp_path / name), "--runs-dir", str(runs), "--epochs", "2") == 0
        results = json.loads((only_run(runs) / "results.json").read_text())
        assert results["test_samples"] == 6, results  # 20% of each class
    out = " ".join(capsys.readouterr().out.split())
    assert "arrays: 30 series of 1 channel x 40 steps" in out and "CSV: 30 series of 1 channel x 40 steps" in out


def test_a_folder_of_recordings_trains_with_the_speaker_split(tone_folder: Path, tmp_path: Path, capsys) -> None:
    assert task_for_data(str(tone_folder)) == "sequence"
    code = cli("train", "--data", str(tone_folder), "--runs-dir", str(tmp_path), "--epochs", "6", "--split", "group")
    assert code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert ("every recording of cy" in out and "log-mel" in out.lower()) or "logmel" in out.lower()
    assert "precision auto: the device's plan" in out
    run = only_run(tmp_path)
    results = json.loads((run / "results.json").read_text())
    assert results["test_samples"] == 12 and results["test_acc"] >= 0.9
    capsys.readouterr()
    wav = next(tone_folder.glob("high_cy_*.wav"))
    assert cli("predict", str(run), str(wav), "--json") == 0
    assert json.loads(capsys.readouterr().out)[0]["top"][0]["label"] == "high"


def test_clips_of_a_moving_blob_train_a_conv3d_net(blob_clips: Path, tmp_path: Path) -> None:
    assert task_for_data(str(blob_clips)) == "sequence"
    args = ("train", "--data", str(blob_clips), "--runs-dir", str(tmp_path), "--epochs", "6", "--lr", "0.01")
    assert cli(*args) == 0
    run = only_run(tmp_path)
    results = json.loads((run / "results.json").read_text())
    assert results["test_acc"] >= 0.8, results
    assert (run / "plots" / "signal_cams.png").is_file()
    assert "c3d_small" in (run / "config.yaml").read_text()


def test_bad_input_says_what_and_makes_no_run_folder(wave_set: Path, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    assert cli("train", "--task", "sequence", "--data", str(tmp_path / "nothing"), "--runs-dir", str(runs)) != 0
    assert "not sequence data" in " ".join(capsys.readouterr().err.split())
    assert cli("train", "--data", str(wave_set), "--model", "resnet20", "--runs-dir", str(runs)) != 0
    err = " ".join(capsys.readouterr().err.split())
    assert "resnet20 does not take (C, T) signals" in err and "fcn" in err
    assert cli("train", "--data", str(wave_set), "--aug", "cifar", "--runs-dir", str(runs)) != 0
    assert "unknown augmentation 'cifar'" in " ".join(capsys.readouterr().err.split())
    assert cli("train", "--data", str(wave_set), "--split", "sideways", "--runs-dir", str(runs)) != 0
    assert not runs.exists()
