"""What Jupyter shows for cnnlab's results: HTML tables and inline pictures, with no plotting backend.

A notebook displays any object with a ``_repr_html_`` or ``_repr_png_`` method. :class:`Picture` is a PNG in
memory (from a matplotlib Figure or an image array) that shows itself inline and saves itself to a file;
:func:`html_table` is the one HTML table cnnlab's notebook displays use. Nothing here touches pyplot or the
matplotlib backend, so a notebook that drew inline before importing cnnlab still does after.

>>> import numpy as np
>>> picture = Picture.from_array(np.zeros((4, 4, 3), np.uint8))
>>> picture._repr_png_()[:8] == b"\\x89PNG\\r\\n\\x1a\\n", picture._repr_html_().startswith("<img")
(True, True)
>>> html_table(["layer", "params"], [["conv", 80]], caption="Total 80")[:59]
'<table><caption>Total 80</caption><thead><tr><th>layer</th>'
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


class Picture:
    """A PNG image held in memory: shown inline by Jupyter, saved with :meth:`save`.

    >>> import tempfile, pathlib
    >>> path = Picture.from_array(np.ones((2, 3), np.float32)).save(pathlib.Path(tempfile.mkdtemp()) / "a.png")
    >>> path.read_bytes()[:4]
    b'\\x89PNG'
    """

    def __init__(self, png: bytes, title: str = "") -> None:
        self.png = png
        self.title = title

    @classmethod
    def from_figure(cls, figure: Any, title: str = "", dpi: int = 100) -> Picture:
        """The PNG of a matplotlib Figure (laid out tight first, unless it has a layout of its own)."""
        if figure.get_layout_engine() is None:
            figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=dpi)
        return cls(buffer.getvalue(), title)

    @classmethod
    def from_array(cls, pixels: np.ndarray, title: str = "") -> Picture:
        """The PNG of an image array: ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``, uint8 or floats in [0, 1]."""
        from PIL import Image

        image = np.asarray(pixels)
        if image.dtype != np.uint8:
            image = (np.clip(image.astype(np.float64), 0, 1) * 255).round().astype(np.uint8)
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[..., 0]
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        return cls(buffer.getvalue(), title)

    @classmethod
    def from_file(cls, path: str | Path, title: str = "") -> Picture:
        """A PNG file as it is."""
        return cls(Path(path).read_bytes(), title)

    def save(self, path: str | Path) -> Path:
        """Write the PNG to ``path`` (atomically); returns the path."""
        from cnnlab.core.rundir import atomic_write_bytes

        atomic_write_bytes(path, self.png)
        return Path(path)

    def _repr_png_(self) -> bytes:
        return self.png

    def _repr_html_(self) -> str:
        return img_tag(self.png, self.title)

    def __repr__(self) -> str:
        return f"Picture({self.title or 'untitled'}, {len(self.png):,} bytes of PNG)"


def img_tag(png: bytes, alt: str = "", width: int | None = None) -> str:
    """An ``<img>`` element with the PNG inline (a data URI), so the HTML needs no file next to it."""
    size = f' width="{width}"' if width else ""
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}"{size}>'


def html_table(header: Sequence[Any], rows: Sequence[Sequence[Any]], caption: str = "") -> str:
    """A plain HTML table (every cell escaped); ``caption`` on top."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    top = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{top}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
