"""``cnnlab evaluate``, ``cnnlab predict CHECKPOINT`` and ``cnnlab report`` on a small trained run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from cnnlab.cli.app import main
from cnnlab.tasks.classify.predictor import load_classifier
from tests.report.conftest import shapes

pytestmark = pytest.mark.slow


def test_train_wrote_evaluation_and_report(small_run):
    names = {p.name for p in (small_run / "plots").iterdir()}
    assert {"samples.png", "augmented.png", "curves.png", "lr_schedule.png", "confusion_matrix.png"} <= names
    assert " parameters (" in (small_run / "model_summary.txt").read_text()
    results = json.loads((small_run / "results.json").read_text())
    assert 0 <= results["test_acc"] <= 1 and "cpu" in results["machine"]


def test_evaluate_matches_sklearn_on_its_own_predictions(small_run, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", str(small_run / "checkpoints" / "best.pt"), "--out", str(out), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["data"].endswith("test split") and record["images"] == 90 and record["tta"] == "none"
    # the same predictions, made independently from the checkpoint and the .npz
    clf = load_classifier(small_run / "checkpoints" / "best.pt")
    with np.load(small_run.parent.parent.parent / "shapes.npz") as archive:
        images, targets = archive["x_test"], archive["y_test"]
    x = (images[:, None].astype(np.float32) / 255 - clf.mean[0]) / clf.std[0]
    preds = clf.predict_proba(torch.from_numpy(x)).argmax(1).numpy()
    np.testing.assert_array_equal(record["confusion"], confusion_matrix(targets, preds, labels=range(3)))
    p, r, f, s = precision_recall_fscore_support(targets, preds, labels=range(3), zero_division=0.0)
    np.testing.assert_allclose(record["per_class"]["precision"], p, atol=1e-12)
    np.testing.assert_allclose(record["per_class"]["recall"], r, atol=1e-12)
    np.testing.assert_allclose(record["per_class"]["f1"], f, atol=1e-12)
    assert record["per_class"]["support"] == s.tolist()
    assert sorted(p.name for p in (out / "plots").iterdir())[0] == "confusion_matrix.png"


def test_evaluate_json_of_the_run_has_tta_and_ensemble_gains(small_run):
    record = json.loads((small_run / "evaluation.json").read_text())
    names = [v["name"] for v in record["variants"]]
    assert names == ["single model", "single model + flip", "ensemble of 2", "ensemble of 2 + flip"]
    assert record["accuracy"] == record["variants"][-1]["accuracy"]
    assert len(record["checkpoints"]) == 2 and record["tta"] == "flip"


def test_predict_from_checkpoint_with_tta_and_ensemble(small_run, tmp_path, capsys):
    with np.load(small_run.parent.parent.parent / "shapes.npz") as archive:
        image = archive["x_test"][0]
    path = tmp_path / "square.png"
    Image.fromarray(image).save(path)
    ckpt = small_run / "checkpoints" / "best.pt"
    args = ["predict", str(ckpt), str(path), "--top-k", "2", "--json"]
    assert main(args) == 0
    plain = json.loads(capsys.readouterr().out)
    assert len(plain[0]["top"]) == 2 and plain[0]["top"][0]["label"] in {"0", "1", "2"}
    clf = load_classifier(ckpt)
    expected = clf.predict_proba(clf.preprocess([path]))[0]
    assert plain[0]["top"][0]["probability"] == pytest.approx(float(expected.max()), abs=1e-6)
    assert main([*args, "--tta", "flip", "--ensemble", str(small_run)]) == 0
    both = json.loads(capsys.readouterr().out)
    x = clf.preprocess([path])
    flipped = (clf.predict_proba(x) + clf.predict_proba(x.flip(-1)))[0] / 2  # best.pt twice: the ensemble mean is it
    assert both[0]["top"][0]["probability"] == pytest.approx(float(flipped.max()), abs=1e-6)


def test_predict_checkpoint_without_images_and_report_command(small_run, capsys):
    assert main(["predict", str(small_run / "checkpoints" / "best.pt")]) == 2
    assert "no image given" in capsys.readouterr().err
    assert main(["report", str(small_run)]) == 0
    assert "report.html" in capsys.readouterr().out


def test_train_with_tta_and_label_smoothing_reports_plain_and_tta_scores_as_evaluate_does(tmp_path, capsys):
    x_train, y_train = shapes(120, 0, 0.0)
    x_test, y_test = shapes(60, 1, 0.15)
    source = tmp_path / "shapes.npz"
    np.savez(source, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    common = ["--data", str(source), "--model", "cnn_small", "--epochs", "1", "--val-fraction", "0"]
    runs = ["--runs-dir", str(tmp_path / "runs")]
    assert main(["train", *common, *runs, "--tta", "sideways"]) == 2
    assert "unknown test-time augmentation 'sideways'" in capsys.readouterr().err
    assert main(["train", *common, *runs, "--tta", "flip", "--label-smoothing", "0.1"]) == 0
    run = next((tmp_path / "runs" / "classify").iterdir())
    assert "label_smoothing: 0.1" in (run / "config.yaml").read_text()
    results = json.loads((run / "results.json").read_text())
    written = json.loads((run / "evaluation.json").read_text())
    assert [v["name"] for v in written["variants"]] == ["single model", "single model + flip"]
    assert results["test_acc_plain"] == written["variants"][0]["accuracy"]
    assert results["test_acc"] == written["variants"][1]["accuracy"] == written["accuracy"]
    capsys.readouterr()
    assert main(["evaluate", str(run / "checkpoints" / "last.pt"), "--tta", "flip", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert [v["accuracy"] for v in again["variants"]] == [v["accuracy"] for v in written["variants"]]


def test_predict_takes_a_folder_as_its_images(small_run, tmp_path, capsys):
    """`cnnlab predict RUN photos/` (it said 'Is a directory'): every image inside, sub-folders too, in natural
    order, the same answers as naming the files; a folder without images says so."""
    with np.load(small_run.parent.parent.parent / "shapes.npz") as archive:
        images = archive["x_test"][:3]
    for name, image in zip(["b/10.png", "b/2.png", "b/deep/1.jpg"], images, strict=True):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(tmp_path / name, quality=95)
    (tmp_path / "b" / "notes.txt").write_text("not an image")
    assert main(["predict", str(small_run), str(tmp_path / "b"), "--json"]) == 0
    from_folder = json.loads(capsys.readouterr().out)
    assert [Path(r["image"]).name for r in from_folder] == ["2.png", "10.png", "1.jpg"]
    files = [str(tmp_path / "b" / n) for n in ("2.png", "10.png", "deep/1.jpg")]
    assert main(["predict", str(small_run), *files, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == from_folder
    assert main(["explain", str(small_run), str(tmp_path / "b"), "--out", str(tmp_path / "heat")]) == 0
    assert len(list((tmp_path / "heat").glob("*.png"))) == 3
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(small_run), str(tmp_path / "empty")]) == 2
    assert "no images in" in capsys.readouterr().err
