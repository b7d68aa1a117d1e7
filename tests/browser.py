"""Headless Chromium for the browser checks (the run report, the serving page): where it is, how it starts."""

from __future__ import annotations

import shutil
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
