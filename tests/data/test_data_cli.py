"""``cnnlab data inspect`` and ``cnnlab augment`` on a small synthetic folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli.app import main


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for name, count in (("cats", 3), ("dogs", 2)):
        (tmp_path / "set" / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (12, 10 + i, 3), dtype=np.uint8)).save(
                tmp_path / "set" / name / f"{i}.png"
            )
    (tmp_path / "set" / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    return tmp_path / "set"


@pytest.mark.slow
def test_inspect_prints_counts_sizes_problems_and_writes_a_grid(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = folder.parent / "grid.png"
    assert main(["data", "inspect", str(folder), "--grid", str(grid), "--per-class", "2"]) == 0
    out = capsys.readouterr().out
    assert "5 samples, 2 classes" in out and "cats" in out and "60.0%" in out
    assert "10x12 (2)" in out and "modes: RGB (5)" in out and "on images resized to 224x224" in out
    assert "broken.jpg" in out and "1 file(s) skipped" in out
    assert Image.open(grid).format == "PNG"
    assert main(["data", "inspect", str(folder), "--strict", "--grid", str(grid)]) == 2
    assert "broken.jpg" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::cnnlab.data.cache.DataWarning")
def test_augment_writes_a_grid_and_rejects_unknown_presets(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = folder.parent / "aug.png"
    args = ["augment", str(folder), "--preset", "cifar", "--size", "32", "--out", str(out), "--samples", "2"]
    assert main([*args, "--variants", "3"]) == 0
    assert Image.open(out).size[0] > 200
    assert main(["augment", str(folder), "--preset", "cifra", "--out", str(out)]) == 2
    assert "did you mean 'cifar'" in capsys.readouterr().err
