import os
import pickle

import pytest
import torch

from cnnlab.core.errors import RunDirError
from cnnlab.core.rundir import RunDir, atomic_write_bytes, load_checkpoint, save_checkpoint


def test_runs_never_overwrite_each_other(tmp_path):
    names = [RunDir.create(tmp_path, "classify", "demo").path.name for _ in range(3)]
    assert names == ["demo-1", "demo-2", "demo-3"]
    run = RunDir(tmp_path / "classify" / "demo-2")
    assert run.checkpoints.is_dir() and run.plots.is_dir()


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "metrics.csv"
    atomic_write_bytes(target, b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(target, object())  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["metrics.csv"]


def test_checkpoint_round_trip_and_unsafe_pickle_refused(tmp_path):
    state = {"model": {"w": torch.ones(2)}, "epoch": 3, "history": [{"loss": 0.5}]}
    save_checkpoint(tmp_path / "last.pt", state)
    loaded = load_checkpoint(tmp_path / "last.pt")
    assert loaded["epoch"] == 3 and torch.equal(loaded["model"]["w"], torch.ones(2))

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(RunDirError, match="refused"):
        load_checkpoint(tmp_path / "evil.pt")


def test_open_requires_a_run_folder_and_removes_stale_temp_files(tmp_path):
    with pytest.raises(RunDirError, match="not a run folder"):
        RunDir.open(tmp_path)
    run = RunDir.create(tmp_path, "classify", "x")
    run.config.write_text("{}")
    (run.checkpoints / ".last.pt.abc.tmp").write_bytes(b"half")
    RunDir.open(run.path)
    assert not list(run.checkpoints.iterdir())


def test_metrics_rows_round_trip(tmp_path):
    run = RunDir.create(tmp_path, "classify", "m")
    run.write_metrics([{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25, "val_acc": 0.9}])
    rows = run.read_metrics()
    assert [r["epoch"] for r in rows] == ["1", "2"] and rows[1]["val_acc"] == "0.9" and rows[0]["val_acc"] == ""
