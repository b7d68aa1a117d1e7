"""Figures written into run folders (matplotlib Figures without pyplot: no screen, no backend switch).

Every function takes plain numbers or uint8 image arrays (never a model) and returns the PNG's path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.report.figures import save_figure, subplots


def plot_confusion_matrix(
    counts: np.ndarray,
    class_names: Sequence[str],
    path: str | Path,
    title: str = "Confusion matrix",
    normalized: bool = False,
    axes: tuple[str, str] = ("true", "predicted"),
    background: bool = False,
) -> Path:
    """Save a heatmap of ``counts[true, pred]``: colour = share of the true class; text = the count,
    or with ``normalized`` the share in percent (each row sums to 100). ``axes`` names the rows and columns;
    ``background``: the last row and column are a detector's background (set apart by lines, and the
    title carries no accuracy).

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "cm.png"
    >>> plot_confusion_matrix(np.array([[5, 1], [0, 4]]), ["cat", "dog"], out).stat().st_size > 1000
    True
    """
    return save_figure(confusion_figure(counts, class_names, title, normalized, axes, background), path)


def confusion_figure(
    counts: np.ndarray,
    class_names: Sequence[str],
    title: str = "Confusion matrix",
    normalized: bool = False,
    axes: tuple[str, str] = ("true", "predicted"),
    background: bool = False,
) -> Any:
    """The Figure :func:`plot_confusion_matrix` saves (for a notebook to show it)."""
    counts = np.asarray(counts)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    n = len(class_names)
    size = max(4.0, 0.55 * n + 2)
    fig, ax = subplots(figsize=(size + 1, size))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the row")
    accuracy = "" if background else f" (accuracy {np.trace(counts) / max(counts.sum(), 1):.2%})"
    ax.set(
        xticks=range(n),
        yticks=range(n),
        xticklabels=class_names,
        yticklabels=class_names,
        xlabel=axes[1],
        ylabel=axes[0],
        title=title + accuracy,
    )
    for label in ax.get_xticklabels():
        label.set(rotation=45, ha="right", rotation_mode="anchor")
    if background:
        ax.axhline(n - 1.5, color="grey", linewidth=0.8)
        ax.axvline(n - 1.5, color="grey", linewidth=0.8)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    colour = "white" if share[i, j] > 0.5 else "black"
                    text = f"{100 * share[i, j]:.0f}" if normalized else str(counts[i, j])
                    ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=8)
    return fig


def plot_training_curves(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Loss and a score per epoch (training and validation) from ``metrics.csv`` rows: accuracy, or a
    segmentation run's Dice, or a detection run's mAP@0.5 (VOC all-point), whichever the rows hold.

    >>> import tempfile, pathlib
    >>> rows = [{"epoch": 1, "loss": 1.0, "acc": 0.5, "val_loss": 1.1, "val_acc": 0.4}, {"epoch": 2, "loss": 0.5,
    ...     "acc": 0.8, "val_loss": 0.7, "val_acc": 0.7}]
    >>> plot_training_curves(rows, pathlib.Path(tempfile.mkdtemp()) / "curves.png").suffix
    '.png'
    """
    return save_figure(training_curves_figure(rows), path)


def training_curves_figure(rows: Sequence[Mapping[str, Any]]) -> Any:
    """The Figure :func:`plot_training_curves` saves (for a notebook to show it)."""
    epochs = [int(row["epoch"]) for row in rows]
    fig, axes = subplots(1, 2, figsize=(10, 3.6))
    columns = set().union(*rows)
    score, title = next(((k, t) for k, t in _SCORES if k in columns or f"val_{k}" in columns), _SCORES[0])
    for ax, key, label in ((axes[0], "loss", "loss"), (axes[1], score, title)):
        for prefix, style in (("", "-o"), ("val_", "--s")):
            values = _column(rows, prefix + key)
            if values is not None:
                ax.plot(epochs, values, style, markersize=4, label=("validation " if prefix else "training ") + label)
        ax.set(xlabel="epoch", ylabel=label, title=label[0].upper() + label[1:])
        ax.xaxis.set_major_locator(_integer_ticks())
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return fig


_SCORES = (("acc", "accuracy"), ("accuracy", "accuracy"), ("dice", "Dice"), ("map50", "mAP@0.5"))
"""The score panel of :func:`plot_training_curves`: the first of these the rows hold."""


