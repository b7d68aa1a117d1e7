"""Making and saving matplotlib figures without pyplot, so cnnlab never switches the user's backend.

Figures are :class:`matplotlib.figure.Figure` objects made directly (the way matplotlib documents for
servers): they need no backend and no window, and a notebook that drew inline before cnnlab plotted
still draws inline after. Every PNG cnnlab writes goes through :func:`save_figure` (atomic write).

>>> import tempfile, pathlib
>>> fig, ax = subplots(figsize=(2, 2))
>>> _ = ax.plot([0, 1], [1, 0])
>>> save_figure(fig, pathlib.Path(tempfile.mkdtemp()) / "line.png").stat().st_size > 500
True
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from cnnlab.core.rundir import atomic_write_bytes


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], **kwargs: Any) -> tuple[Any, Any]:
    """``(figure, axes)`` like ``pyplot.subplots``, but on a free-standing Figure (no pyplot, no backend)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize)
    return figure, figure.subplots(nrows, ncols, **kwargs)


def save_figure(fig: Any, path: str | Path, dpi: int = 110, tight: bool = True) -> Path:
    """Write a matplotlib figure to ``path`` as PNG, atomically (``tight``: lay it out first)."""
    if tight:
        fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)
