"""A layer's output maps as one PNG: a grid of channel images, each scaled up by a whole number so that every
map pixel is a square of ``scale`` screen pixels (the page turns a click back into ``(channel, y, x)``).

Each channel is coloured on its own range (viridis: dark = its minimum, yellow = its maximum); the ranges come
back with the grid, so the page can say what a colour means.

>>> import torch
>>> grid = map_grid(torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 3, 4))
>>> grid.channels, grid.columns, grid.scale, (grid.tile_height, grid.tile_width), grid.low, grid.high
(2, 2, 10, (30, 40), [0.0, 12.0], [11.0, 23.0])
>>> grid.unit_at(grid.tile_width + grid.gap + 15, 25)   # (channel, y, x) under a click at (x, y) pixels
(1, 2, 1)
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from matplotlib import colormaps  # at import, not at the first layer view (it takes a second)
from PIL import Image

MIN_TILE = 40
"""A small map is scaled up until its longer side reaches at least this many pixels."""
MAX_WIDTH = 1200
"""The grid wraps to stay at most this wide (one column at least)."""
MAX_CHANNELS = 512
"""Channels shown per layer; a wider layer shows its first ones and says so."""
GAP = 2


@dataclass(frozen=True)
class MapGrid:
    """The grid PNG and its geometry: ``columns`` tiles per row, each ``tile_height x tile_width`` pixels
    (``scale`` per map pixel), ``gap`` pixels apart; ``low``/``high`` are each shown channel's range."""

    png: bytes = field(repr=False)
    channels: int
    total_channels: int
    columns: int
    scale: int
    tile_height: int
    tile_width: int
    gap: int
    low: list[float]
    high: list[float]

    def unit_at(self, px: int, py: int) -> tuple[int, int, int] | None:
        """The ``(channel, y, x)`` under pixel ``(px, py)`` of the grid, or None (a gap or past the last tile)."""
        column, inside_x = divmod(px, self.tile_width + self.gap)
        row, inside_y = divmod(py, self.tile_height + self.gap)
        channel = row * self.columns + column
        if column >= self.columns or inside_x >= self.tile_width or inside_y >= self.tile_height:
            return None
        if channel >= self.channels:
            return None
        return channel, inside_y // self.scale, inside_x // self.scale


def map_grid(maps: torch.Tensor, max_channels: int = MAX_CHANNELS) -> MapGrid:
    """The grid of ``maps`` ``(C, h, w)`` (the first ``max_channels`` channels)."""
    total, height, width = maps.shape
    shown = maps[:max_channels].detach().float().cpu().numpy()  # (C, h, w)
    channels = shown.shape[0]
    scale = max(1, math.ceil(MIN_TILE / max(height, width)))
    tile_h, tile_w = height * scale, width * scale
    columns = max(1, min(math.ceil(math.sqrt(channels)), (MAX_WIDTH + GAP) // (tile_w + GAP)))
    rows = math.ceil(channels / columns)
    low = shown.reshape(channels, -1).min(axis=1)
    high = shown.reshape(channels, -1).max(axis=1)
    span = np.where(high > low, high - low, 1.0)
    unit = (shown - low[:, None, None]) / span[:, None, None]  # (C, h, w) in [0, 1]
    colours = (colormaps["viridis"](unit)[..., :3] * 255).astype(np.uint8)  # (C, h, w, 3)
    colours = colours.repeat(scale, axis=1).repeat(scale, axis=2)  # (C, tile_h, tile_w, 3)
    canvas = np.full((rows * (tile_h + GAP) - GAP, columns * (tile_w + GAP) - GAP, 3), 255, np.uint8)
    for channel in range(channels):
        row, column = divmod(channel, columns)
        top, left = row * (tile_h + GAP), column * (tile_w + GAP)
        canvas[top : top + tile_h, left : left + tile_w] = colours[channel]
    return MapGrid(
        png=png_bytes(canvas),
        channels=channels,
        total_channels=total,
        columns=columns,
        scale=scale,
        tile_height=tile_h,
        tile_width=tile_w,
        gap=GAP,
        low=[round(float(v), 6) for v in low],
        high=[round(float(v), 6) for v in high],
    )


def png_bytes(pixels: np.ndarray) -> bytes:
    """A uint8 ``(H, W)`` or ``(H, W, 3)`` array as PNG bytes (fast compression: pages are served at once)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def data_url(png: bytes) -> str:
    """PNG bytes as a ``data:`` URL (the page shows it without another request).

    >>> data_url(b"abc")
    'data:image/png;base64,YWJj'
    """
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
