"""``cnnlab serve`` on a sequence run: ``/predict`` and ``/explain`` take the files ``cnnlab predict`` takes (a
series file, a WAV recording, a clip) as uploads and answer exactly as ``cnnlab predict`` does; files the model
cannot read are refused with 400 naming the upload, never the server's temporary folder."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli.app import main
from cnnlab.core.errors import ConfigError
from cnnlab.data.wav import write_wav
from cnnlab.serve.app import create_app
from cnnlab.serve.model import load_served
from cnnlab.tasks.sequence.predictor import predict_files

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

pytestmark = pytest.mark.usefixtures("one_thread")


def trained(data: Path, runs: Path, *extra: str) -> Path:
    assert main(["train", "--data", str(data), "--runs-dir", str(runs), "--epochs", "3", *extra]) == 0
    (run,) = (runs / "sequence").iterdir()
    return run


@pytest.fixture(scope="module")
def series_run(wave_set: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained(wave_set, tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def client(series_run: Path) -> TestClient:
    return TestClient(create_app(load_served(series_run), max_upload_bytes=100_000))


def as_predicted(rows: list[dict]) -> list[tuple[str, list[tuple[str, float]]]]:
    return [(r["name"], [(t["label"], t["probability"]) for t in r["top"]]) for r in rows]


def test_a_series_file_is_answered_as_cnnlab_predict_answers(series_run: Path, wave_set: Path, client) -> None:
    test_file = wave_set / "Waves_TEST.ts"
    expected = [{"name": r["image"], "top": r["top"]} for r in predict_files(series_run, [test_file], top_k=2)]
    sent = client.post("/predict?top_k=2", files={"file": ("Waves_TEST.ts", test_file.read_bytes())})
    assert sent.status_code == 200, sent.text
    answer = sent.json()
    assert len(answer["samples"]) == 40 and answer["top"] == answer["samples"][0]["top"]
    assert as_predicted(answer["samples"]) == as_predicted(expected)  # same reader, same model, same numbers
    raw = client.post("/predict?top_k=2&name=Waves_TEST.ts", content=test_file.read_bytes())
    assert raw.status_code == 200 and raw.json()["samples"] == answer["samples"]

    odd = client.post("/predict", files={"file": ("odd name (1).csv", b"sine,1,2,3\n")})
    assert odd.status_code == 200 and odd.json()["samples"][0]["name"] == "odd name (1):1"  # the user's own name

    info = client.get("/model").json()
    assert info["task"] == "sequence" and info["files"] == {
        "kind": "series",
        "suffixes": [".ts", ".txt", ".tsv", ".csv", ".npz", ".npy"],
    }
    assert info["endpoints"]["predict"] and info["endpoints"]["explain"]


def test_explain_draws_the_class_activation_of_each_series(wave_set: Path, client) -> None:
    sent = client.post("/explain", files={"file": ("Waves_TEST.ts", (wave_set / "Waves_TEST.ts").read_bytes())})
    assert sent.status_code == 200 and sent.headers["content-type"] == "image/png"
    picture = Image.open(io.BytesIO(sent.content))
    assert picture.width > 400 and picture.height > 8 * 100  # one panel per series, 8 series drawn
    first = client.post("/predict?top_k=1", files={"file": ("w.ts", (wave_set / "Waves_TEST.ts").read_bytes())})
    assert sent.headers["X-Class-Label"] == first.json()["top"][0]["label"]
    assert float(sent.headers["X-Class-Probability"]) == pytest.approx(first.json()["top"][0]["probability"], abs=1e-5)


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("photo.png", b"\x89PNG....", "photo.png: this series model does not read .png"),
        (
            "long.csv",
            (",".join(["sine"] + ["0.5"] * 100) + "\n").encode(),
            "series of 100 steps; the model was trained on 64",
        ),
        ("broken.ts", b"@problemName X\n@data\n1,2,x:sine\n", "broken.ts"),
        ("gaps.csv", b"sine,1,,3\n", "gaps.csv"),
    ],
)
def test_files_the_model_cannot_read_are_refused_naming_the_upload(
    client, name: str, content: bytes, says: str
) -> None:
    for endpoint in ("/predict", "/explain"):
        sent = client.post(endpoint, files={"file": (name, content)})
        assert sent.status_code == 400, sent.text
        detail = sent.json()["detail"]
        assert says in detail and "cnnlab-upload" not in detail and "Fix:" in detail


def test_an_upload_without_a_name_or_too_large_is_refused(client) -> None:
    nameless = client.post("/predict", content=b"1,2,3", headers={"content-type": "text/csv"})
    assert nameless.status_code == 400 and "?name=FILE.EXT" in nameless.json()["detail"]
    big = client.post("/predict", files={"file": ("big.csv", b"1," * 60_000)})
    assert big.status_code == 413


def test_a_recording_is_answered_from_the_wav_and_resampled_like_training(tone_folder: Path, tmp_path: Path) -> None:
    run = trained(tone_folder, tmp_path)
    client = TestClient(create_app(load_served(run)))
    assert client.get("/model").json()["files"] == {"kind": "audio", "suffixes": [".wav"]}
    wav = next(tone_folder.glob("high_cy_*.wav"))
    expected = predict_files(run, [wav])[0]["top"]
    sent = client.post("/predict", files={"file": (wav.name, wav.read_bytes())})
    assert sent.status_code == 200 and sent.json()["top"] == expected
    assert sent.json()["samples"][0]["name"] == wav.name

    t = np.arange(4000) / 16000  # a high tone recorded at 16 kHz: resampled to the run's 8 kHz
    write_wav(tmp_path / "other_rate.wav", (0.5 * np.sin(2 * np.pi * 1200 * t)).astype(np.float32), 16000)
    resampled = client.post("/predict", files={"file": ("other_rate.wav", (tmp_path / "other_rate.wav").read_bytes())})
    assert (
        resampled.status_code == 200
        and resampled.json()["top"] == predict_files(run, [tmp_path / "other_rate.wav"])[0]["top"]
    )
    cams = client.post("/explain", files={"file": (wav.name, wav.read_bytes())})
    assert cams.status_code == 200 and Image.open(io.BytesIO(cams.content)).format == "PNG"

    cut = client.post("/predict", files={"file": ("cut.wav", wav.read_bytes()[:30])})
    assert cut.status_code == 400 and "cut.wav" in cut.json()["detail"] and "cnnlab-upload" not in cut.json()["detail"]


def test_a_clip_upload_gets_its_frames_with_the_map(blob_clips: Path, tmp_path: Path) -> None:
    run = trained(blob_clips, tmp_path)
    client = TestClient(create_app(load_served(run)))
    clip = next((blob_clips / "right").iterdir())
    sent = client.post("/predict", files={"file": (clip.name, clip.read_bytes())})
    assert sent.status_code == 200 and sent.json()["top"] == predict_files(run, [clip])[0]["top"]
    cams = client.post("/explain", files={"file": (clip.name, clip.read_bytes())})
    assert cams.status_code == 200 and Image.open(io.BytesIO(cams.content)).width >= 5 * 100  # five frames


def test_an_exported_sequence_model_is_sent_back_to_its_run(series_run: Path, tmp_path: Path) -> None:
    assert main(["export", str(series_run), "--format", "onnx", "--out", str(tmp_path)]) == 0
    (onnx,) = tmp_path.glob("*.onnx")
    with pytest.raises(ConfigError, match="serve the run folder it was exported from"):
        load_served(onnx)
    (card,) = tmp_path.glob("*.json")
    assert json.loads(card.read_text())["task"] == "sequence"


@pytest.mark.slow
def test_the_page_takes_a_series_file_and_shows_classes_and_the_map(browser, series_run: Path, wave_set: Path) -> None:
    from tests.browser import cnnlab_server

    with cnnlab_server(["serve", str(series_run)], wait_s=120) as url:
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.wait_for_selector("#model-info:has-text('series, 2 classes, input 1×64')")
        assert ".ts" in page.inner_text("#drop-text") and ".wav" not in page.inner_text("#drop-text")
        page.set_input_files("#file", str(wave_set / "Waves_TEST.ts"))
        page.wait_for_selector("#overlay:not([hidden])", timeout=60_000)
        assert sorted(page.locator("#top-classes li .name").all_inner_texts()) == ["sine", "square"]
        assert "the first of 40 samples in the file" in page.inner_text("#status")
        assert page.locator("#overlay").evaluate("img => img.complete && img.naturalWidth") > 400

        page.set_input_files("#file", {"name": "cat.png", "mimeType": "image/png", "buffer": b"png"})
        page.wait_for_selector("#status.error")
        assert "not a file this model reads" in page.inner_text("#status")
        assert errors == []
