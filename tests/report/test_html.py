"""The HTML report built from a run folder's files alone (no model, no training)."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import torch
from PIL import Image

from cnnlab.core.rundir import RunDir, atomic_write_text
from cnnlab.report.artefacts import MODEL_SUMMARY_FILE, Plot, write_evaluation
from cnnlab.report.html import SECTIONS, write_report
from cnnlab.report.plots import plot_image_grid
from cnnlab.train.metrics import classification_summary


def _run(tmp_path) -> RunDir:
    run = RunDir.create(tmp_path, "classify", "files")
    atomic_write_text(run.config, "model:\n  name: cnn_small\ndata:\n  source: shapes <&>\n")
    return run


def test_a_full_run_folder_gives_every_section_with_embedded_pngs(tmp_path):
    run = _run(tmp_path)
    run.write_metrics(
        [{"epoch": e, "loss": 1 / e, "acc": 0.5 + e / 10, "val_loss": 1.2 / e, "val_acc": 0.4 + e / 10, "lr": 0.01 / e,
          "time_s": 1.5} for e in (1, 2, 3)]
    )  # fmt: skip
    atomic_write_text(
        run.path / "results.json", json.dumps({"test_acc": 0.75, "fit_seconds": 4.5, "machine": {"cpu": "x"}})
    )
    atomic_write_text(run.path / MODEL_SUMMARY_FILE, "Net: 10 parameters\n")
    tiles = [np.full((8, 8), 40 * i, np.uint8) for i in range(4)]
    plot_image_grid(tiles, list("abcd"), run.plots / Plot.SAMPLES)
    plot_image_grid(tiles[::-1], list("dcba"), run.plots / Plot.AUGMENTED)
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    summary = classification_summary(probs, torch.tensor([0, 1, 1, 2]), ["cat", "dog", "<b>"])
    mistakes = (np.zeros((1, 8, 8, 1), np.uint8), np.ones((1, 8, 8)))
    variants = [{"name": "single model", "accuracy": 0.75, "ece": 0.1, "seconds": 1.0}]
    write_evaluation(run.path, summary, "Test set", mistakes, {"variants": variants})
    page = write_report(run.path).read_text()

    ids = re.findall(r'<section id="([^"]+)">', page)
    assert ids == [key for key, _ in SECTIONS]
    assert 'class="missing"' not in page.split("<script>")[0]
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 8
    for data in images:
        assert Image.open(io.BytesIO(base64.b64decode(data))).format == "PNG"
    assert "<td>&lt;b&gt;</td>" in page  # class names are escaped
    assert "shapes &lt;&amp;&gt;" in page  # the config is escaped too
    assert "<td>dog</td><td>1.0000</td><td>0.5000</td><td>0.6667</td><td>2</td>" in page  # per-class row
    assert "<td>dog</td><td>cat</td><td>1</td>" in page  # most-confused pair


def test_an_untrained_run_folder_says_what_adds_each_part(tmp_path):
    run = _run(tmp_path)
    page = write_report(run.path).read_text()
    assert page.count("<section id=") == len(SECTIONS)
    assert f"cnnlab evaluate {run.path}" in page and "<code>cnnlab train</code> writes it" in page
    assert "<img" not in page
