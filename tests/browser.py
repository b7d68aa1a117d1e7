"""Headless Chromium for the browser checks (the run report, the serving and explore pages): where it is, how it
starts, and a ``cnnlab`` server in its own process for it to open (the ``browser`` fixture is in tests/conftest.py)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

_FOUND = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM: Path | None = Path(_FOUND) if _FOUND else None
"""The Chromium binary on PATH (Debian: apt-get install -y chromium), or None."""

HEADLESS_FLAGS = [
    "--headless",
    "--no-sandbox",  # tests run as root in containers
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",  # offline: no update checks, no sync
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    """A TCP port nothing listens on now (on loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def cnnlab_server(args: list[str], wait_s: float) -> Iterator[str]:
    """``cnnlab ARGS --port P`` (``serve`` or ``explore``) in its own process; its URL once /health answers (within
    ``wait_s``); terminated afterwards."""
    import httpx

    port = free_port()
    command = [sys.executable, "-m", "cnnlab.cli.app", *args, "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait_s
    try:
        while True:
            assert process.poll() is None, f"{args[0]} exited: {process.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, f"{args[0]} did not answer /health in {wait_s:.0f} s"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
