"""Images in the explorer: a huge one is resized with a note, bad uploads are refused, built-in pictures and the
--data folder, the maps grid, Grad-CAM per class and the top-9 patches of a unit."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from cnnlab.explain import explain
from cnnlab.explore import Explorer, create_app, subject_of
from cnnlab.explore.images import MAX_SIDE
from cnnlab.explore.maps import map_grid
from cnnlab.explore.samples import SAMPLES
from cnnlab.tasks.classify.predictor import load_classifier
from tests.explore.conftest import CLASSES, picture, png_bytes


@pytest.fixture(scope="module")
def explorer(classifier_checkpoint, image_folder):
    return Explorer(subject_of(load_classifier(classifier_checkpoint)), image_folder)


@pytest.fixture(scope="module")
def client(explorer):
    return TestClient(create_app(explorer, max_upload_bytes=2_000_000))


def _upload(client, data: bytes, kind: str = "image/png"):
    return client.post("/api/images", content=data, headers={"Content-Type": kind})


def test_a_huge_image_is_resized_with_a_note(client, explorer):
    huge = np.zeros((3000, 4500, 3), np.uint8)
    huge[:, 2250:] = 255  # a vertical edge, compressed to a few kB
    answer = _upload(client, png_bytes(huge))
    assert answer.status_code == 200
    notes = answer.json()["notes"]
    assert notes[0] == (
        f"the image is 4500x3000 pixels: resized to {MAX_SIDE}x1365 in memory first "
        f"(larger images are shrunk to {MAX_SIDE} pixels on the longer side)"
    )
    assert notes[1] == f"{MAX_SIDE}x1365 -> 28x28 (stretch): the model's input size"
    seen = explorer._get(answer.json()["id"])
    assert tuple(seen.x.shape) == (1, 28, 28)
    picture_ = np.asarray(Image.open(io.BytesIO(client.get(f"/api/images/{seen.id}/input.png").content)))
    assert picture_.shape == (28, 28) and picture_[:, :10].max() < 40 and picture_[:, -10:].min() > 215


def test_a_small_image_gets_only_the_fit_note(client):
    notes = _upload(client, png_bytes(picture(size=(40, 48)))).json()["notes"]
    assert notes == ["48x40 -> 28x28 (stretch): the model's input size"]


@pytest.mark.parametrize(
    ("data", "kind", "status", "text"),
    [
        (b"not really a png", "image/png", 400, "not an image Pillow can read"),
        (b"", "image/png", 400, "empty"),
        (b"abc", "text/plain", 415, "unsupported Content-Type 'text/plain'"),
        (b"0" * 2_000_001, "image/png", 413, "larger than the limit of 2,000,000 bytes"),
    ],
    ids=["not-an-image", "empty", "wrong-type", "too-large"],
)
def test_bad_uploads_are_refused_with_the_reason(client, data, kind, status, text):
    answer = _upload(client, data, kind)
    assert answer.status_code == status and text in answer.json()["detail"]


def test_built_in_pictures_and_the_data_folder(client, explorer):
    info = client.get("/api/model").json()
    assert info["samples"] == list(SAMPLES) and info["data"]["images"][0] == "disc/0.png"
    assert info["classes"] == CLASSES and info["trained"] and "trained weights from" in info["note"]
    for name in SAMPLES:
        assert client.post("/api/images/sample", params={"name": name}).status_code == 200
    assert client.post("/api/images/sample", params={"name": "cat"}).status_code == 422
    from_data = client.post("/api/images/data", params={"path": "stripes/3.png"})
    assert from_data.status_code == 200 and from_data.json()["origin"] == "stripes/3.png"
    outside = client.post("/api/images/data", params={"path": "../best.pt"})
    assert outside.status_code == 400 and "not an image of the --data folder" in outside.json()["detail"]


def test_the_layer_view_grid_is_the_layers_maps(client, explorer):
    image_id = client.post("/api/images/sample", params={"name": "disc"}).json()["id"]
    conv = next(layer for layer in explorer.layers if layer.type == "Conv2d")
    view = client.get(f"/api/images/{image_id}/layers/{conv.index}").json()
    grid = view["grid"]
    maps = explorer._get(image_id).calls[conv.index].output[0]  # (C, h, w)
    channels, height, width = maps.shape
    assert grid["channels"] == channels and (grid["tile_height"], grid["tile_width"]) == (
        height * grid["scale"],
        width * grid["scale"],
    )
    png = Image.open(io.BytesIO(base64.b64decode(grid["png"].split(",", 1)[1])))
    rows = -(-channels // grid["columns"])
    assert png.size == (
        grid["columns"] * (grid["tile_width"] + grid["gap"]) - grid["gap"],
        rows * (grid["tile_height"] + grid["gap"]) - grid["gap"],
    )
    assert grid["low"] == pytest.approx(maps.flatten(1).min(dim=1).values.tolist(), abs=1e-5)
    assert grid["high"] == pytest.approx(maps.flatten(1).max(dim=1).values.tolist(), abs=1e-5)
    # the brightest pixel of channel 5's tile is where that map peaks
    column, row = 5 % grid["columns"], 5 // grid["columns"]
    left, top = column * (grid["tile_width"] + grid["gap"]), row * (grid["tile_height"] + grid["gap"])
    tile = np.asarray(png.convert("L"))[top : top + grid["tile_height"], left : left + grid["tile_width"]]
    y, x = divmod(int(np.argmax(tile)), tile.shape[1])
    peak = maps[5].flatten().argmax()
    assert maps[5, y // grid["scale"], x // grid["scale"]] == pytest.approx(float(maps[5].flatten()[peak]), abs=1e-5)
    assert map_grid(maps).unit_at(left + x, top + y) == (5, y // grid["scale"], x // grid["scale"])
    head = client.get(f"/api/images/{image_id}/layers/0").json()
    assert "grid" not in head and head["vector"]["length"] == len(CLASSES)


def test_grad_cam_for_each_class(client, explorer):
    image_id = client.post("/api/images/sample", params={"name": "checkerboard"}).json()["id"]
    x = explorer._get(image_id).x[None]
    for target in range(len(CLASSES)):
        view = client.get(f"/api/images/{image_id}/cam", params={"target": target}).json()
        expected = explain(explorer.subject.model, x, "gradcam", None, target)
        probability = float(expected.logits.softmax(dim=1)[0, target])
        assert (view["class"], view["label"]) == (target, CLASSES[target])
        assert view["probability"] == pytest.approx(probability, abs=1e-6)
        assert Image.open(io.BytesIO(base64.b64decode(view["png"].split(",", 1)[1]))).size == (336, 336)
    predicted = client.get(f"/api/images/{image_id}/cam").json()["class"]
    assert predicted == int(explorer._get(image_id).probabilities.argmax())
    assert client.get(f"/api/images/{image_id}/cam", params={"target": 3}).status_code == 422


def test_top_patches_of_a_unit_come_from_the_data_folder(client, explorer, image_folder):
    conv = next(layer for layer in explorer.layers if layer.type == "Conv2d")
    top = client.get(f"/api/layers/{conv.index}/top", params={"channel": 2}).json()
    assert len(top["patches"]) == 9 and top["searched"] == top["images"] == 12
    values = [patch["value"] for patch in top["patches"]]
    assert values == sorted(values, reverse=True) and len({p["image"] for p in top["patches"]}) == 9
    best = top["patches"][0]  # its value is the channel's maximum over that image's map
    seen = explorer._get(client.post("/api/images/data", params={"path": best["image"]}).json()["id"])
    assert best["value"] == pytest.approx(float(seen.calls[conv.index].output[0, 2].max()), abs=1e-5)
    shared = next((layer for layer in explorer.layers if layer.calls > 1), None)
    if shared is not None:
        assert client.get(f"/api/layers/{shared.index}/top", params={"channel": 0}).status_code == 422


def test_without_a_data_folder_top_patches_say_how_to_get_them(classifier_checkpoint):
    client = TestClient(create_app(Explorer(subject_of(load_classifier(classifier_checkpoint)))))
    answer = client.get("/api/layers/1/top", params={"channel": 0})
    assert answer.status_code == 422 and "--data FOLDER" in answer.json()["detail"]
    assert client.get("/api/model").json()["data"] is None
