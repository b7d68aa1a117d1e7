"""The HTTP API through FastAPI's test client: answers, errors, limits, and no request data on disk."""

from __future__ import annotations

import builtins
import io
import os
import tempfile

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from cnnlab.serve import create_app, load_served
from cnnlab.tasks.classify.predictor import load_classifier
from tests.serve.conftest import CLASSES, png_bytes, sample_images


@pytest.fixture(scope="module")
def served(classifier_checkpoint):
    return load_served(classifier_checkpoint, runtime="torch")


@pytest.fixture(scope="module")
def client(served):
    return TestClient(create_app(served, max_upload_bytes=200_000, max_pixels=1_000_000))


def upload(client, path, data, **kwargs):
    return client.post(path, files={"file": ("x.png", data, "image/png")}, **kwargs)


def test_health_and_model(client):
    assert client.get("/health").json() == {
        "status": "ok",
        "model": "cnn_small",
        "task": "classify",
        "runtime": "torch",
    }
    info = client.get("/model").json()
    assert info["classes"] == CLASSES
    assert info["input"]["shape"] == ["batch", 1, 28, 28]
    assert info["preprocessing"]["mean"] == [0.4] and info["preprocessing"]["channel_order"] == "L"
    assert info["endpoints"] == {
        "predict": True,
        "explain": True,
        "segment": False,
        "detect": False,
        "verify": False,
        "embed": False,
    }
    assert info["limits"]["max_upload_bytes"] == 200_000


def test_predict_matches_the_classifier_reading_the_same_file(client, classifier_checkpoint, tmp_path):
    data = sample_images(1)[0]
    (tmp_path / "a.png").write_bytes(data)
    clf = load_classifier(classifier_checkpoint)
    want = clf.predict_proba(clf.preprocess([tmp_path / "a.png"]), precision="fp32")[0]  # fp32, as served
    body = upload(client, "/predict", data, params={"top_k": 3}).json()
    assert [t["label"] for t in body["top"]] == [CLASSES[i] for i in want.argsort(descending=True).tolist()]
    got = torch.tensor([t["probability"] for t in sorted(body["top"], key=lambda t: t["index"])])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert body["runtime"] == "torch" and body["elapsed_ms"] >= 0


def test_raw_body_and_top_k(client):
    response = client.post("/predict?top_k=1", content=sample_images(1)[0], headers={"Content-Type": "image/png"})
    assert response.status_code == 200 and len(response.json()["top"]) == 1
    assert client.post("/predict?top_k=0", content=b"x", headers={"Content-Type": "image/png"}).status_code == 422


def test_explain_returns_an_overlay_of_the_predicted_class(client):
    data = sample_images(2)[1]
    predicted = upload(client, "/predict", data).json()["top"][0]
    response = upload(client, "/explain", data)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert int(response.headers["x-class-index"]) == predicted["index"]
    assert response.headers["x-class-label"] == predicted["label"]
    image = Image.open(io.BytesIO(response.content))
    assert image.mode == "RGB" and min(image.size) >= 320
    pixels = np.asarray(image).astype(int)
    assert (np.abs(pixels[..., 0] - pixels[..., 2]) > 10).any()  # jet colours: not the grey input any more


def test_explain_a_chosen_class_and_an_unknown_one(client):
    data = sample_images(1)[0]
    assert upload(client, "/explain", data, params={"target": "stripes"}).headers["x-class-index"] == "2"
    response = upload(client, "/explain", data, params={"target": "triangle"})
    assert response.status_code == 422 and "unknown class 'triangle'" in response.json()["detail"]


def test_segment_on_a_classifier_says_what_is_missing(client):
    response = upload(client, "/segment", sample_images(1)[0])
    assert response.status_code == 404
    assert "is a classify model" in response.json()["detail"] and "--task segment" in response.json()["detail"]


@pytest.mark.parametrize(
    ("data", "content_type", "message"),
    [
        (b"hello, not an image", "image/png", "not an image"),
        (b"", "image/png", "empty"),
        (sample_images(1)[0][:3000], "image/png", "corrupt or truncated"),
        (b"abc", "text/plain", "unsupported Content-Type"),
    ],
    ids=["not-an-image", "empty", "truncated", "wrong-type"],
)
def test_bad_uploads_get_400_with_a_message(client, data, content_type, message):
    response = client.post("/predict", content=data, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_form_without_a_file_part_is_400(client):
    response = client.post("/predict", data={"note": "no file"}, files={"other": ("", b"", "text/plain")})
    assert response.status_code == 400 and "no file part" in response.json()["detail"]


def test_decompression_bomb_is_refused_from_the_header(client):
    big = png_bytes(np.zeros((1200, 1000), np.uint8))  # 1.2 Mpx > the 1 Mpx limit, a few kB of PNG
    response = upload(client, "/predict", big)
    assert response.status_code == 400 and "too large" in response.json()["detail"]


def test_oversized_upload_is_413_with_or_without_content_length(client):
    data = b"\0" * 300_000
    assert upload(client, "/predict", data).status_code == 413
    chunked = client.post(
        "/predict", content=iter([data[:150_000], data[150_000:]]), headers={"Content-Type": "image/png"}
    )
    assert chunked.status_code == 413 and "limit of 200,000 bytes" in chunked.json()["detail"]


def test_no_request_data_reaches_the_file_system(served, monkeypatch):
    client = TestClient(create_app(served, max_upload_bytes=8_000_000))
    data = png_bytes(np.random.default_rng(0).integers(0, 256, (700, 700, 3), dtype=np.uint8))  # > 1 MB: would spool
    assert len(data) > 1_100_000
    upload(client, "/explain", sample_images(1)[0])  # lazy imports (matplotlib colormaps) happen before the trap
    opened = []

    def trap(*args, **kwargs):
        opened.append(args[0] if args else kwargs)
        raise AssertionError(f"the server opened a file: {args[:1]}")

    for module, name in ((builtins, "open"), (io, "open"), (os, "open"), (tempfile, "SpooledTemporaryFile")):
        monkeypatch.setattr(module, name, trap)
    for path in ("/predict", "/explain"):
        assert upload(client, path, data).status_code == 200
    assert opened == []


def test_security_headers_and_the_page(client):
    page = client.get("/")
    assert (
        page.status_code == 200
        and 'id="top-classes"' in page.text
        and page.headers["x-content-type-options"] == "nosniff"
    )
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert client.get("/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/style.css").status_code == 200
