"""End to end: `cnnlab serve` in its own process, the page driven in headless Chromium with Playwright.

Skips with the reason when Playwright or Debian's chromium (/usr/bin/chromium) is missing; CI installs
both (`pip install playwright`, `apt-get install chromium`; no `playwright install` download needed).
"""

from __future__ import annotations

import pytest

from tests.serve.conftest import CLASSES, png_bytes
from tests.serve.test_server import serve_process

pytestmark = pytest.mark.slow


@pytest.fixture
def server(classifier_checkpoint):
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    with serve_process(classifier_checkpoint, wait_s=240) as url:  # the default runtime exports to ONNX first
        yield url


def test_upload_shows_the_predicted_class_and_the_heatmap(browser, server, tmp_path):
    import numpy as np

    yy, xx = np.mgrid[:96, :96]
    picture = np.where((yy - 48) ** 2 + (xx - 48) ** 2 < 900, 230, 30).astype(np.uint8)  # a bright disc
    image = tmp_path / "disc.png"
    image.write_bytes(png_bytes(np.stack([picture, picture // 2, 255 - picture], axis=2)))

    page = browser.new_page(viewport={"width": 1000, "height": 760})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server)
    page.wait_for_selector("#model-info:has-text('cnn_small')")
    assert "runtime onnxruntime" in page.inner_text("#model-info")  # the default serving path
    page.set_input_files("#file", str(image))
    page.wait_for_selector("#top-classes li", timeout=60_000)
    page.wait_for_selector("#overlay-note:has-text('Where the model looked')", timeout=60_000)
    labels = page.locator("#top-classes li .name").all_inner_texts()
    assert sorted(labels) == sorted(CLASSES)
    assert f"Predicted: {labels[0]}" in page.inner_text("#status")
    assert labels[0] in page.inner_text("#overlay-note")
    page.wait_for_selector("#overlay:not([hidden])")
    assert page.locator("#overlay").evaluate("img => img.complete && img.naturalWidth") >= 320

    page.set_input_files("#file", {"name": "notes.png", "mimeType": "image/png", "buffer": b"not really a png"})
    page.wait_for_selector("#status.error")
    assert "400" in page.inner_text("#status") and "not an image" in page.inner_text("#status")
    assert errors == []
