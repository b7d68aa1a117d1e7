"""Run folders, atomic file writes, and checkpoints.

Layout of one run (a run never overwrites another: ``<name>-1``, ``<name>-2``, ...)::

    runs/<task>/<name>-<n>/
        config.yaml          fully resolved settings
        metrics.csv          one row per epoch
        log.txt              what was printed, with times
        checkpoints/last.pt  written every epoch (and on Ctrl-C or SIGTERM)
        checkpoints/best.pt  the best epoch so far
        plots/               PNG figures
        report.html          the run report
        .lock                held (flock) by the process training the run

Every file is written to a temporary name in the same folder and renamed into place, so a
killed process never leaves a half-written file.

>>> import tempfile
>>> root = tempfile.mkdtemp()
>>> run = RunDir.create(root, "classify", "demo")
>>> run.path.name, RunDir.create(root, "classify", "demo").path.name
('demo-1', 'demo-2')
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import io
import os
import pickle
import pickletools
import tempfile
import time
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cnnlab.core.errors import ConfigError, RunDirError


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``.

    A failed write (disk full, read-only or forbidden folder) raises :class:`RunDirError` naming
    ``path`` and leaves the old file, and no temporary one, behind.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _write_error(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o644)  # mkstemp makes 0600; run files are meant to be shared
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _write_error(exc, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Text version of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> None:
    """Save a checkpoint dict atomically. Keep it to tensors, numbers, strings, lists and dicts
    so that :func:`load_checkpoint` can read it without unpickling arbitrary objects."""
    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``: no arbitrary code runs).

    Empty, truncated or damaged files, and files holding other objects than tensors, numbers,
    strings, lists and dicts (unpickling those could run code), raise :class:`RunDirError`.

    >>> import tempfile
    >>> empty = Path(tempfile.mkdtemp()) / "last.pt"
    >>> _ = empty.write_bytes(b"")
    >>> try:
    ...     load_checkpoint(empty)
    ... except RunDirError as err:
    ...     print(err.what, "|", err.fix)
    checkpoint is empty or truncated | resume from checkpoints/best.pt or start again
    """
    path = Path(path)
    if not path.is_file():
        raise RunDirError("checkpoint not found", where=str(path), fix="pass a run folder or a .pt file that exists")
    if path.stat().st_size == 0:
        raise RunDirError("checkpoint is empty or truncated", where=str(path), fix=_DAMAGED_FIX)
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing a raw pickle
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # the safe unpickler refused something
        unsafe = unsafe_pickle_globals(path)
        if unsafe:
            raise RunDirError(
                f"refused: the file holds objects other than tensors ({unsafe[0]}; it could run code); "
                "cnnlab loads only plain checkpoints",
                where=str(path),
                fix="use a checkpoint written by cnnlab (a run's checkpoints/last.pt or best.pt)",
            ) from None
        raise _damaged(exc, path) from None
    except Exception as exc:  # torch raises several types for truncated or non-torch files
        raise _damaged(exc, path) from None


