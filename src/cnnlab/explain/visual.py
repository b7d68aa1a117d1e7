"""Pictures of explanations: heatmap overlays, and PNG figures of CAMs, feature maps and filters.

Figures are free-standing matplotlib Figures (no pyplot, no backend switch), written atomically.

>>> import numpy as np
>>> image = np.zeros((4, 6, 3), np.uint8)
>>> heat = np.array([[0.0, 1.0], [0.0, 1.0]])  # resized to the image: right half hot
>>> out = overlay(image, heat, alpha=1.0)
>>> out.shape, out.dtype, out[0, 0].tolist(), out[0, -1].tolist()  # jet: blue = 0, dark red = 1
((4, 6, 3), dtype('uint8'), [0, 0, 128], [128, 0, 0])
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnnlab.core.errors import ShapeError
from cnnlab.report.figures import save_figure, subplots


def overlay(image: np.ndarray, heatmap: np.ndarray | torch.Tensor, alpha: float = 0.45) -> np.ndarray:
    """Blend a ``jet``-coloured ``heatmap (h, w)`` in [0, 1] over ``image (H, W, 3)`` or ``(H, W)`` uint8.

    The heatmap is resized (bilinear) to the image; ``alpha`` is the heatmap's share. Returns ``(H, W, 3)`` uint8.
    """
    from matplotlib import colormaps

    rgb = _rgb(image)
    heat = np.clip(_resize(_array(heatmap), rgb.shape[:2]), 0.0, 1.0)
    colours = colormaps["jet"](heat)[..., :3] * 255.0  # (H, W, 3)
    blended = (1.0 - alpha) * rgb.astype(np.float64) + alpha * colours
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def plot_cam(image: np.ndarray, heatmap: np.ndarray | torch.Tensor, path: str | Path, title: str = "") -> Path:
    """Save ``image | heatmap overlay`` side by side as a PNG titled ``title``; returns the path.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "cam.png"
    >>> plot_cam(np.zeros((8, 8), np.uint8), np.eye(8), out, "class 3 (p=0.9)").stat().st_size > 1000
    True
    """
    fig, axes = subplots(1, 2, figsize=(8, 4.4))
    axes[0].imshow(_rgb(image))
    axes[0].set_title("image")
    axes[1].imshow(overlay(image, heatmap))
    axes[1].set_title("heatmap")
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path, tight=False)


def plot_feature_maps(maps: torch.Tensor, path: str | Path, title: str = "", max_maps: int = 32) -> Path:
    """Save the first ``max_maps`` channels of ``maps (C, h, w)`` as a grid of grey images, each scaled on its own.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "maps.png"
    >>> plot_feature_maps(torch.rand(5, 6, 6), out, "layer 3").stat().st_size > 1000
    True
    """
    if maps.dim() != 3:
        raise ShapeError(f"expected feature maps (C, h, w), got {tuple(maps.shape)}", where="maps")
    shown = maps[:max_maps].detach().float().cpu()
    return _grid([_unit(m) for m in shown], path, title or f"{len(shown)} of {maps.shape[0]} feature maps", "gray")


def plot_filters(filters: torch.Tensor, path: str | Path, title: str = "") -> Path:
    """Save conv filters ``(out, in, kh, kw)`` as images: RGB when ``in == 3``, else the mean over inputs in grey.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "filters.png"
    >>> plot_filters(torch.randn(8, 3, 5, 5), out).stat().st_size > 1000
    True
    """
    if filters.dim() != 4:
        raise ShapeError(f"expected conv filters (out, in, kh, kw), got {tuple(filters.shape)}", where="filters")
    weights = filters.detach().float().cpu()
    if weights.shape[1] == 3:
        tiles = [_unit(w).permute(1, 2, 0) for w in weights]  # (kh, kw, 3)
    else:
        tiles = [_unit(w.mean(dim=0)) for w in weights]
    heading = title or f"{weights.shape[0]} filters {weights.shape[2]}x{weights.shape[3]}"
    return _grid(tiles, path, heading, "gray")


def _grid(tiles: list[torch.Tensor], path: str | Path, title: str, cmap: str) -> Path:
    columns = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    fig, axes = subplots(rows, columns, figsize=(1.3 * columns + 0.4, 1.3 * rows + 0.6), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(tiles):
            ax.imshow(tiles[i].numpy(), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(str(i), fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path, tight=False)


def _unit(values: torch.Tensor) -> torch.Tensor:
    """Min-max scale to [0, 1] (a constant tile becomes 0)."""
    span = values.max() - values.min()
    return (values - values.min()) / span if span > 0 else torch.zeros_like(values)


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ShapeError(
            f"expected a uint8 image (H, W, 3) or (H, W), got {image.dtype} {image.shape}",
            where="image",
            fix="pass the decoded image, e.g. cnnlab.data.images.read_image(path)",
        )
    return image


def _array(heatmap: np.ndarray | torch.Tensor) -> np.ndarray:
    heat = heatmap.detach().float().cpu().numpy() if isinstance(heatmap, torch.Tensor) else np.asarray(heatmap)
    if heat.ndim != 2:
        raise ShapeError(f"expected a heatmap (h, w), got shape {heat.shape}", where="heatmap", fix="pass maps[i]")
    return heat.astype(np.float32)


def _resize(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if heat.shape == size:
        return heat
    resized = Image.fromarray(heat).resize((size[1], size[0]), Image.Resampling.BILINEAR)  # float32: mode "F"
    return np.asarray(resized)
