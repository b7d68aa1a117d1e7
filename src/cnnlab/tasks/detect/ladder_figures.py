"""Pictures of the detection ladder's first three steps (matplotlib Figures without pyplot, saved atomically).

Like :mod:`cnnlab.report.plots`, every function takes plain arrays (uint8 images, boxes and points in pixels,
score maps), never a model, and returns the PNG's path: predicted against true boxes on a grid of canvases,
landmarks drawn on their images, the sliding-window score map beside the fully convolutional one, and P-Net's
face-probability map beside the photo with its strongest window.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cnnlab.report.figures import save_figure, subplots

TRUE_COLOUR, PRED_COLOUR = "#2ca02c", "#d62728"  # green: the label; red: the prediction


def _grid(count: int, columns: int, tile: float = 1.7) -> tuple[object, list[object]]:
    columns = max(1, min(columns, count))
    rows = max(1, -(-count // columns))
    fig, axes = subplots(rows, columns, figsize=(tile * columns, (tile + 0.25) * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, list(axes.flat)


def _show(ax: object, image: np.ndarray) -> None:
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")


def _rectangle(ax: object, box: Sequence[float], colour: str, style: str = "-") -> None:
    from matplotlib.patches import Rectangle

    # Pixel i is drawn over [i - 0.5, i + 0.5] by imshow; a box edge at continuous x sits at x - 0.5.
    x1, y1, x2, y2 = (float(v) for v in box)
    ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec=colour, lw=1.4, ls=style))


def plot_localisation_grid(
    images: Sequence[np.ndarray],
    true_boxes: np.ndarray,
    pred_boxes: np.ndarray,
    captions: Sequence[str],
    path: str | Path,
    columns: int = 8,
    title: str = "",
) -> Path:
    """Canvases with the true box (green) and the predicted box (red, dashed), one caption each.

    >>> import tempfile, pathlib
    >>> boxes = np.array([[2.0, 2.0, 9.0, 9.0]])
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "boxes.png"
    >>> plot_localisation_grid([np.zeros((12, 12), np.uint8)], boxes, boxes + 1, ["3 / 3"], out).name
    'boxes.png'
    """
    fig, axes = _grid(len(images), columns)
    for ax, image, true, pred, caption in zip(axes, images, true_boxes, pred_boxes, captions, strict=False):
        _show(ax, image)
        _rectangle(ax, true, TRUE_COLOUR)
        _rectangle(ax, pred, PRED_COLOUR, "--")
        ax.set_title(caption, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def plot_landmarks(
    images: Sequence[np.ndarray],
    true_points: np.ndarray,
    pred_points: np.ndarray,
    path: str | Path,
    columns: int = 8,
    title: str = "",
) -> Path:
    """Images with their true landmarks (green circles) and predicted ones (red crosses), ``(N, L, 2)`` pixels
    ``(x, y)``; a thin line joins each prediction to its true point.

    >>> import tempfile, pathlib
    >>> points = np.array([[[3.0, 4.0], [8.0, 8.0]]])
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "p.png"
    >>> plot_landmarks([np.zeros((12, 12), np.uint8)], points, points + 0.5, out).name
    'p.png'
    """
    fig, axes = _grid(len(images), columns)
    for ax, image, true, pred in zip(axes, images, true_points, pred_points, strict=False):
        _show(ax, image)
        shift = 0.5  # continuous coordinates -> imshow's pixel centres
        for (tx, ty), (px, py) in zip(true, pred, strict=True):
            ax.plot([tx - shift, px - shift], [ty - shift, py - shift], color="white", lw=0.6, alpha=0.7)
        ax.scatter(true[:, 0] - shift, true[:, 1] - shift, s=14, facecolors="none", edgecolors=TRUE_COLOUR, lw=1.2)
        ax.scatter(pred[:, 0] - shift, pred[:, 1] - shift, s=14, marker="x", color=PRED_COLOUR, lw=1.2)
        error = float(np.linalg.norm(true - pred, axis=1).mean())
        ax.set_title(f"{error:.1f} px", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def plot_sliding_maps(
    image: np.ndarray,
    slow: np.ndarray,
    fast: np.ndarray,
    window: int,
    stride: int,
    path: str | Path,
    times: tuple[float, float] | None = None,
    label: str = "score",
) -> Path:
    """The image, the score of every window computed crop by crop (``slow``, (rows, cols)), the same map from
    one pass of the fully convolutional net (``fast``), and their largest difference. Map cell ``[i, j]`` is
    drawn over its window's centre in image pixels, so the maps line up with the image; ``times`` = (slow,
    fast) seconds go into the titles.

    >>> import tempfile, pathlib
    >>> maps = np.random.default_rng(0).random((3, 4))
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "m.png"
    >>> plot_sliding_maps(np.zeros((18, 20), np.uint8), maps, maps, 14, 2, out).name
    'm.png'
    """
    rows, cols = slow.shape
    # Window centres run from window/2 to window/2 + (n-1) * stride (continuous coordinates; imshow draws pixel i
    # over [i - 0.5, i + 0.5], hence the - 0.5); each cell spans its stride around its centre.
    low_edge = window / 2 - stride / 2 - 0.5
    extent = (low_edge, low_edge + cols * stride, low_edge + rows * stride, low_edge)
    fig, axes = subplots(1, 3, figsize=(11.5, 3.8))
    _show(axes[0], image)
    axes[0].set_title(f"image {image.shape[0]}x{image.shape[1]}, window {window}, stride {stride}", fontsize=9)
    low, high = float(min(slow.min(), fast.min())), float(max(slow.max(), fast.max()))
    for ax, scores, name, seconds in (
        (axes[1], slow, "crop by crop", times[0] if times else None),
        (axes[2], fast, "one pass, FC -> conv", times[1] if times else None),
    ):
        ax.imshow(image if image.ndim == 3 else np.stack([image] * 3, -1), alpha=0.35)
        shown = ax.imshow(scores, extent=extent, cmap="magma", vmin=low, vmax=high, alpha=0.85)
        ax.set(xlim=(-0.5, image.shape[1] - 0.5), ylim=(image.shape[0] - 0.5, -0.5))
        ax.set_title(f"{name}: {rows}x{cols} windows" + (f", {seconds * 1000:.1f} ms" if seconds else ""), fontsize=9)
        ax.axis("off")
    axes[0].axis("off")
    fig.colorbar(shown, ax=axes[2], fraction=0.046, pad=0.04, label=label)
    fig.suptitle(f"largest difference between the two maps: {float(np.abs(slow - fast).max()):.1e}", fontsize=9)
    return save_figure(fig, path)


def plot_face_map(
    image: np.ndarray,
    probabilities: np.ndarray,
    box: Sequence[float],
    probability: float,
    scale: float,
    path: str | Path,
    true_box: Sequence[float] | None = None,
) -> Path:
    """The photo with P-Net's strongest window (red) and, when known, the true face (green), beside the face
    probability of every window at that pyramid ``scale`` (a 12x12 window every 2 pixels of the resized image).

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "face.png"
    >>> plot_face_map(np.zeros((40, 40, 3), np.uint8), np.zeros((15, 15)), (1, 1, 13, 13), 0.9, 1.0, out).name
    'face.png'
    """
    fig, axes = subplots(1, 2, figsize=(9, 4.2))
    _show(axes[0], image)
    _rectangle(axes[0], box, PRED_COLOUR)
    if true_box is not None:
        _rectangle(axes[0], true_box, TRUE_COLOUR, "--")
    axes[0].set_title(f"strongest window: p(face) = {probability:.3f}", fontsize=9)
    axes[0].axis("off")
    shown = axes[1].imshow(probabilities, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    rows, cols = probabilities.shape
    axes[1].set_title(f"p(face) per 12x12 window at scale {scale:.3f} ({rows}x{cols})", fontsize=9)
    axes[1].axis("off")
    fig.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.04)
    return save_figure(fig, path)
