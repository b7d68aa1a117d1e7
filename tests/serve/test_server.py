"""A real uvicorn server on loopback: concurrent requests, segmentation, the onnxruntime paths and the CLI."""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")
httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

from cnnlab.cli.app import main  # noqa: E402
from cnnlab.serve import create_app, load_served  # noqa: E402
from tests.browser import cnnlab_server, free_port  # noqa: E402
from tests.serve.conftest import CLASSES, sample_images  # noqa: E402


def serve_process(target: Path, wait_s: float) -> contextlib.AbstractContextManager[str]:
    """`cnnlab serve TARGET` in its own process; its URL once /health answers (within ``wait_s``)."""
    return cnnlab_server(["serve", str(target)], wait_s)


@pytest.fixture
def running(classifier_checkpoint: Path) -> Iterator[str]:
    """The app on 127.0.0.1 in a background thread; stopped (and joined) after the test."""
    port = free_port()
    app = create_app(load_served(classifier_checkpoint, runtime="torch"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start in 20 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_concurrent_predict_and_explain_give_the_sequential_answers(running):
    images = sample_images(4)
    with httpx.Client(base_url=running, timeout=60) as client:

        def call(job: tuple[str, int]) -> tuple[str, int, bytes]:
            path, i = job
            response = client.post(path, files={"file": ("x.png", images[i], "image/png")})
            assert response.status_code == 200, response.text
            return path, i, response.content

        jobs = [(path, i) for i in range(len(images)) for path in ("/predict", "/explain")]
        sequential = {(p, i): c for p, i, c in map(call, jobs)}
        with ThreadPoolExecutor(max_workers=8) as pool:
            concurrent = list(pool.map(call, jobs * 3))
    for path, i, content in concurrent:
        if path == "/predict":
            got, want = (
                np.array([t["probability"] for t in httpx.Response(200, content=c).json()["top"]])
                for c in (content, sequential[path, i])
            )
            np.testing.assert_allclose(got, want, atol=1e-6)
        else:  # Grad-CAM hooks the shared model: a mixed-up activation would change the picture
            assert content == sequential[path, i]


def test_segment_returns_a_mask_and_an_overlay(segmentation_checkpoint):
    from fastapi.testclient import TestClient

    client = TestClient(create_app(load_served(segmentation_checkpoint)))
    assert client.get("/model").json()["endpoints"] == {
        "predict": False,
        "explain": False,
        "segment": True,
        "detect": False,
        "verify": False,
        "embed": False,
    }
    image = sample_images(1, size=50)[0]
    mask = client.post("/segment", files={"file": ("c.png", image, "image/png")})
    assert mask.status_code == 200 and mask.headers["content-type"] == "image/png"
    pixels = np.asarray(Image.open(io.BytesIO(mask.content)))
    assert pixels.shape == (50, 58) and set(np.unique(pixels)) <= {0, 255}
    overlay = client.post("/segment?view=overlay", files={"file": ("c.png", image, "image/png")})
    assert np.asarray(Image.open(io.BytesIO(overlay.content))).shape == (50, 58, 3)
    assert client.post("/predict", files={"file": ("c.png", image, "image/png")}).status_code == 404


def test_cli_refuses_a_missing_model(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nope.pt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


@pytest.mark.slow
def test_onnx_runtime_matches_torch_and_an_onnx_file_cannot_explain(classifier_checkpoint, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from fastapi.testclient import TestClient

    from cnnlab.export import ModelCard, export_model
    from cnnlab.tasks.classify.predictor import load_classifier

    onnx_served = load_served(classifier_checkpoint, runtime="auto")
    assert onnx_served.runtime == "onnxruntime" and onnx_served.can_explain
    torch_client = TestClient(create_app(load_served(classifier_checkpoint, runtime="torch")))
    onnx_client = TestClient(create_app(onnx_served))
    for image in sample_images(3):
        answers = [
            c.post("/predict", files={"file": ("x.png", image, "image/png")}).json()
            for c in (torch_client, onnx_client)
        ]
        assert [t["label"] for t in answers[0]["top"]] == [t["label"] for t in answers[1]["top"]]
        np.testing.assert_allclose(*([t["probability"] for t in a["top"]] for a in answers), atol=1e-5)
    assert onnx_client.post("/explain", files={"file": ("x.png", image, "image/png")}).status_code == 200

    clf = load_classifier(classifier_checkpoint)
    exported = export_model(clf.model, ModelCard.from_classifier(clf), tmp_path, "onnx")
    file_client = TestClient(create_app(load_served(exported.path)))
    body = file_client.post("/predict", files={"file": ("x.png", image, "image/png")}).json()
    assert body["runtime"] == "onnxruntime" and body["top"][0]["label"] in CLASSES
    refused = file_client.post("/explain", files={"file": ("x.png", image, "image/png")})
    assert refused.status_code == 422 and "serve the checkpoint" in refused.json()["detail"]
