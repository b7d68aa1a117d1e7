"""Serving an embedder: `/verify` (two photos: the same person?), `/embed`, `/model`, the CLI and the page.

A tiny embedding run (LeNet-5 under an 8-D embedding head, random weights) is written the way
`cnnlab train --task embed` writes one, without training. Its answers are checked against the network run
by hand on pixels normalised by hand; the face front-end is a stand-in detector where a face must be found
or not, and dlib's pretrained model with the real front-end (marked `data`) on ORL faces pasted at known places.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")
pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

from fastapi.testclient import TestClient  # noqa: E402

from cnnlab.cli.app import main  # noqa: E402
from cnnlab.core.errors import WeightsError  # noqa: E402
from cnnlab.core.rundir import load_checkpoint, save_checkpoint  # noqa: E402
from cnnlab.models import create_model  # noqa: E402
from cnnlab.models.embed.head import EmbeddingNet  # noqa: E402
from cnnlab.serve import create_app, load_served  # noqa: E402
from cnnlab.tasks.detect.faces import Face  # noqa: E402
from cnnlab.tasks.embed.frontend import FaceFrontEnd  # noqa: E402
from tests.serve.conftest import png_bytes  # noqa: E402
from tests.serve.test_server import free_port, serve_process  # noqa: E402

PEOPLE = ["ann", "bob", "cy"]
THRESHOLD = 0.5
DIM = 8
MEAN, STD = 0.5, 0.25
FACE_BOX = (40.0, 50.0, 120.0, 150.0)  # where the stand-in detector "finds" a face


def embedding_net(state: dict | None = None) -> EmbeddingNet:
    torch.manual_seed(0)
    net = EmbeddingNet(create_model("lenet5", num_classes=2, in_chans=1), dim=DIM)
    if state is not None:
        net.load_state_dict(state)
    return net.eval()


def write_embed_run(folder: Path) -> Path:
    """A run folder as `cnnlab train --task embed` leaves it: config.yaml and checkpoints/best.pt with the
    entries the pipeline stores (input size, normalisation, people, threshold)."""
    state = {
        "model": embedding_net().state_dict(),
        "task": "embed",
        "classes": PEOPLE,
        "mean": [MEAN],
        "std": [STD],
        "input_size": [1, 32, 32],
        "model_name": "lenet5",
        "model_options": {"dim": DIM},
        "fit": "stretch",
        "threshold": THRESHOLD,
    }
    save_checkpoint(folder / "checkpoints" / "best.pt", state)
    (folder / "config.yaml").write_text("task: embed\nname: lenet5\n", encoding="utf-8")
    return folder


def grey(seed: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)


def by_hand(net: EmbeddingNet, pixels: np.ndarray) -> torch.Tensor:
    """The embedding of a 32x32 grey picture: 0..1, then (x - mean) / std, through the network."""
    x = (torch.from_numpy(pixels.astype(np.float32)) / 255 - MEAN) / STD
    with torch.no_grad():
        return net(x[None, None])[0]


def photos(first: bytes, second: bytes) -> dict[str, tuple[str, bytes, str]]:
    return {"first": ("a.png", first, "image/png"), "second": ("b.png", second, "image/png")}


class BrightFaces:
    """A detector stand-in: a face at FACE_BOX in a bright picture, none in a dark one."""

    def detect(self, image: np.ndarray) -> list[Face]:
        return [Face(FACE_BOX, 0.9)] if image.mean() > 128 else []


@pytest.fixture(scope="module")
def embed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_embed_run(tmp_path_factory.mktemp("embed") / "lenet5-1")


@pytest.fixture(scope="module")
def client(embed_run: Path) -> TestClient:
    return TestClient(create_app(load_served(embed_run), max_upload_bytes=100_000))


@pytest.fixture(scope="module")
def net(embed_run: Path) -> EmbeddingNet:
    return embedding_net(load_checkpoint(embed_run / "checkpoints" / "best.pt")["model"])


def test_model_says_embed_with_the_stored_threshold_and_people(client: TestClient, embed_run: Path) -> None:
    info = client.get("/model").json()
    assert info["task"] == "embed" and info["embedder"] == "lenet5" and info["classes"] == PEOPLE
    assert info["threshold"] == load_checkpoint(embed_run / "checkpoints" / "best.pt")["threshold"]
    assert info["input"]["shape"] == ["batch", 1, 32, 32] and info["output"]["shape"] == ["batch", DIM]
    assert info["preprocessing"]["mean"] == [MEAN] and info["preprocessing"]["fit"]["method"] == "stretch"
    assert info["endpoints"] == {
        "predict": False,
        "explain": False,
        "segment": False,
        "detect": False,
        "verify": True,
        "embed": True,
    }
    assert client.get("/health").json()["task"] == "embed"
    refused = client.post("/predict", files={"file": ("a.png", png_bytes(grey(0)), "image/png")})
    assert refused.status_code == 404 and "is an embed model" in refused.json()["detail"]


def test_the_same_photo_twice_is_distance_zero_and_the_same_person(client: TestClient) -> None:
    data = png_bytes(grey(1))
    body = client.post("/verify?faces=none", files=photos(data, data)).json()
    assert body["distance"] == pytest.approx(0.0, abs=1e-6) and body["same"] is True
    assert body["threshold"] == THRESHOLD and body["faces"] == "none" and body["elapsed_ms"] >= 0
    for photo in ("first", "second"):
        assert body[photo]["box"] is None and "whole picture" in body[photo]["face"]


def test_distance_and_verdict_are_the_networks_on_hand_normalised_pixels(client: TestClient, net) -> None:
    first, second = grey(2), grey(3)
    want = float((by_hand(net, first) - by_hand(net, second)).norm())
    assert want > 0.01
    body = client.post("/verify?faces=none", files=photos(png_bytes(first), png_bytes(second))).json()
    assert body["distance"] == pytest.approx(want, abs=1e-4)
    assert body["same"] is (want <= THRESHOLD)
    for threshold, same in ((0.9 * want, False), (1.1 * want, True)):
        answer = client.post(
            f"/verify?faces=none&threshold={threshold}", files=photos(png_bytes(first), png_bytes(second))
        )
        assert answer.json()["same"] is same and answer.json()["threshold"] == pytest.approx(threshold, abs=1e-6)


def test_embed_returns_the_networks_vector(client: TestClient, net) -> None:
    pixels = grey(4)
    body = client.post("/embed?faces=none", files={"file": ("a.png", png_bytes(pixels), "image/png")}).json()
    torch.testing.assert_close(torch.tensor(body["embedding"]), by_hand(net, pixels), atol=1e-5, rtol=0)
    assert len(body["embedding"]) == DIM and body["box"] is None and "whole picture" in body["face"]


def test_a_classifier_has_no_verify(classifier_checkpoint: Path) -> None:
    client = TestClient(create_app(load_served(classifier_checkpoint, runtime="torch")))
    data = png_bytes(grey(0))
    for path in ("/verify", "/embed"):
        files = photos(data, data) if path == "/verify" else {"file": ("a.png", data, "image/png")}
        response = client.post(path, files=files)
        assert response.status_code == 404
        detail = response.json()["detail"]
        assert f"{path} is not available" in detail and "is a classify model" in detail and "--task embed" in detail


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"first": ("a.png", png_bytes(grey(0)), "image/png")}, "the form has no file 'second'"),
        ({"second": ("b.png", png_bytes(grey(0)), "image/png")}, "the form has no file 'first'"),
        (photos(png_bytes(grey(0)), b""), "the file 'second' is empty"),
        (photos(png_bytes(grey(0)), b"not a picture"), "the second photo: not an image"),
        (photos(png_bytes(grey(0))[:200], png_bytes(grey(0))), "the first photo: corrupt or truncated"),
    ],
    ids=["no-second", "no-first", "empty-second", "second-not-an-image", "first-truncated"],
)
def test_a_missing_or_bad_photo_is_400_naming_it(client: TestClient, files: dict, message: str) -> None:
    response = client.post("/verify?faces=none", files=files)
    assert response.status_code == 400 and message in response.json()["detail"]


def test_one_image_in_the_body_and_a_bad_faces_mode_are_refused(client: TestClient) -> None:
    raw = client.post("/verify", content=png_bytes(grey(0)), headers={"Content-Type": "image/png"})
    assert raw.status_code == 400 and "'first' and 'second' as multipart/form-data" in raw.json()["detail"]
    data = png_bytes(grey(0))
    assert client.post("/verify?faces=maybe", files=photos(data, data)).status_code == 422
    assert client.post("/verify?faces=none&threshold=-1", files=photos(data, data)).status_code == 422


def test_each_photo_may_be_up_to_the_limit(client: TestClient) -> None:
    big = png_bytes(grey(5, size=250))  # ~63 kB each: both together are over the 100 kB limit, each is under
    assert 50_000 < len(big) < 100_000
    assert client.post("/verify?faces=none", files=photos(big, big)).status_code == 200
    too_big = png_bytes(grey(6, size=350))
    response = client.post("/verify?faces=none", files=photos(too_big, big))
    assert response.status_code == 413 and "the first photo is larger than the limit" in response.json()["detail"]


def test_no_face_found_is_422_naming_the_photo_and_a_found_face_has_its_box(embed_run: Path) -> None:
    served = load_served(embed_run)
    served.embedder._front = FaceFrontEnd(detector=BrightFaces(), onet=None)  # type: ignore[arg-type]
    client = TestClient(create_app(served))
    bright, dark = (png_bytes(np.full((200, 200), level, np.uint8)) for level in (220, 30))  # > 160 px: no fallback
    response = client.post("/verify", files=photos(bright, dark))
    assert response.status_code == 422
    assert response.json()["detail"].startswith("no face found in the second photo")
    assert "faces=none" in response.json()["detail"]
    assert "first photo" in client.post("/verify?faces=detect", files=photos(dark, bright)).json()["detail"]
    found = client.post("/verify", files=photos(bright, bright)).json()
    assert found["first"]["box"] == list(FACE_BOX) and found["same"] is True
    assert client.post("/verify?faces=none", files=photos(bright, dark)).status_code == 200  # no detector asked


def test_missing_face_weights_are_503_with_the_way_round(embed_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served = load_served(embed_run)

    def no_weights() -> None:
        raise WeightsError("tiny_face_detector.pth not found in /nowhere", where="face weights")

    monkeypatch.setattr(served.embedder, "front_end", no_weights)
    data = png_bytes(grey(0))
    response = TestClient(create_app(served)).post("/verify", files=photos(data, data))
    assert response.status_code == 503
    assert "not found in /nowhere" in response.json()["detail"] and "faces=none" in response.json()["detail"]


def test_the_cli_serves_an_embed_run(embed_run: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, sockets: None)
    assert main(["serve", str(embed_run), "--port", str(free_port())]) == 0
    assert "Serving lenet5 (embed) with torch" in capsys.readouterr().err


# --- dlib's pretrained embedder with the real face front-end ------------------------------------------------------
def pasted_face(shared_data: Path, subject: int, shot: int, at: tuple[int, int] = (150, 140)) -> bytes:
    """An ORL face (92 x 112) pasted at its own size into a 400 x 400 grey picture (where the detector finds it)."""
    canvas = Image.new("RGB", (400, 400), (128, 128, 128))
    canvas.paste(Image.open(shared_data / "att-faces" / f"s{subject}" / f"{shot}.pgm").convert("RGB"), at)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def iou(a: list[float], b: tuple[float, ...]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def dlib_client(shared_data: Path) -> Iterator[TestClient]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CNNLAB_SHARED_DATA", str(shared_data))  # the face weights, whatever the working directory
        yield TestClient(create_app(load_served("dlib_resnet29")))


@pytest.mark.data
def test_dlib_is_served_by_name_with_its_threshold(dlib_client: TestClient) -> None:
    info = dlib_client.get("/model").json()
    assert info["task"] == "embed" and info["name"] == "dlib_resnet29" and info["classes"] == []
    assert info["threshold"] == 0.6 and info["output"]["shape"] == ["batch", 128]
    assert info["preprocessing"]["prepare"] == "dlib_chip"


@pytest.mark.data
def test_dlib_verify_finds_the_faces_and_agrees_with_the_embedder_on_files(
    dlib_client: TestClient, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cnnlab.tasks.embed.embedder import Embedder

    monkeypatch.setenv("CNNLAB_SHARED_DATA", str(shared_data))
    first, second = pasted_face(shared_data, 1, 1), pasted_face(shared_data, 2, 1, at=(100, 200))
    body = dlib_client.post("/verify", files=photos(first, second)).json()
    assert iou(body["first"]["box"], (150, 140, 242, 252)) > 0.5  # where the faces were pasted
    assert iou(body["second"]["box"], (100, 200, 192, 312)) > 0.5
    assert "face found" in body["first"]["face"] and body["threshold"] == 0.6
    (tmp_path / "a.png").write_bytes(first)
    (tmp_path / "b.png").write_bytes(second)
    a, b = Embedder.load("dlib_resnet29").embed_files([tmp_path / "a.png", tmp_path / "b.png"], faces="auto")
    want = float((a.vector - b.vector).norm())
    assert body["distance"] == pytest.approx(want, abs=1e-3) and body["same"] is (want <= 0.6)
    again = dlib_client.post("/verify", files=photos(first, first)).json()
    assert again["distance"] == pytest.approx(0.0, abs=1e-5) and again["same"] is True


@pytest.mark.data
def test_dlib_verify_without_a_face_names_the_second_photo(dlib_client: TestClient, shared_data: Path) -> None:
    blank = png_bytes(np.full((400, 400, 3), 128, np.uint8))
    response = dlib_client.post("/verify", files=photos(pasted_face(shared_data, 1, 1), blank))
    assert response.status_code == 422 and response.json()["detail"].startswith("no face found in the second photo")


@pytest.mark.data
def test_the_cli_takes_the_pretrained_name(shared_data: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNLAB_SHARED_DATA", str(shared_data))
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, sockets: None)
    assert main(["serve", "dlib_resnet29", "--port", str(free_port())]) == 0
    assert "Serving dlib_resnet29 (embed)" in capsys.readouterr().err


# --- the page in headless Chromium ------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_page_compares_two_photos(browser, embed_run: Path, tmp_path: Path) -> None:
    image = tmp_path / "face.png"
    image.write_bytes(png_bytes(grey(7)))
    with serve_process(embed_run, wait_s=120) as url:
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.wait_for_selector("#model-info:has-text('face verification')")
        assert page.locator("#drop").is_hidden() and page.locator("#verify").is_visible()
        assert page.locator("#compare").is_disabled()
        page.set_input_files("#file-first", str(image))
        page.set_input_files("#file-second", str(image))
        page.select_option("#faces", "none")
        page.click("#compare")
        page.wait_for_selector("#verdict-text:has-text('Same person')", timeout=30_000)
        assert "Distance 0.0000" in page.inner_text("#verdict-detail")
        assert f"threshold {THRESHOLD:.4f}" in page.inner_text("#verdict-detail")
        assert "whole picture" in page.inner_text("#note-second")
        assert page.locator("#preview-first").evaluate("img => img.complete && img.naturalWidth") == 32

        page.set_input_files("#file-second", {"name": "notes.png", "mimeType": "image/png", "buffer": b"not a png"})
        page.click("#compare")
        page.wait_for_selector("#status.error")
        assert "400" in page.inner_text("#status") and "the second photo" in page.inner_text("#status")
        assert errors == []
