"""The report of a small run, opened in headless Chromium: every section there, every image decoded."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.report.html import SECTIONS
from tests.browser import CHROMIUM, HEADLESS_FLAGS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="no chromium on PATH: apt-get install -y chromium (Debian) to run the browser check"
    ),
]


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium, offline and without a sandbox (tests run as root in containers)."""
    command = [
        str(CHROMIUM),
        *HEADLESS_FLAGS,
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",  # let the load handler run before the DOM is dumped
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=True)


class _Dom(HTMLParser):
    """Section ids, each image's section and decode mark, and sections that say something is missing."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[tuple[str, str | None]] = []
        self.missing: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "section":
            self.sections.append(str(attributes["id"]))
        elif tag == "img":
            self.images.append((self.sections[-1], attributes.get("data-decoded")))
        elif "missing" in (attributes.get("class") or "").split():
            self.missing.append(self.sections[-1])


def test_report_renders_every_section_with_its_images(small_run, tmp_path):
    uri = (small_run / "report.html").as_uri()
    dom = _Dom()
    dom.feed(chromium(tmp_path / "profile-dom", "--dump-dom", uri).stdout)
    assert dom.sections == [key for key, _ in SECTIONS]
    assert not dom.missing, f"sections without their files: {dom.missing}"
    with_images = {section for section, _ in dom.images}
    assert with_images == {"curves", "lr", "samples", "confusion", "calibration", "mistakes"}
    assert len(dom.images) == 8 and all(mark == "yes" for _, mark in dom.images), dom.images

    shot = tmp_path / "report.png"
    chromium(tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,4000", uri)
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.shape == (4000, 1280)
    assert pixels.std() > 20  # text and figures, not a blank page
