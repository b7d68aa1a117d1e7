"""Model tests run single-threaded: their tensors are tiny, and on a shared 2-core machine torch's
spinning worker threads made them several times slower (measured: 2.5 s vs 12.5 s for resnet101)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """Every test here runs with torch on one thread (the root conftest's ``one_thread``)."""
