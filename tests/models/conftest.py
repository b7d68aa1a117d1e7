"""Model tests run single-threaded: their tensors are tiny, and on a shared 2-core machine torch's
spinning worker threads made them several times slower (measured: 2.5 s vs 12.5 s for resnet101)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
