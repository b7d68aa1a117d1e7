"""End to end: `cnnlab explore` in its own process, the page driven in headless Chromium with Playwright: pick a
picture, click a layer and a unit, and the unit's numbers (the API's) appear; with CNNLAB_DOCS_SCREENSHOTS=1 it
saves docs/images/explore.png (otherwise a screenshot under tmp_path: a test run leaves the repository as it was).

Skips with the reason when Playwright or Debian's chromium is missing (as tests/serve/test_browser.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.browser import cnnlab_server
from tests.explore.conftest import png_bytes

pytestmark = pytest.mark.slow
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "explore.png"


def test_click_a_layer_and_a_unit_and_see_its_numbers(browser, classifier_checkpoint, image_folder, tmp_path):
    import httpx

    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    yy, xx = np.mgrid[:96, :96]
    disc = np.where((yy - 48) ** 2 + (xx - 40) ** 2 < 700, 230, 30).astype(np.uint8)
    upload = tmp_path / "disc.png"
    upload.write_bytes(png_bytes(np.stack([disc, disc // 2, 255 - disc], axis=2)))
    with cnnlab_server(["explore", str(classifier_checkpoint), "--data", str(image_folder)], wait_s=120) as url:
        layers = httpx.get(f"{url}/api/model", timeout=30).json()["layers"]
        conv = [layer for layer in layers if layer["type"] == "Conv2d"][1]  # a conv after the first conv's ReLU
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.wait_for_selector("#model-info:has-text('cnn_small')")
        page.set_input_files("#file", str(upload))
        page.wait_for_selector("#top-classes li", timeout=60_000)
        page.wait_for_selector("#cam:not([hidden])", timeout=60_000)
        assert "the model's input size" in page.inner_text("#image-notes")

        page.click(f"#layer-list button[data-index='{conv['index']}']")
        page.wait_for_selector(f"#layer-title:has-text('{conv['label']} (Conv2d)')")
        page.wait_for_function(
            "document.getElementById('grid').complete && document.getElementById('grid').naturalWidth > 0"
        )
        arithmetic = page.inner_text("#arithmetic")
        assert "floor((n + 2p - d(k - 1) - 1) / s) + 1" in arithmetic and f"{conv['params']:,}" in arithmetic

        image_id = page.evaluate("state.image")
        grid = httpx.get(f"{url}/api/images/{image_id}/layers/{conv['index']}", timeout=30).json()["grid"]
        channel, y, x = 5, 3, 4
        column, row = channel % grid["columns"], channel // grid["columns"]
        px = column * (grid["tile_width"] + grid["gap"]) + x * grid["scale"] + grid["scale"] // 2
        py = row * (grid["tile_height"] + grid["gap"]) + y * grid["scale"] + grid["scale"] // 2
        shown = page.evaluate(
            "(() => { const g = document.getElementById('grid'); return g.clientWidth / g.naturalWidth; })()"
        )
        page.locator("#grid").click(position={"x": px * shown, "y": py * shown})
        page.wait_for_selector(f"#unit-title:has-text('channel {channel}, row {y}, column {x}')", timeout=60_000)

        unit = httpx.get(
            f"{url}/api/images/{image_id}/layers/{conv['index']}/unit",
            params={"channel": channel, "y": y, "x": x},
            timeout=60,
        ).json()
        assert abs(unit["value"] - unit["dot"]) < 1e-4
        value = page.evaluate(f"number({unit['value']}, 7)")
        assert page.inner_text("#unit-value") == f"value {value}"
        equation = page.inner_text("#unit-math .equation")
        dot = page.evaluate(f"number({unit['dot']}, 7)")
        assert equation.endswith(f"= {dot}") and "(bias)" in equation
        assert page.locator("#unit-math .term").count() == len(unit["shown"])
        top, left, bottom, right = unit["box"]
        assert f"rows {top}…{bottom - 1}, columns {left}…{right - 1}" in page.inner_text("#unit-field")
        assert page.locator("#field-box").is_visible()
        page.wait_for_selector("#top-patches img >> nth=8", timeout=120_000)
        assert "strongest responses of channel 5" in page.inner_text("#top-note")

        shot = DOCS_SCREENSHOT if os.environ.get("CNNLAB_DOCS_SCREENSHOTS") == "1" else tmp_path / "explore.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        assert errors == []
