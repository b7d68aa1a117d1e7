"""Bad input to `cnnlab export`: each refusal is one line saying what, where and what to do (with export's options)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

import cnnlab.export.formats
from cnnlab.cli.app import main
from cnnlab.core import rundir
from cnnlab.core.errors import RunDirError
from cnnlab.core.rundir import save_checkpoint
from cnnlab.models import create_model


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The CLI's one `error:` line (and no traceback)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("run") / "checkpoints" / "best.pt"
    path.parent.mkdir()
    model = create_model("cnn_small", num_classes=2, in_chans=1)
    state = {"model": model.state_dict(), "config": {"model": {"name": "cnn_small"}}, "classes": ["a", "b"]}
    save_checkpoint(path, {**state, "mean": [0.5], "std": [0.25], "input_size": [1, 28, 28]})
    return path


# --- 1. an output folder that cannot be written: the fix is --out, not --runs-dir -----------------------
def test_a_read_only_out_folder_asks_for_another_out(checkpoint: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):  # root ignores permissions: fail the write as a read-only disk would

        def read_only(*args: object, **kwargs: object) -> None:
            raise OSError(errno.EROFS, "Read-only file system")

        monkeypatch.setattr(rundir.tempfile, "mkstemp", read_only)
    out = folder / "export"
    assert main(["export", str(checkpoint), "--format", "safetensors", "--out", str(out)]) == 2
    line = error_line(capsys)
    assert line.startswith("error: cannot write the export: ") and f"[{out}]" in line
    assert "Fix: pass --out with a folder you can write to" in line and "--runs-dir" not in line
    assert not any(out.parent.rglob("*.safetensors*"))


def test_a_write_failing_during_the_export_asks_for_another_out(checkpoint: Path, tmp_path: Path, monkeypatch, capsys):
    def disk_full(path: Path, data: bytes) -> None:
        raise RunDirError("no space left on device", where=str(path), fix="free space, or use --runs-dir elsewhere")

    monkeypatch.setattr(cnnlab.export.formats, "atomic_write_bytes", disk_full)
    assert main(["export", str(checkpoint), "--format", "safetensors", "--out", str(tmp_path / "x")]) == 2
    line = error_line(capsys)
    assert "no space left on device" in line and "--out" in line and "--runs-dir" not in line


# --- 7. a folder or .pt that is no cnnlab checkpoint ---------------------------------------------------
def test_exporting_a_folder_without_a_checkpoint_says_so(tmp_path: Path, capsys) -> None:
    assert main(["export", str(tmp_path)]) == 2
    line = error_line(capsys)
    assert "not a run folder: it has no checkpoints/best.pt" in line and f"[{tmp_path}]" in line


def test_exporting_a_run_without_best_pt_says_so(tmp_path: Path, capsys) -> None:
    (tmp_path / "config.yaml").write_text("task: classify\n")
    assert main(["export", str(tmp_path)]) == 2
    assert "the run has no checkpoints/best.pt yet" in error_line(capsys)


def test_exporting_a_damaged_pt_gets_a_fix_for_exporting(tmp_path: Path, capsys) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x80\x04junk" * 64)
    assert main(["export", str(path)]) == 2
    line = error_line(capsys)
    assert "checkpoint is damaged" in line and "resume" not in line and "written by `cnnlab train`" in line


def test_exporting_a_foreign_checkpoint_is_one_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, path)
    assert main(["export", str(path)]) == 2
    assert "not a cnnlab classifier checkpoint" in error_line(capsys)


def test_exporting_a_missing_checkpoint_says_not_found(tmp_path: Path, capsys) -> None:
    assert main(["export", str(tmp_path / "gone.pt")]) == 2
    assert "checkpoint not found" in error_line(capsys)
