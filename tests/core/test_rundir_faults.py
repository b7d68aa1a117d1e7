"""Fault cases of run folders and checkpoints: empty, hostile and missing files, a full disk, two processes."""

import errno
import io
import os
import pickle
import signal
import time

import pytest
import torch

from cnnlab.core.errors import CnnlabError, ConfigError, RunDirError
from cnnlab.core.rundir import RunDir, atomic_write_bytes, atomic_write_text, load_checkpoint, save_checkpoint


def test_empty_checkpoint_is_named_empty_not_an_index_error(tmp_path):
    empty = tmp_path / "last.pt"
    empty.write_bytes(b"")
    with pytest.raises(RunDirError) as caught:
        load_checkpoint(empty)
    assert caught.value.what == "checkpoint is empty or truncated"
    assert caught.value.where == str(empty)
    assert caught.value.fix == "resume from checkpoints/best.pt or start again"


def test_truncated_checkpoint_is_named_truncated(tmp_path):
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(100)}, buffer)
    cut = tmp_path / "last.pt"
    cut.write_bytes(buffer.getvalue()[:300])
    with pytest.raises(RunDirError, match="damaged or truncated"):
        load_checkpoint(cut)


class _MakesDirectory:
    """Unpickling this creates a folder: proof that code ran."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


@pytest.mark.parametrize("form", ["pickle", "pickle-protocol-2", "torch.save"])
def test_hostile_checkpoint_is_refused_without_running_it(tmp_path, form):
    marker = tmp_path / "code-ran"
    payload = {"model": {"w": torch.ones(1)}, "x": _MakesDirectory(str(marker))}
    if form == "torch.save":
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        data = buffer.getvalue()
    else:
        data = pickle.dumps(payload, protocol=2 if form == "pickle-protocol-2" else pickle.DEFAULT_PROTOCOL)
    hostile = tmp_path / "evil.pt"
    hostile.write_bytes(data)

    with pytest.raises(RunDirError) as caught:
        load_checkpoint(hostile)
    message = str(caught.value)
    assert message.startswith("refused: the file holds objects other than tensors (posix.mkdir; it could run code)")
    assert "cnnlab loads only plain checkpoints" in message
    assert "weights_only" not in message and "damaged" not in message
    assert not marker.exists()


def test_resume_checkpoint_requires_last_pt(tmp_path):
    run = RunDir.create(tmp_path, "classify", "r")
    with pytest.raises(RunDirError) as caught:
        run.resume_checkpoint()
    assert caught.value.what == f"nothing to resume: {run.last_checkpoint} is missing"
    assert "start a new run" in caught.value.fix
    save_checkpoint(run.last_checkpoint, {"epoch": 1})
    assert run.resume_checkpoint() == run.last_checkpoint


def test_lock_refuses_a_second_holder_and_is_released_on_errors(tmp_path):
    run = RunDir.create(tmp_path, "classify", "l")
    with pytest.raises(RuntimeError, match="boom"), run.lock():
        with pytest.raises(ConfigError) as caught, run.lock():
            pass
        assert caught.value.what == f"run {run.path} is in use by another process (pid {os.getpid()})"
        raise RuntimeError("boom")
    with run.lock():  # released by the exception above
        pass


def test_lock_held_by_another_process_names_it_and_a_killed_holder_does_not_block(tmp_path):
    run = RunDir.create(tmp_path, "classify", "p")
    ready, tell = os.pipe()
    holder = os.fork()
    if holder == 0:  # the child holds the lock until it is killed
        try:
            with run.lock():
                os.write(tell, b"1")
                time.sleep(60)
        finally:
            os._exit(0)
    os.close(tell)  # a child that dies early then ends the read below
    try:
        assert os.read(ready, 1) == b"1"
        with pytest.raises(ConfigError, match=rf"in use by another process \(pid {holder}\)"), run.lock():
            pass
    finally:
        os.kill(holder, signal.SIGKILL)  # no clean-up runs: the lock file stays
        os.waitpid(holder, 0)
    assert (run.path / ".lock").is_file()
    with run.lock():
        pass


def _failing(code: int):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    return fail


@pytest.mark.parametrize(
    ("code", "what", "fix"),
    [
        (errno.ENOSPC, "no space left on device", "free space on that disk, or use --runs-dir elsewhere"),
        (errno.EROFS, "the file system is read-only", "use --runs-dir on a writable disk"),
        (errno.EACCES, "permission denied", "choose a writable folder with --runs-dir, or fix its permissions"),
    ],
)
def test_failed_write_names_the_file_and_leaves_no_temp(tmp_path, monkeypatch, code, what, fix):
    target = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint(target, {"epoch": 1})
    monkeypatch.setattr(os, "fsync", _failing(code))
    for write in (
        lambda: save_checkpoint(target, {"epoch": 2}),
        lambda: atomic_write_bytes(target, b"new"),
        lambda: atomic_write_text(target, "new"),
    ):
        with pytest.raises(CnnlabError) as caught:
            write()
        assert (caught.value.what, caught.value.where, caught.value.fix) == (what, str(target), fix)
    assert sorted(os.listdir(target.parent)) == ["last.pt"]
    assert load_checkpoint(target)["epoch"] == 1


def test_log_on_a_full_disk_names_the_log(tmp_path, monkeypatch):
    run = RunDir.create(tmp_path, "classify", "f")
    monkeypatch.setattr(type(run.log_file), "open", _failing(errno.ENOSPC))
    with pytest.raises(RunDirError, match="no space left on device") as caught:
        run.log("hello")
    assert caught.value.where == str(run.log_file)


def test_save_figure_on_a_full_disk_leaves_no_file(tmp_path, monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from matplotlib import pyplot

    from cnnlab.report.figures import save_figure

    monkeypatch.setattr(os, "replace", _failing(errno.ENOSPC))
    with pytest.raises(RunDirError, match="no space left on device"):
        save_figure(pyplot.figure(), tmp_path / "plot.png")
    assert os.listdir(tmp_path) == []
