"""Pictures of an embedder: the verification ROC, genuine and impostor distance histograms, a 2-D map of the
embeddings by person, and the hardest pairs with Grad-CAM on what made them look alike.

Figures are pyplot-free matplotlib Figures written atomically through :func:`cnnlab.report.figures.save_figure`;
every ``plot_*`` returns the PNG's path. The 2-D map needs scikit-learn (PCA, t-SNE), imported only there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from cnnlab.core.errors import ConfigError, DataError, ShapeError
from cnnlab.explain.cam import GradCAM, similarity_to
from cnnlab.explain.hooks import eval_mode
from cnnlab.explain.visual import overlay
from cnnlab.report.figures import save_figure, subplots
from cnnlab.tasks.embed.verification import Roc

SMALLEST_FAR = 1e-4
"""The log-FAR axis of :func:`plot_roc` starts here, or at the smallest nonzero FAR when that is larger (at most
0.1, so that the axis always spans a decade)."""

TSNE_LIMIT = 2000
"""``method="auto"`` of :func:`plot_embedding_2d` runs t-SNE up to this many embeddings, PCA above."""

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


class Pair(NamedTuple):
    """Two images ``i < j``, their embeddings' distance, and whether they show the same person."""

    i: int
    j: int
    distance: float
    same: bool


def plot_roc(roc: Roc, path: str | Path, threshold: float | None = None, title: str = "Verification ROC") -> Path:
    """TAR against FAR: on a log FAR axis (left) and a linear one (right, with chance and FAR = FRR lines), the
    EER point and the point of ``threshold`` (when given) marked, AUC and EER in the legend.

    >>> import tempfile, pathlib
    >>> from cnnlab.tasks.embed.verification import roc
    >>> curve = roc([0.1, 0.2, 0.5, 0.3, 0.6, 0.9], [True, True, True, False, False, False])
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "roc.png"
    >>> plot_roc(curve, out, threshold=0.35).stat().st_size > 1000
    True
    """
    fig, (log_ax, linear_ax) = subplots(1, 2, figsize=(10, 4.4))
    eer_tar = 1.0 - roc.eer
    for ax in (log_ax, linear_ax):
        ax.plot(roc.far, roc.tar, linewidth=1.6, label=f"ROC (AUC {roc.auc:.4f})")
        ax.plot(
            [roc.eer], [eer_tar], "o", color="tab:orange", label=f"EER {roc.eer:.2%} at d = {roc.eer_threshold:.3f}"
        )
        if threshold is not None:
            far, tar = roc.rates_at(threshold)
            ax.plot([far], [tar], "s", color="tab:red", label=f"d <= {threshold:.3f}: TAR {tar:.2%}, FAR {far:.2%}")
        ax.set(xlabel="false accept rate (impostor pairs accepted)", ylabel="true accept rate (genuine accepted)")
        ax.grid(alpha=0.3, which="both")
    smallest = float(roc.far[roc.far > 0].min())  # the last point has FAR = 1
    log_ax.set_xscale("log", nonpositive="clip")  # FAR = 0 sits on the left edge
    log_ax.set(xlim=(min(max(SMALLEST_FAR, smallest), 0.1), 1.0), ylim=(0, 1.02), title=f"{title} (log FAR)")
    log_ax.legend(loc="lower right", fontsize=8)
    linear_ax.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    linear_ax.plot([0, 1], [1, 0], "--", color="grey", linewidth=0.8, label="FAR = FRR")
    linear_ax.set(xlim=(0, 1), ylim=(0, 1.02), title=f"{title} (linear)")
    linear_ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)


