"""Decode once: a list of image files becomes one uint8 array, cached on disk and memory-mapped.

The cache key is a hash of the source (every path with its size and modification time) and
the decode settings (channels, size, fit), so editing, adding or removing a file, or asking for
another size, gives a new entry. An entry is ``<key>.npy`` (the ``(N, H, W, C)`` pixels) and
``<key>.json`` (which files made it in, and the problems met); both are written atomically and
the ``.json`` is written last, so a half-built entry is never read. Later epochs and later runs
read the memory-mapped ``.npy``: no JPEG is decoded again.

>>> import tempfile
>>> from PIL import Image
>>> folder = Path(tempfile.mkdtemp())
>>> for i in range(3):
...     Image.new("RGB", (8 + i, 6), (i, 0, 0)).save(folder / f"{i}.png")
>>> (folder / "broken.png").write_bytes(b"")
0
>>> paths = sorted(folder.glob("*.png"))
>>> first = decode_images(paths, channels=3, size=(4, 4), cache_dir=folder / "cache")
>>> again = decode_images(paths, channels=3, size=(4, 4), cache_dir=folder / "cache")
>>> first.pixels.shape, again.from_cache, again.kept, len(again.problems)
((3, 4, 4, 3), True, [0, 1, 2], 1)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnlab.core.errors import DataError
from cnnlab.core.rundir import atomic_write_bytes, atomic_write_text
from cnnlab.data.images import MAX_PIXELS, Fit, read_image

CACHE_VERSION = 1
"""Bumped when the decoding itself changes, so old entries are not reused."""


class DataWarning(UserWarning):
    """A file was skipped (unreadable, mismatched, empty class); the run goes on."""


@contextmanager
def data_warnings_as_lines(echo: Callable[[str], None], every: bool = False) -> Iterator[None]:
    """Inside, every :class:`DataWarning` shown goes to ``echo`` as its one-line message (no source
    file, line number or code line, as Python prints warnings); other warnings show as before, or,
    with ``every``, as one line too (their message and category: what a library such as PyTorch said).

    A command line wraps its work in it (e.g. ``echo`` prints ``warning: ...`` to stderr).

    >>> with data_warnings_as_lines(lambda line: print("warning:", line), every=True):
    ...     warnings.warn("skipped: empty file [a.png]", DataWarning)
    ...     warnings.warn("TypedStorage is deprecated", UserWarning)
    warning: skipped: empty file [a.png]
    warning: TypedStorage is deprecated (UserWarning)
    """
    previous = warnings.showwarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: object = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, DataWarning):
            echo(str(message))
        elif every:
            echo(f"{str(message).strip().splitlines()[0] if str(message).strip() else ''} ({category.__name__})")
        else:
            previous(message, category, filename, lineno, file, line)  # type: ignore[arg-type]

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: which file, and what."""

    path: str
    message: str


@dataclass
class ProblemLog:
    """Collects problems: fatal when ``strict``, otherwise a warning and a record."""

    strict: bool = False
    problems: list[Problem] = field(default_factory=list)

    def report(self, error: DataError) -> None:
        """Raise ``error`` when strict; otherwise warn and remember it."""
        if self.strict:
            raise error
        warnings.warn(f"skipped: {error}", DataWarning, stacklevel=3)
        self.problems.append(Problem(error.where or "", error.what))


@dataclass
class Decoded:
    """Pixels of the files that decoded, ``kept`` = their positions in the input list."""

    pixels: np.ndarray  # (N, H, W, C) uint8, possibly a memory map
    kept: list[int]
    problems: list[Problem]
    from_cache: bool = False