def plot_lr_schedule(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """The learning rate at the end of each epoch (the ``lr`` column of ``metrics.csv``).

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "lr.png"
    >>> plot_lr_schedule([{"epoch": 1, "lr": 0.01}, {"epoch": 2, "lr": 0.001}], out).name
    'lr.png'
    """
    fig, ax = subplots(figsize=(6, 3.2))
    ax.plot([int(row["epoch"]) for row in rows], _column(rows, "lr") or [], "-o", markersize=4)
    ax.set(xlabel="epoch", ylabel="learning rate", title="Learning rate (end of epoch)")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.xaxis.set_major_locator(_integer_ticks())
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_reliability(bins: Mapping[str, Sequence[float]], ece: float, path: str | Path) -> Path:
    """Reliability diagram: accuracy (bars) and mean confidence (red marks) per confidence bin against
    the diagonal, with the bin counts below.

    ``bins`` is :func:`cnnlab.train.metrics.reliability_bins`'s result (``edges``, ``count``,
    ``confidence``, ``accuracy``).

    >>> import tempfile, pathlib
    >>> bins = {"edges": [0, 0.5, 1], "count": [2, 8], "confidence": [0.4, 0.9], "accuracy": [0.5, 0.75]}
    >>> plot_reliability(bins, 0.14, pathlib.Path(tempfile.mkdtemp()) / "rel.png").name
    'rel.png'
    """
    edges = np.asarray(bins["edges"], dtype=float)
    count = np.asarray(bins["count"], dtype=float)
    accuracy = np.asarray(bins["accuracy"], dtype=float)
    confidence = np.asarray(bins["confidence"], dtype=float)
    width, left = np.diff(edges), edges[:-1]
    filled = count > 0
    fig, (top, bottom) = subplots(2, 1, figsize=(5, 6), height_ratios=[3, 1], sharex=True)
    top.bar(left[filled], accuracy[filled], width[filled], align="edge", edgecolor="black", label="accuracy")
    centres = (left + width / 2)[filled]
    top.scatter(centres, confidence[filled], marker="_", s=400, linewidths=2.5, color="red", label="mean confidence")
    top.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    top.set(ylabel="accuracy", ylim=(0, 1), title=f"Reliability (ECE {ece:.2%})")
    top.legend(loc="upper left")
    bottom.bar(left, count, width, align="edge", color="grey", edgecolor="black")
    bottom.set(xlabel="confidence (max probability)", ylabel="images", xlim=(0, 1))
    return save_figure(fig, path)


def plot_image_grid(
    images: Sequence[np.ndarray], titles: Sequence[str], path: str | Path, columns: int = 8, title: str = ""
) -> Path:
    """Tiles of uint8 images ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``, each with a small caption.

    >>> import tempfile, pathlib
    >>> tiles = [np.zeros((8, 8), np.uint8), np.full((8, 8, 3), 255, np.uint8)]
    >>> plot_image_grid(tiles, ["black", "white"], pathlib.Path(tempfile.mkdtemp()) / "grid.png").name
    'grid.png'
    """
    return save_figure(image_grid_figure(images, titles, columns, title), path)


def image_grid_figure(images: Sequence[np.ndarray], titles: Sequence[str], columns: int = 8, title: str = "") -> Any:
    """The Figure :func:`plot_image_grid` saves (for a notebook to show it)."""
    columns = max(1, min(columns, len(images)))
    rows = max(1, -(-len(images) // columns))
    fig, axes = subplots(rows, columns, figsize=(1.6 * columns, 1.75 * rows + (0.4 if title else 0)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, titles, strict=False):
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[..., 0]
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
        ax.set_title(caption, fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def plot_mistakes(
    images: Sequence[np.ndarray], heatmaps: Sequence[np.ndarray], captions: Sequence[str], path: str | Path, title: str
) -> Path:
    """Pairs of tiles, four pairs a row: the uint8 image, then the image with its heatmap ``(H, W)``
    in [0, 1] (Grad-CAM) drawn over it in the ``jet`` colours.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "worst.png"
    >>> plot_mistakes([np.zeros((8, 8), np.uint8)], [np.eye(8)], ["cat as dog"], out, "Mistakes").name
    'worst.png'
    """
    columns = 2 * max(1, min(4, len(images)))
    rows = max(1, -(-2 * len(images) // columns))
    fig, axes = subplots(rows, columns, figsize=(1.7 * columns, 1.9 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (image, heat, caption) in enumerate(zip(images, heatmaps, captions, strict=True)):
        image = np.asarray(image)
        image = image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image
        cmap = "gray" if image.ndim == 2 else None
        plain, cam = axes.flat[2 * i], axes.flat[2 * i + 1]
        plain.imshow(image, cmap=cmap, vmin=0, vmax=255)
        plain.set_title(caption, fontsize=7)
        cam.imshow(image, cmap=cmap, vmin=0, vmax=255)
        height, width = image.shape[:2]
        cam.imshow(
            np.asarray(heat), cmap="jet", alpha=0.45, vmin=0, vmax=1, extent=(-0.5, width - 0.5, height - 0.5, -0.5)
        )
        cam.set_title("Grad-CAM", fontsize=7)
    fig.suptitle(title)
    return save_figure(fig, path)


def _column(rows: Sequence[Mapping[str, Any]], key: str) -> list[float] | None:
    if not rows or any(row.get(key) in (None, "") for row in rows):
        return None
    return [float(row[key]) for row in rows]


def _integer_ticks() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def plot_lr_find(lrs: list[float], losses: list[float], suggestion: float, path: str | Path) -> Path:
    """Save the LR range test: smoothed loss against LR (log scale), the suggestion marked.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "lr.png"
    >>> plot_lr_find([1e-4, 1e-3, 1e-2], [2.0, 1.0, 3.0], 1e-3, out).stat().st_size > 1000
    True
    """
    fig, ax = subplots(figsize=(6, 4))
    ax.plot(lrs, losses)
    ax.axvline(suggestion, color="tab:red", linestyle="--", label=f"suggested {suggestion:.1e}")
    ax.set(xscale="log", xlabel="learning rate", ylabel="loss (smoothed)", title="LR range test")
    ax.legend()
    return save_figure(fig, path)