def plot_distance_histograms(
    distances: torch.Tensor | np.ndarray,
    same: torch.Tensor | np.ndarray,
    path: str | Path,
    threshold: float | None = None,
) -> Path:
    """Density histograms of the genuine (same person) and impostor pair distances on shared bins, with the
    threshold (when given) as a labelled vertical line.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "hist.png"
    >>> plot_distance_histograms(np.array([0.2, 0.3, 0.9, 1.1]), np.array([1, 1, 0, 0]), out, 0.6).name
    'hist.png'
    """
    values = _numpy(distances).astype(np.float64).ravel()
    flags = _numpy(same).astype(bool).ravel()
    if len(values) != len(flags) or not len(values):
        raise ShapeError(
            f"{len(values)} distances and {len(flags)} same-person flags",
            where="same",
            fix="pass the two results of pair_distances (at least one pair)",
        )
    edges = np.histogram_bin_edges(values, bins=min(60, max(10, len(values) // 20)))
    fig, ax = subplots(figsize=(6.4, 4.2))
    for kind, colour, name in ((flags, "tab:green", "genuine (same person)"), (~flags, "tab:red", "impostor")):
        if kind.any():
            label = f"{name}: {int(kind.sum())} pairs, median {np.median(values[kind]):.3f}"
            ax.hist(values[kind], bins=edges, density=True, alpha=0.5, color=colour, label=label)
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3f} (same if below)")
    ax.set(xlabel="Euclidean distance between embeddings", ylabel="density", title="Pair distances")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_embedding_2d(
    embeddings: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    names: Sequence[str],
    path: str | Path,
    method: str = "auto",
) -> Path:
    """The embeddings in 2-D, coloured by person (``names[label]``): ``"pca"``, ``"tsne"`` (perplexity
    ``min(30, (N - 1) / 3)``, PCA initialisation, seed 0) or ``"auto"`` (t-SNE up to :data:`TSNE_LIMIT` points).

    Up to 20 people: one ``tab20`` colour each and a legend; more: colours repeat with a new marker per 20 and
    no legend. Needs scikit-learn.

    >>> import tempfile, pathlib
    >>> points, people = np.random.default_rng(0).normal(size=(6, 4)), np.array([0, 0, 1, 1, 2, 2])
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "map.png"
    >>> plot_embedding_2d(points, people, ["ann", "bob", "cy"], out, method="pca").name
    'map.png'
    """
    vectors = _numpy(embeddings).astype(np.float64)
    people = _numpy(labels).astype(np.int64).ravel()
    if vectors.ndim != 2 or len(vectors) != len(people):
        raise ShapeError(
            f"embeddings {vectors.shape} and {len(people)} labels", where="embeddings", fix="one (D,) row per label"
        )
    if method not in ("auto", "pca", "tsne"):
        raise ConfigError(f"unknown method '{method}'", where="method", fix="use 'auto', 'pca' or 'tsne'")
    if method == "auto":
        method = "tsne" if len(vectors) <= TSNE_LIMIT else "pca"
    points, axis_names = _project(vectors, method)
    present = np.unique(people)
    fig, ax = subplots(figsize=(7.5, 6) if len(present) <= 20 else (6, 6))
    from matplotlib import colormaps

    colours = colormaps["tab20"].colors
    for rank, person in enumerate(present):
        mine = people == person
        ax.scatter(
            points[mine, 0],
            points[mine, 1],
            s=22,
            color=colours[rank % 20],
            marker=_MARKERS[(rank // 20) % len(_MARKERS)],
            label=names[person] if 0 <= person < len(names) else str(person),
        )
    heading = "t-SNE" if method == "tsne" else "PCA"
    ax.set(
        xlabel=axis_names[0],
        ylabel=axis_names[1],
        title=f"{heading} of {len(vectors)} embeddings ({len(present)} people)",
    )
    if len(present) <= 20:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return save_figure(fig, path)


def hardest_pairs(
    data: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray, k: int = 4, *, precomputed: bool = False
) -> list[Pair]:
    """The ``k`` genuine pairs farthest apart (hardest first), then the ``k`` impostor pairs closest together.

    ``data`` is the embeddings ``(N, D)``, or with ``precomputed`` the distance matrix ``(N, N)`` (only its
    upper triangle is read). Fewer pairs come back where fewer exist. The whole ``(N, N)`` matrix is held
    (N = 4000: 64 MB).

    >>> points = torch.tensor([[0.0], [3.0], [1.2], [2.0]])
    >>> hardest_pairs(points, torch.tensor([0, 0, 1, 1]), k=1)
    [Pair(i=0, j=1, distance=3.0, same=True), Pair(i=1, j=3, distance=1.0, same=False)]
    """
    people = torch.as_tensor(_numpy(labels)).ravel()
    matrix = torch.as_tensor(_numpy(data))
    if precomputed:
        if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ShapeError(f"expected a distance matrix (N, N), got {tuple(matrix.shape)}", where="data")
    else:
        if matrix.dim() != 2:
            raise ShapeError(f"expected embeddings (N, D), got {tuple(matrix.shape)}", where="data")
        vectors = matrix.float() if not matrix.is_floating_point() else matrix
        matrix = torch.cdist(vectors, vectors, compute_mode="donot_use_mm_for_euclid_dist")
    if len(people) != len(matrix):
        raise ShapeError(f"{len(matrix)} images but {len(people)} labels", where="labels", fix="one label per image")
    n = len(matrix)
    upper = torch.ones(n, n, dtype=torch.bool).triu(1)
    same = people[:, None] == people[None, :]
    pairs = []
    for kind, largest in ((same & upper, True), (~same & upper, False)):
        fill = -torch.inf if largest else torch.inf
        scores = torch.where(kind, matrix, torch.full_like(matrix, fill)).flatten()
        count = min(k, int(kind.sum()))
        for flat in scores.topk(count, largest=largest).indices.tolist():
            i, j = divmod(flat, n)
            pairs.append(Pair(i, j, float(matrix[i, j]), bool(same[i, j])))
    return pairs


def plot_hardest_pairs(
    model: nn.Module,
    images: torch.Tensor,
    pixels: np.ndarray,
    pairs: Sequence[Pair | tuple[int, int, float, bool]],
    path: str | Path,
    layer: str | nn.Module | None = None,
    threshold: float | None = None,
) -> Path:
    """One row per pair: image a, its Grad-CAM for the similarity to b's embedding, image b, its Grad-CAM for the
    similarity to a's. ``images (N, C, H, W)`` are the model's (normalised) inputs, ``pixels (N, H, W, C)``
    uint8 the same images for display; ``layer`` as for :class:`~cnnlab.explain.cam.GradCAM`. The row says the
    distance, same person or not, and, with ``threshold``, whether "same if ``distance <= threshold``" is right.

    >>> import tempfile, pathlib
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    >>> images = torch.rand(2, 3, 8, 8)
    >>> pixels = (images.permute(0, 2, 3, 1) * 255).to(torch.uint8).numpy()
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "pairs.png"
    >>> plot_hardest_pairs(net, images, pixels, [(0, 1, 0.5, False)], out, threshold=0.6).name
    'pairs.png'
    """
    pixels = np.asarray(pixels)
    if images.dim() != 4 or pixels.ndim != 4 or len(images) != len(pixels):
        raise ShapeError(
            f"images {tuple(images.shape)} and pixels {pixels.shape} do not match",
            where="pixels",
            fix="pass the model inputs (N, C, H, W) and the same N images as uint8 (N, H, W, C)",
        )
    if not pairs:
        raise DataError("no pairs to show", where="pairs", fix="pass hardest_pairs(embeddings, labels)")
    bad = [pair for pair in pairs if not (0 <= pair[0] < len(images) and 0 <= pair[1] < len(images))]
    if bad:
        raise ShapeError(f"pair {tuple(bad[0])} points outside the {len(images)} images", where="pairs")
    device = next((p.device for p in model.parameters()), images.device)
    images = images.to(device)
    fig, axes = subplots(len(pairs), 4, figsize=(10, 2.7 * len(pairs) + 0.4), squeeze=False)
    with GradCAM(model, layer) as cam:
        for row, (i, j, distance, same) in zip(axes, pairs, strict=True):
            for column, (me, other) in enumerate(((i, j), (j, i))):
                heat = cam(images[me : me + 1], target=similarity_to(_embed(model, images[other : other + 1])))[0]
                plain = pixels[me][..., 0] if pixels.shape[3] == 1 else pixels[me]
                row[2 * column].imshow(plain, cmap="gray" if plain.ndim == 2 else None, vmin=0, vmax=255)
                row[2 * column].set_title(f"#{me}", fontsize=8)
                row[2 * column + 1].imshow(overlay(pixels[me], heat))
                row[2 * column + 1].set_title(f"Grad-CAM: #{me} like #{other}", fontsize=8)
            row[0].set_title(_verdict(i, j, distance, same, threshold), fontsize=8)
            for ax in row:
                ax.axis("off")
    fig.suptitle("Hardest pairs (Grad-CAM of the similarity to the other image)")
    return save_figure(fig, path)


def _project(vectors: np.ndarray, method: str) -> tuple[np.ndarray, tuple[str, str]]:
    """2-D coordinates and axis names (PCA: with the share of variance each axis keeps)."""
    try:
        from sklearn.decomposition import PCA
        from sklearn.manifold import TSNE
    except ImportError as error:
        raise ConfigError(
            "the 2-D embedding map needs scikit-learn",
            where="plot_embedding_2d",
            fix="pip install scikit-learn",
        ) from error
    need = 3 if method == "tsne" else 2
    if len(vectors) < need or vectors.shape[1] < 2:
        raise DataError(
            f"{method} needs at least {need} embeddings of at least 2 dimensions, got {vectors.shape}",
            where="embeddings",
            fix="pass more images",
        )
    if method == "tsne":
        perplexity = min(30.0, (len(vectors) - 1) / 3)
        points = TSNE(2, perplexity=perplexity, init="pca", random_state=0).fit_transform(vectors)
        return points, ("t-SNE 1", "t-SNE 2")
    pca = PCA(2).fit(vectors)
    share = pca.explained_variance_ratio_
    return pca.transform(vectors), (f"PC1 ({share[0]:.0%} of variance)", f"PC2 ({share[1]:.0%})")


def _embed(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """The embedding ``(D,)`` of one image ``(1, C, H, W)``, in eval mode and without gradients."""
    with eval_mode(model), torch.no_grad():
        output = model(batch)
    if not isinstance(output, torch.Tensor) or output.dim() != 2:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ShapeError(f"the model returned {shape}, not embeddings (B, D)", where="model")
    return output[0]


def _verdict(i: int, j: int, distance: float, same: bool, threshold: float | None) -> str:
    """Two lines: the pair and its distance; the truth, and with a threshold whether it judges the pair right."""
    text = f"#{i} vs #{j}: d = {distance:.3f}\n{'same person' if same else 'different people'}"
    if threshold is None:
        return text
    right = (distance <= threshold) == same
    return text + f", {'right' if right else 'WRONG'} at t = {threshold:.3f}"


def _numpy(values: Any) -> np.ndarray:
    return values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