@dataclass(frozen=True)
class RunDir:
    """One run's folder and the names of the files in it."""

    path: Path

    @classmethod
    def create(cls, root: str | Path, task: str, name: str) -> RunDir:
        """Make ``root/task/name-<n>`` with the first free ``n`` (atomic: two runs never share one)."""
        parent = Path(root) / task
        try:
            parent.mkdir(parents=True, exist_ok=True)
            n = 1 + max((_run_number(p.name, name) for p in parent.iterdir()), default=0)
            while True:
                try:
                    (parent / f"{name}-{n}").mkdir()
                    break
                except FileExistsError:
                    n += 1
            run = cls(parent / f"{name}-{n}")
            run.checkpoints.mkdir()
            run.plots.mkdir()
        except OSError as exc:
            raise RunDirError(
                f"cannot create run folder: {exc.strerror or exc}", where=str(parent), fix=_WRITE_FIX
            ) from None
        return run

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run folder (for resuming, evaluating or reporting)."""
        run = cls(Path(path))
        if not run.config.is_file():
            raise RunDirError(
                "not a run folder (no config.yaml)", where=str(path), fix="pass a folder made by cnnlab, e.g. runs/..."
            )
        for stale in run.path.rglob(".*.tmp"):  # left by a process killed mid-write; never a real file
            stale.unlink()
        return run

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def log_file(self) -> Path:
        return self.path / "log.txt"

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    def resume_checkpoint(self) -> Path:
        """``checkpoints/last.pt``, the checkpoint ``--resume`` continues from; an error when it is missing.

        >>> import tempfile
        >>> try:
        ...     RunDir.create(tempfile.mkdtemp(), "classify", "r").resume_checkpoint()
        ... except RunDirError as err:
        ...     print(err.what.endswith("checkpoints/last.pt is missing"))
        True
        """
        if not self.last_checkpoint.is_file():
            raise RunDirError(
                f"nothing to resume: {self.last_checkpoint} is missing",
                where=str(self.path),
                fix="start a new run, or pass the run folder that holds checkpoints/last.pt",
            )
        return self.last_checkpoint

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold ``<run>/.lock`` while training: a second process (or ``lock``) on the same run gets a
        :class:`ConfigError`. The OS drops the lock when its process ends, even when killed.

        >>> import tempfile
        >>> run = RunDir.create(tempfile.mkdtemp(), "classify", "l")
        >>> with run.lock():
        ...     try:
        ...         with run.lock():
        ...             pass
        ...     except ConfigError as err:
        ...         print(err.what == f"run {run.path} is in use by another process (pid {os.getpid()})")
        True
        """
        path = self.path / ".lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _write_error(exc, path) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                raise ConfigError(
                    f"run {self.path} is in use by another process (pid {holder})",
                    where=str(path),
                    fix="wait for it to finish or stop it, then retry",
                ) from None
            except OSError as exc:  # a file system without locks
                raise _write_error(exc, path) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def log(self, message: str) -> None:
        """Append a time-stamped line to ``log.txt`` (one short write, flushed)."""
        try:
            with self.log_file.open("a", encoding="utf-8") as handle:
                handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
        except OSError as exc:
            raise _write_error(exc, self.log_file) from None

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite ``metrics.csv`` with all rows so far (atomic; columns = union of keys)."""
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.metrics, buffer.getvalue())

    def read_metrics(self) -> list[dict[str, str]]:
        """Rows of ``metrics.csv`` (empty when no epoch has finished)."""
        if not self.metrics.is_file():
            return []
        with self.metrics.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))


def _run_number(folder: str, name: str) -> int:
    prefix = f"{name}-"
    suffix = folder[len(prefix) :] if folder.startswith(prefix) else ""
    return int(suffix) if suffix.isdigit() else 0


def _write_error(exc: OSError, path: Path) -> RunDirError:
    """A one-line error naming ``path`` for a failed write (disk full, read-only, no permission, ...)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return RunDirError(
            "no space left on device", where=str(path), fix="free space on that disk, or use --runs-dir elsewhere"
        )
    if exc.errno == errno.EROFS:
        return RunDirError("the file system is read-only", where=str(path), fix="use --runs-dir on a writable disk")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return RunDirError("permission denied", where=str(path), fix=_WRITE_FIX)
    return RunDirError(f"cannot write file: {exc.strerror or exc}", where=str(path), fix=_WRITE_FIX)


def _damaged(exc: Exception, path: Path) -> RunDirError:
    lines = str(exc).strip().splitlines()
    detail = f"{type(exc).__name__}: {lines[0][:160]}" if lines else type(exc).__name__
    return RunDirError(f"checkpoint is damaged or truncated ({detail})", where=str(path), fix=_DAMAGED_FIX)


def unsafe_pickle_globals(path: str | Path) -> list[str]:
    """The globals a pickle or torch file would import besides torch's own and plain containers: what makes
    loading it unsafe (read without unpickling). Weights files and checkpoints are judged by this one rule.

    >>> import pickle, tempfile
    >>> file = Path(tempfile.mkdtemp()) / "x.pkl"
    >>> _ = file.write_bytes(pickle.dumps(Path("a")))
    >>> unsafe_pickle_globals(file)
    ['pathlib.PosixPath']
    """
    return [name for name in _pickle_globals(Path(path)) if not name.startswith(_SAFE_GLOBALS)]


def _pickle_globals(path: Path) -> list[str]:
    """The ``module.name`` globals a pickle (or the pickle inside a torch zip file) would import, read
    without unpickling; best effort (stops where the data stops making sense)."""
    found: list[str] = []
    strings: list[str] = []
    with contextlib.suppress(Exception):  # a damaged file: keep what was found before the junk
        data = path.read_bytes()
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                data = next((archive.read(n) for n in archive.namelist() if n.endswith("data.pkl")), b"")
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name in ("GLOBAL", "INST"):
                found.append(str(arg).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, str):
                strings.append(arg)
    return found


_SAFE_GLOBALS = ("torch.", "collections.OrderedDict", "builtins.set", "_codecs.encode")
_WRITE_FIX = "choose a writable folder with --runs-dir, or fix its permissions"
_DAMAGED_FIX = "resume from checkpoints/best.pt or start again"