def cache_key(paths: Sequence[Path], channels: int, size: tuple[int, int] | None, fit: str, max_pixels: int) -> str:
    """sha256 over the source files (path, bytes, mtime) and the decode settings."""
    digest = hashlib.sha256()
    settings = {"version": CACHE_VERSION, "channels": channels, "size": size, "fit": fit, "max_pixels": max_pixels}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for path in paths:
        try:
            stat = path.stat()
            digest.update(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()[:32]


def decode_images(
    paths: Sequence[str | Path],
    channels: int = 3,
    size: tuple[int, int] | None = None,
    fit: Fit = "stretch",
    strict: bool = False,
    cache_dir: str | Path | None = None,
    max_pixels: int = MAX_PIXELS,
) -> Decoded:
    """Decode ``paths`` into one ``(N, H, W, C)`` uint8 array (skipping unreadable files unless ``strict``).

    Without ``size`` every image must already have the same size. With ``cache_dir`` the result is
    stored there and memory-mapped on later calls with the same files and settings.
    """
    files = [Path(p) for p in paths]
    entry = None
    if cache_dir is not None:
        entry = Path(cache_dir) / cache_key(files, channels, size, fit, max_pixels)
        cached = _load(entry, strict)
        if cached is not None:
            return cached
    log = ProblemLog(strict)
    arrays: list[np.ndarray | None] = [None] * len(files)

    def one(i: int) -> None:
        try:
            arrays[i] = read_image(files[i], channels=channels, size=size, fit=fit, max_pixels=max_pixels)
        except DataError as err:
            errors[i] = err  # reported in file order below, not in thread-finishing order

    errors: dict[int, DataError] = {}
    # Pillow releases the GIL while decoding, so threads overlap JPEG work on several cores.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(one, range(len(files))))
    for i in sorted(errors):
        log.report(errors[i])
    kept = [i for i, a in enumerate(arrays) if a is not None]
    shapes = {arrays[i].shape for i in kept}  # type: ignore[union-attr]
    if len(shapes) > 1:
        examples = ", ".join(f"{files[i].name}: {arrays[i].shape[1]}x{arrays[i].shape[0]}" for i in kept[:3])  # type: ignore[union-attr]
        raise DataError(
            f"images differ in size ({examples}, ...) and no size was given",
            where=str(files[kept[0]].parent),
            fix="pass size=(height, width) (CLI: --img-size) to resize them while decoding",
        )
    shape = shapes.pop() if shapes else (*(size or (0, 0)), channels)
    pixels = np.stack([arrays[i] for i in kept]) if kept else np.zeros((0, *shape), np.uint8)  # (N, H, W, C)
    if entry is not None:
        _store(entry, pixels, kept, log.problems, files)
        stored = _load(entry, strict=False)
        if stored is not None:
            stored.from_cache = False
            return stored
    return Decoded(pixels, kept, log.problems)


def _store(entry: Path, pixels: np.ndarray, kept: list[int], problems: list[Problem], files: list[Path]) -> None:
    buffer = io.BytesIO()
    np.save(buffer, pixels, allow_pickle=False)
    atomic_write_bytes(entry.with_suffix(".npy"), buffer.getvalue())
    meta = {"kept": kept, "problems": [[p.path, p.message] for p in problems], "files": [str(f) for f in files]}
    atomic_write_text(entry.with_suffix(".json"), json.dumps(meta))


def _load(entry: Path, strict: bool) -> Decoded | None:
    meta_path, pixels_path = entry.with_suffix(".json"), entry.with_suffix(".npy")
    if not (meta_path.is_file() and pixels_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        # Copy-on-write map: pages are read lazily and never written back to the cache file.
        pixels = np.load(pixels_path, mmap_mode="c", allow_pickle=False)
    except (OSError, ValueError) as exc:
        warnings.warn(f"ignoring unreadable cache entry {pixels_path}: {exc}", DataWarning, stacklevel=3)
        return None
    problems = [Problem(path, message) for path, message in meta["problems"]]
    if strict and problems:
        raise DataError(problems[0].message, where=problems[0].path, fix="fix or remove the file (strict mode)")
    for problem in problems:
        warnings.warn(f"skipped: {problem.message} [{problem.path}]", DataWarning, stacklevel=3)
    return Decoded(pixels, list(meta["kept"]), problems, from_cache=True)
