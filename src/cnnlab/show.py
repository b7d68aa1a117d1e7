"""Pictures for notebooks: each function returns a :class:`~cnnlab.core.display.Picture` that Jupyter shows
inline (and ``.save(path)`` writes), and :func:`run` shows a whole run folder.

Nothing here switches matplotlib's backend or touches pyplot: the pictures are PNGs made in memory.

>>> import numpy as np
>>> from cnnlab import show
>>> show.confusion([0, 1, 1, 0], [0, 1, 0, 0], classes=["cat", "dog"]).counts.tolist()
[[2, 0], [1, 1]]
>>> show.boxes(np.zeros((32, 32), np.uint8), [[4, 4, 20, 20]], ["cell"])
Picture(1 box, ... bytes of PNG)
"""

from __future__ import annotations

import csv
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.core.display import Picture, html_table, img_tag
from cnnlab.core.errors import DataError
from cnnlab.core.rundir import RunDir
from cnnlab.report.artefacts import Plot


def figure(fig: Any, title: str = "") -> Picture:
    """Any matplotlib Figure (e.g. :func:`cnnlab.layers.kernels.kernel_gallery`'s) as a picture Jupyter shows inline,
    whatever the backend."""
    return Picture.from_figure(fig, title)


class ConfusionPicture(Picture):
    """A confusion matrix: the picture, and its ``counts[true, predicted]``."""

    def __init__(self, png: bytes, title: str, counts: np.ndarray) -> None:
        super().__init__(png, title)
        self.counts = counts


def confusion(
    y_true: Sequence[int] | np.ndarray | torch.Tensor,
    y_pred: Sequence[int] | np.ndarray | torch.Tensor,
    classes: Sequence[str] | None = None,
    normalized: bool = False,
) -> ConfusionPicture:
    """The confusion matrix of class indices ``y_true`` vs ``y_pred`` (rows: true class), as a picture with its
    counts (``.counts``); ``classes`` names the indices (default ``0..n-1``)."""
    from cnnlab.report.plots import confusion_figure

    truth, predicted = _indices(y_true, "y_true"), _indices(y_pred, "y_pred")
    if truth.shape != predicted.shape:
        raise DataError(
            f"y_true has {truth.size} labels and y_pred {predicted.size}", where="show.confusion", fix="pass one each"
        )
    n = len(classes) if classes is not None else int(max(truth.max(initial=0), predicted.max(initial=0))) + 1
    if truth.size and max(truth.max(), predicted.max()) >= n:
        raise DataError(
            f"a label is {max(truth.max(), predicted.max())} but there are {n} class names",
            where="show.confusion",
            fix="pass every class name in classes=",
        )
    counts = np.zeros((n, n), dtype=np.int64)
    np.add.at(counts, (truth, predicted), 1)
    names = list(classes) if classes is not None else [str(i) for i in range(n)]
    figure = confusion_figure(counts, names, normalized=normalized)
    return ConfusionPicture(Picture.from_figure(figure).png, "confusion matrix", counts)


def images(
    batch: torch.Tensor | np.ndarray | Sequence[np.ndarray],
    labels: Sequence[int] | Sequence[str] | torch.Tensor | None = None,
    classes: Sequence[str] | None = None,
    columns: int = 8,
) -> Picture:
    """A grid of images: a tensor ``(N, C, H, W)`` (floats in [0, 1], as cnnlab's loaders give, or uint8) or
    arrays ``(H, W[, C])``; ``labels`` (indices, named by ``classes``, or strings) become the captions."""
    from cnnlab.report.plots import image_grid_figure

    tiles = [_uint8_image(image) for image in batch]
    captions = [_caption(labels, classes, i) for i in range(len(tiles))]
    return Picture(Picture.from_figure(image_grid_figure(tiles, captions, columns)).png, f"{len(tiles)} images")


def cam(
    model: nn.Module,
    image: torch.Tensor,
    target: int | None = None,
    layer: str | None = None,
    classes: Sequence[str] | None = None,
) -> Picture:
    """Grad-CAM of ``model`` for one image ``(C, H, W)`` (or ``(1, C, H, W)``) in [0, 1]: the image beside the
    heatmap over it, titled with the explained class (``target``; default the predicted one) and its
    probability. ``layer`` names the layer (default: the last conv)."""
    from cnnlab.explain import GradCAM
    from cnnlab.explain.visual import overlay
    from cnnlab.report.figures import subplots

    x = image if image.dim() == 4 else image.unsqueeze(0)
    with GradCAM(model, layer) as gradcam:
        result = gradcam.explain(x, target)
    explained = int(result.targets[0])
    probability = float(result.logits.float().softmax(1)[0, explained])
    name = classes[explained] if classes is not None else f"class {explained}"
    picture = _uint8_image(x[0])
    fig, axes = subplots(1, 2, figsize=(6, 3.3))
    axes[0].imshow(picture, cmap="gray" if picture.ndim == 2 else None)
    axes[1].imshow(overlay(picture, result.maps[0]))
    axes[0].set_title("image")
    axes[1].set_title(f"Grad-CAM: {name} (p={probability:.2f})")
    for ax in axes:
        ax.axis("off")
    return Picture(Picture.from_figure(fig).png, f"Grad-CAM of {name}")


