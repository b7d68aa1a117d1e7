"""Run folders, atomic file writes, and checkpoints.

Layout of one run (a run never overwrites another: ``<name>-1``, ``<name>-2``, ...)::

    runs/<task>/<name>-<n>/
        config.yaml          fully resolved settings
        metrics.csv          one row per epoch
        log.txt              what was printed, with times
        checkpoints/last.pt  written every epoch (and on Ctrl-C)
        checkpoints/best.pt  the best epoch so far
        plots/               PNG figures
        report.html          the run report

Every file is written to a temporary name in the same folder and renamed into place, so a
killed process never leaves a half-written file.

>>> import tempfile
>>> root = tempfile.mkdtemp()
>>> run = RunDir.create(root, "classify", "demo")
>>> run.path.name, RunDir.create(root, "classify", "demo").path.name
('demo-1', 'demo-2')
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cnnlab.core.errors import RunDirError


def save_figure(fig: Any, path: str | Path, dpi: int = 110, tight: bool = True) -> Path:
    """Write a matplotlib figure to ``path`` as PNG, atomically, and close it (``tight``: lay it out first)."""
    from matplotlib import pyplot

    if tight:
        fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    pyplot.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise RunDirError(f"cannot write file: {exc.strerror}", where=str(path), fix=_WRITE_FIX) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o644)  # mkstemp makes 0600; run files are meant to be shared
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
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
    """Load a checkpoint safely (``weights_only=True``: no arbitrary code runs)."""
    path = Path(path)
    if not path.is_file():
        raise RunDirError("checkpoint not found", where=str(path), fix="pass a run folder or a .pt file that exists")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        raise RunDirError(
            f"cannot read checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0]})",
            where=str(path),
            fix="the file is damaged or not a cnnlab/PyTorch checkpoint; use another one",
        ) from None


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

    def log(self, message: str) -> None:
        """Append a time-stamped line to ``log.txt`` (one short write, flushed)."""
        with self.log_file.open("a", encoding="utf-8") as handle:
            handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

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


_WRITE_FIX = "choose a writable folder with --runs-dir, or fix its permissions"
