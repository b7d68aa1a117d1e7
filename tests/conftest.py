"""Shared fixtures: where ../shared/data is, and skipping `data` tests when it is absent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CNNLAB_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SHARED_DATA.is_dir():
        return
    skip = pytest.mark.skip(reason=f"needs the shared datasets at {SHARED_DATA} (set CNNLAB_SHARED_DATA)")
    for item in items:
        if item.get_closest_marker("data") is not None:  # the marker, not the keyword: tests/data/ is a folder name
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder holding the real datasets and weights (tests using it are marked `data`)."""
    return SHARED_DATA


@pytest.fixture
def one_thread() -> Iterator[None]:
    """torch on one thread for the test: tiny tensors run several times faster without torch's spinning
    worker threads on a shared 2-core machine (measured: 2.5 s vs 12.5 s for resnet101's tests)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def browser() -> Iterator[object]:
    """Headless Chromium through Playwright; skips with the reason when either is missing."""
    from tests.browser import CHROMIUM, HEADLESS_FLAGS

    sync_api = pytest.importorskip("playwright.sync_api", reason="the Python package playwright is not installed")
    if CHROMIUM is None:
        pytest.skip("no browser: chromium is not on PATH (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=HEADLESS_FLAGS, headless=True)
        yield chromium
        chromium.close()