def boxes(
    image: np.ndarray | torch.Tensor,
    xyxy: Sequence[Sequence[float]] | np.ndarray | torch.Tensor,
    labels: Sequence[str],
    scores: Sequence[float] | np.ndarray | torch.Tensor | None = None,
) -> Picture:
    """``image`` with each box (pixel ``x1, y1, x2, y2``) outlined and tagged with its label (and score)."""
    from cnnlab.report.boxes_drawing import draw_boxes

    drawn = draw_boxes(_uint8_image(image), xyxy, labels, scores)
    return Picture(Picture.from_array(drawn).png, f"{len(labels)} box{'es' if len(labels) != 1 else ''}")


def mask(image: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, alpha: float = 0.45) -> Picture:
    """``image`` beside itself with a segmentation mask over it (one colour per class; class 0 left clear)."""
    from matplotlib import colormaps

    from cnnlab.report.figures import subplots

    picture = _uint8_image(image)
    classes = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels).astype(np.int64)
    if classes.shape != picture.shape[:2]:
        raise DataError(
            f"the mask is {classes.shape} but the image {picture.shape[:2]}", where="show.mask", fix="pass (H, W)"
        )
    rgb = picture if picture.ndim == 3 else np.repeat(picture[..., None], 3, axis=2)
    colours = (np.asarray(colormaps["tab10"].colors)[(classes - 1) % 10] * 255).astype(np.float64)
    blended = np.where(classes[..., None] > 0, (1 - alpha) * rgb + alpha * colours, rgb)
    fig, axes = subplots(1, 2, figsize=(6, 3.3))
    axes[0].imshow(rgb)
    axes[1].imshow(np.clip(np.rint(blended), 0, 255).astype(np.uint8))
    axes[0].set_title("image")
    axes[1].set_title(f"mask ({len(np.unique(classes[classes > 0]))} classes present)")
    for ax in axes:
        ax.axis("off")
    return Picture(Picture.from_figure(fig).png, "segmentation")


class RunView:
    """A run folder as a notebook shows it: headline results, training curves, confusion matrix and the other
    plots, and where the full report is. ``.results``, ``.config`` and ``.history`` hold the numbers."""

    def __init__(self, path: str | Path) -> None:
        self.run = RunDir.open(path)
        self.path = self.run.path
        self.results: dict[str, Any] = _json(self.path / "results.json")
        self.config: str = self.run.config.read_text(encoding="utf-8")
        self.history: list[dict[str, str]] = _csv(self.run.metrics)

    def plots(self) -> list[Path]:
        """The run's PNG plots, training curves and confusion matrix first."""
        first = (Plot.CURVES, Plot.CONFUSION)
        found = sorted(self.run.plots.glob("*.png")) if self.run.plots.is_dir() else []
        return sorted(found, key=lambda p: (first.index(p.name) if p.name in first else len(first), p.name))

    def _repr_html_(self) -> str:
        headline = [(k, _shown(v)) for k, v in self.results.items() if isinstance(v, int | float | str)]
        parts = [f"<h3>{html.escape(self.path.name)}</h3>"]
        if headline:
            parts.append(html_table(["result", "value"], headline[:16]))
        elif self.history:
            parts.append(html_table(list(self.history[-1]), [list(self.history[-1].values())], "last epoch"))
        for plot in self.plots()[:8]:
            parts.append(f"<p>{html.escape(plot.stem.replace('_', ' '))}</p>" + img_tag(plot.read_bytes(), plot.stem))
        if self.run.report.is_file():
            parts.append(f"<p>Full report: <code>{html.escape(str(self.run.report))}</code></p>")
        return "\n".join(parts)

    def __repr__(self) -> str:
        return f"RunView({self.path})"


def run(path: str | Path) -> RunView:
    """A run folder made by ``cnnlab train`` (or ``Trainer`` with a run folder), for a notebook to show."""
    return RunView(path)


def _indices(values: Sequence[int] | np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    array = np.asarray(values.cpu() if isinstance(values, torch.Tensor) else values)
    if array.size and (not np.issubdtype(array.dtype, np.integer) or array.min() < 0):
        raise DataError(f"{name} must hold class indices (0, 1, ...)", where="show.confusion", fix="argmax the logits")
    return array.astype(np.int64).ravel()


def _uint8_image(image: Any) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 3)`` uint8 from a ``(C, H, W)`` tensor (uint8, or floats in [0, 1]) or an
    ``(H, W[, C])`` array (likewise)."""
    if isinstance(image, torch.Tensor):
        tensor = image.detach().cpu()
        array = tensor.permute(1, 2, 0).numpy() if tensor.dim() == 3 else tensor.numpy()
        if tensor.dtype != torch.uint8:
            array = (np.clip(array.astype(np.float64), 0, 1) * 255).round().astype(np.uint8)
    else:
        array = np.asarray(image)
        if array.dtype != np.uint8:
            array = (np.clip(array.astype(np.float64), 0, 1) * 255).round().astype(np.uint8)
    return array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array


def _caption(labels: Any, classes: Sequence[str] | None, i: int) -> str:
    if labels is None:
        return ""
    label = labels[i].item() if isinstance(labels, torch.Tensor) else labels[i]
    return classes[int(label)] if classes is not None and not isinstance(label, str) else str(label)


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))
