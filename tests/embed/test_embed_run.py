"""Face recognition as a user runs it, on synthetic "people" (each a pattern of its own, each photo shifted
and noisy): train -> evaluate on other people -> verify -> enrol -> identify -> predict; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli.app import main
from cnnlab.core.rundir import load_checkpoint
from cnnlab.tasks.embed.course import verify, who_is_it
from cnnlab.tasks.embed.embedder import Embedder
from cnnlab.tasks.embed.gallery import Gallery


def write_people(root: Path, people: int, photos: int, seed: int = 0, size: int = 36) -> Path:
    """``root/person<k>/<i>.png``: a smooth random face-like pattern per person, shifted by up to 3 px and
    noisy per photo; grey PNGs of ``size`` px."""
    rng = np.random.default_rng(seed)
    for k in range(people):
        base = np.kron(rng.uniform(0, 255, (6, 6)), np.ones((size // 6 + 1, size // 6 + 1)))[:size, :size]
        folder = root / f"person{k}"
        folder.mkdir(parents=True)
        for i in range(photos):
            dy, dx = rng.integers(-3, 4, 2)
            photo = np.roll(base, (dy, dx), axis=(0, 1)) + rng.normal(0, 12, (size, size))
            Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("embed")
    people = write_people(root / "people", people=8, photos=6)
    args = ["train", "--task", "embed", "--data", str(people), "--model", "lenet5", "--epochs", "3"]
    assert main([*args, "--embedding-dim", "16", "--runs-dir", str(root / "runs")]) == 0
    return root / "runs" / "embed" / "lenet5-1"


def test_a_run_writes_scores_threshold_plots_and_report(trained: Path) -> None:
    results = json.loads((trained / "results.json").read_text())
    evaluation = json.loads((trained / "evaluation.json").read_text())
    assert 0 <= results["test_eer"] <= 1 and 0 <= results["test_auc"] <= 1
    assert evaluation["verification_people"] == 2  # 25% of 8 people, never trained on
    state = load_checkpoint(trained / "checkpoints" / "best.pt")
    assert state["threshold"] == pytest.approx(evaluation["verification"]["threshold"]["value"])
    for plot in ("roc.png", "distances.png", "embedding_2d.png", "hardest_pairs.png"):
        assert (trained / "plots" / plot).is_file()
    page = (trained / "report.html").read_text()
    assert "Verification on held-out people" in page and "Identification" in page and "roc.png" not in page
    log = (trained / "log.txt").read_text()
    assert "split by person" in log and "by image" in log  # the split is said


def test_the_held_out_people_are_never_trained_on(trained: Path) -> None:
    state = load_checkpoint(trained / "checkpoints" / "best.pt")
    evaluation = json.loads((trained / "evaluation.json").read_text())
    held = set(state["held_people"])
    assert len(held) == 2
    shown = {Path(p[k]).parent.name for p in evaluation["hardest_pairs"] for k in ("a", "b")}
    assert shown <= held


def test_evaluate_on_other_people_tests_the_stored_threshold(trained: Path, tmp_path: Path) -> None:
    other = write_people(tmp_path / "other", people=4, photos=4, seed=7)
    assert main(["evaluate", str(trained), "--data", str(other), "--out", str(tmp_path / "eval")]) == 0
    evaluation = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert evaluation["verification_people"] == 4
    assert evaluation["verification"]["threshold"]["chosen"] == "stored with the model"
    stored = load_checkpoint(trained / "checkpoints" / "best.pt")["threshold"]
    assert evaluation["verification"]["threshold"]["value"] == pytest.approx(stored)


def test_verify_enrol_identify_and_predict_from_the_cli(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    people = trained.parents[2] / "people"
    photo = people / "person0" / "0.png"
    assert main(["verify", str(photo), str(photo), "--model", str(trained), "--faces", "none"]) == 0
    assert "distance 0.0000" in capsys.readouterr().out  # the same image always verifies as same
    gallery = tmp_path / "g.npz"
    assert main(["enrol", str(people), "--model", str(trained), "--faces", "none", "--out", str(gallery)]) == 0
    assert "Enrolled 8 people (48 photos)" in capsys.readouterr().out
    assert main(["identify", str(photo), "--gallery", str(gallery), "--faces", "none"]) == 0
    assert "person0" in capsys.readouterr().out  # enrolled itself: distance 0, nearest
    assert main(["predict", str(trained), str(photo), "--out", str(tmp_path / "pred")]) == 0
    vectors = np.load(tmp_path / "pred" / "embeddings.npz")["vectors"]
    assert vectors.shape == (1, 16) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


def test_python_api_matches_the_course_functions(trained: Path) -> None:
    embedder = Embedder.load(trained)
    people = trained.parents[2] / "people"
    photos = [people / "person1" / "0.png", people / "person1" / "1.png", people / "person2" / "0.png"]
    vectors = [e.vector for e in embedder.embed_files(photos, faces="none")]
    database = {"person1": vectors[0], "person2": vectors[2]}
    distance, _ = verify(vectors[1], "person1", database, threshold=embedder.threshold)
    assert distance == pytest.approx(float((vectors[1] - vectors[0]).norm()), abs=1e-4)
    assert who_is_it(vectors[0], database)[1] == "person1"  # a database photo finds itself at distance 0
    gallery = Gallery(torch.stack(vectors), ["person1", "person1", "person2"], [str(p) for p in photos], "x", 0.5)
    assert gallery.identify(vectors[0], k=2)[0] == ("person1", 0.0)


def test_three_people_train_on_all_and_score_identification_only(tmp_path: Path) -> None:
    people = write_people(tmp_path / "people", people=3, photos=4)
    args = ["train", "--task", "embed", "--data", str(people), "--model", "lenet5", "--epochs", "1"]
    assert main([*args, "--runs-dir", str(tmp_path / "runs")]) == 0
    run = tmp_path / "runs" / "embed" / "lenet5-1"
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["verification"] is None and evaluation["identification"]["training_people"]["people"] == 3
    assert "no held-out people" in (run / "log.txt").read_text()
    assert Embedder.load(run).threshold == 0.7  # nothing calibrated: the course's threshold


def test_bad_input_stops_before_a_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lonely = write_people(tmp_path / "one", people=1, photos=3)
    assert main(["train", "--task", "embed", "--data", str(lonely), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "at least 2 people" in capsys.readouterr().err
    assert main(["train", "--task", "embed", "--data", str(tmp_path / "nowhere"), "--runs-dir", str(tmp_path)]) == 2
    assert "folder of people" in capsys.readouterr().err
    people = write_people(tmp_path / "people", people=4, photos=3)
    args = ["train", "--task", "embed", "--data", str(people), "--runs-dir", str(tmp_path / "runs")]
    assert main([*args, "--model", "dlib_resnet29", "--embedding-dim", "16"]) == 2
    assert "embeds in 128 dimensions" in capsys.readouterr().err
    assert main([*args, "--model", "unet"]) == 2
    assert "is a segment model" in capsys.readouterr().err
    assert main([*args, "--masks", "m/"]) == 2  # another task's option
    assert not (tmp_path / "runs").exists()


def test_a_gallery_with_duplicate_names_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    Image.new("L", (20, 20)).save(gallery / "ann.png")
    Image.new("L", (20, 20)).save(gallery / "ann.jpg")
    assert main(["enrol", str(gallery), "--model", "dlib_resnet29", "--faces", "none"]) == 2
    assert "two photos are named 'ann'" in capsys.readouterr().err


def test_a_person_with_one_photo_is_left_out_of_mining_with_a_warning(tmp_path: Path) -> None:
    people = write_people(tmp_path / "people", people=6, photos=4)
    for extra in sorted((people / "person5").glob("*.png"))[1:]:
        extra.unlink()  # person5 keeps one photo
    args = ["train", "--task", "embed", "--data", str(people), "--model", "lenet5", "--epochs", "1"]
    assert main([*args, "--val-fraction", "0", "--runs-dir", str(tmp_path / "runs")]) == 0
    log = (tmp_path / "runs" / "embed" / "lenet5-1" / "log.txt").read_text()
    assert "person5 has one training image: left out of triplet mining" in log


@pytest.mark.data
def test_verify_says_when_a_photo_has_no_face(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blank = tmp_path / "wall.png"
    Image.new("RGB", (400, 300), (128, 128, 128)).save(blank)
    assert main(["verify", str(blank), str(blank)]) == 2
    out = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert "no face found in" in out and "wall.png" in out and "--faces none" in out
    assert "[the picture]. Fix:" in out  # the console's markup once ate the [where] of these notes


def test_a_run_yaml_with_part_of_a_section_keeps_the_tasks_defaults(tmp_path: Path) -> None:
    from cnnlab.tasks.config import load_run_config
    from cnnlab.tasks.embed.config import EmbedRunConfig

    file = tmp_path / "run.yaml"
    file.write_text("task: embed\ntrain:\n  lr: 0.01\nembed:\n  dim: 32\n")
    config = load_run_config(EmbedRunConfig, file, {"data": {"source": "people/"}})
    assert config.train.lr == 0.01 and config.embed.dim == 32
    assert config.train.monitor == "last" and config.train.epochs is None  # the embed task's, not TrainConfig's
    assert config.embed.mining == "batch_hard" and config.data.val_fraction == 0.25


@pytest.fixture
def weights_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Nothing but ``tmp_path/weights`` is searched for the face models (no ``../shared``: the run starts in
    ``tmp_path``); the folder starts empty."""
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CNNLAB_WEIGHTS", str(folder))
    monkeypatch.delenv("CNNLAB_SHARED_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return folder


def test_without_the_pretrained_embedder_the_default_trains_resnet20_and_says_why(weights_here: Path) -> None:
    people = write_people(weights_here.parent / "people", people=5, photos=4)
    assert main(["train", "--task", "embed", "--data", str(people), "--epochs", "1", "--runs-dir", "runs"]) == 0
    log = (weights_here.parent / "runs" / "embed" / "resnet20-1" / "log.txt").read_text()
    assert "model resnet20 from scratch" in log and "face_recognition_resnet29_dlib_faceapi.pth" in log


def test_the_default_fine_tunes_the_pretrained_embedder_found_and_reloads_it(
    weights_here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With dlib's weights file in a searched folder (random values here: the layout is what matters) the default
    run fine-tunes it at 1e-5 on 150-px RGB chips; the run reloads to the same embeddings."""
    from cnnlab.models.embed.dlib_resnet import FILE_NAME, DlibResNet29

    torch.manual_seed(0)
    start = DlibResNet29().state_dict()
    torch.save(start, weights_here / FILE_NAME)
    people = write_people(weights_here.parent / "people", people=5, photos=4)
    args = ["train", "--task", "embed", "--data", str(people), "--epochs", "1", "--runs-dir", "runs"]
    assert main(args) == 0
    run = weights_here.parent / "runs" / "embed" / "dlib_resnet29-1"
    log = (run / "log.txt").read_text()
    assert "model dlib_resnet29: dlib's pretrained face embedder" in log and "lr 1e-05: fine-tuning" in log
    assert "input 150x150 RGB" in log
    state = load_checkpoint(run / "checkpoints" / "best.pt")
    assert state["input_size"] == [3, 150, 150] and state["fit"] == "pad"
    tuned = state["model"]["net.conv32_down.conv.weight"]
    assert not torch.equal(tuned, start["conv32_down.conv.weight"])  # trained, from the file's values
    assert (tuned - start["conv32_down.conv.weight"]).abs().max() < 1e-3  # a small step at 1e-5
    embedder = Embedder.load(run)
    photo = sorted((people / "person0").glob("*.png"))[0]
    vector = embedder.embed_files([photo], faces="none")[0].vector
    assert vector is not None and float(vector.norm()) == pytest.approx(1.0, abs=1e-5)
    capsys.readouterr()
    assert main(["verify", str(photo), str(photo), "--model", str(run), "--faces", "none"]) == 0
    assert "same person" in capsys.readouterr().out
    assert main([*args, "--model", "dlib_resnet29", "--lr", "0.001"]) == 0
    assert "lr 1e-05" not in (weights_here.parent / "runs" / "embed" / "dlib_resnet29-2" / "log.txt").read_text()


def test_asking_for_the_pretrained_embedder_without_its_weights_names_where_it_looked(
    weights_here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    people = write_people(weights_here.parent / "people", people=4, photos=3)
    args = ["train", "--task", "embed", "--data", str(people), "--model", "dlib_resnet29", "--runs-dir", "runs"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "face_recognition_resnet29_dlib_faceapi.pth not found" in err and str(weights_here) in err
    assert not (weights_here.parent / "runs").exists()
