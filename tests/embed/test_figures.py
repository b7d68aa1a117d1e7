"""Embedding figures: valid PNGs of a sensible size, what they draw (axes, legends, titles), and the hardest pairs."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.decomposition import PCA
from torch import nn

from cnnlab.core.errors import ConfigError, ShapeError
from cnnlab.tasks.embed import figures
from cnnlab.tasks.embed.figures import (
    Pair,
    hardest_pairs,
    plot_distance_histograms,
    plot_embedding_2d,
    plot_hardest_pairs,
    plot_roc,
)
from cnnlab.tasks.embed.verification import pair_distances, roc


@pytest.fixture
def drawn(monkeypatch) -> list:
    """The Figures saved by the module under test (still written to disk)."""
    seen = []
    save = figures.save_figure

    def keep(fig, path, *args, **kwargs):
        seen.append(fig)
        return save(fig, path, *args, **kwargs)

    monkeypatch.setattr(figures, "save_figure", keep)
    return seen


def people(count: int, per_person: int, spread: float = 0.3, dim: int = 6, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(count, dim, generator=generator)
    labels = torch.arange(count).repeat_interleave(per_person)
    points = centres[labels] + spread * torch.randn(len(labels), dim, generator=generator)
    return torch.nn.functional.normalize(points, dim=1), labels


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.size


def legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    return [text.get_text() for text in legend.get_texts()] if legend else []


def test_roc_figure_has_a_log_panel_and_a_linear_panel(tmp_path, drawn):
    distances, same = pair_distances(*people(8, 4, spread=0.8))
    curve = roc(distances, same)
    path = plot_roc(curve, tmp_path / "roc.png", threshold=curve.eer_threshold)
    width, height = png_size(path)
    assert width >= 800 and height >= 350
    log_ax, linear_ax = drawn[0].axes
    assert log_ax.get_xscale() == "log" and linear_ax.get_xscale() == "linear"
    smallest = curve.far[curve.far > 0].min()
    assert log_ax.get_xlim()[0] == pytest.approx(max(1e-4, smallest))  # 496 impostor pairs: FAR from 1/496
    texts = " ".join(legend_texts(log_ax))
    assert f"AUC {curve.auc:.4f}" in texts and f"EER {curve.eer:.2%}" in texts and "TAR" in texts


def test_distance_histograms_with_a_threshold(tmp_path, drawn):
    distances, same = pair_distances(*people(5, 4))
    path = plot_distance_histograms(distances, same, tmp_path / "hist.png", threshold=0.7)
    assert min(png_size(path)) >= 300
    ax = drawn[0].axes[0]
    texts = legend_texts(ax)
    assert any(t.startswith(f"genuine (same person): {int(same.sum())} pairs") for t in texts)
    assert any("threshold 0.700" in t for t in texts)
    with pytest.raises(ShapeError):
        plot_distance_histograms(distances, same[:-1], tmp_path / "bad.png")


def test_tsne_map_of_3_people_clamps_the_perplexity(tmp_path, drawn):
    embeddings, labels = people(3, 4)  # 12 points: perplexity (12 - 1) / 3, below sklearn's limit of 12
    path = plot_embedding_2d(embeddings, labels, ["ann", "bob", "cy"], tmp_path / "tsne.png")
    assert min(png_size(path)) >= 300
    ax = drawn[0].axes[0]
    assert ax.get_title().startswith("t-SNE of 12 embeddings (3 people)")
    assert legend_texts(ax) == ["ann", "bob", "cy"]


def test_pca_map_of_25_people_has_no_legend_and_matches_sklearn(tmp_path, drawn):
    embeddings, labels = people(25, 2, dim=10)
    plot_embedding_2d(embeddings, labels, [f"p{k}" for k in range(25)], tmp_path / "pca.png", method="pca")
    ax = drawn[0].axes[0]
    assert ax.get_legend() is None and ax.get_title().startswith("PCA of 50 embeddings (25 people)")
    expected = PCA(2).fit_transform(embeddings.double().numpy())
    for person, points in enumerate(ax.collections):  # one scatter per person, in label order
        np.testing.assert_allclose(points.get_offsets(), expected[labels.numpy() == person], atol=1e-6)
    markers = {tuple(map(tuple, c.get_paths()[0].vertices.round(3))) for c in ax.collections}
    assert len(markers) == 2  # colours repeat after 20 people: the next 5 get a second marker


def test_embedding_map_without_sklearn_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.decomposition", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match="pip install scikit-learn"):
        plot_embedding_2d(*people(2, 3), ["a", "b"], tmp_path / "x.png", method="pca")


def test_hardest_pairs_finds_the_constructed_worst_pairs():
    # 1-D positions: person 0 at 0.0, 0.1 and 2.0 (its far image), person 1 at 3.0, 3.1 and 2.3 (close to 2.0)
    positions = torch.tensor([[0.0], [0.1], [2.0], [3.0], [3.1], [2.3]])
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    pairs = hardest_pairs(positions, labels, k=1)
    assert [(p.i, p.j, p.same) for p in pairs] == [(0, 2, True), (2, 5, False)]
    assert pairs[0].distance == pytest.approx(2.0) and pairs[1].distance == pytest.approx(0.3)
    # k = 3 against brute force over all pairs; the precomputed matrix gives the same
    every = [
        (i, j, abs(float(positions[i] - positions[j])), bool(labels[i] == labels[j]))
        for i, j in itertools.combinations(range(6), 2)
    ]
    genuine = sorted((p for p in every if p[3]), key=lambda p: -p[2])[:3]
    impostor = sorted((p for p in every if not p[3]), key=lambda p: p[2])[:3]
    found = hardest_pairs(positions, labels, k=3)
    assert [(p.i, p.j) for p in found] == [(p[0], p[1]) for p in genuine + impostor]
    matrix = torch.cdist(positions, positions)
    assert [(p.i, p.j) for p in hardest_pairs(matrix, labels, k=3, precomputed=True)] == [(p.i, p.j) for p in found]
    assert len(hardest_pairs(positions, labels, k=10)) == 6 + 9  # every pair: 6 genuine, 9 impostor


def test_hardest_pairs_figure_on_a_tiny_conv_net(tmp_path, drawn, one_thread):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    images = torch.rand(4, 3, 16, 16)
    pixels = (images.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
    pairs = [Pair(0, 1, 0.9, True), Pair(2, 3, 0.1, False)]
    path = plot_hardest_pairs(net, images, pixels, pairs, tmp_path / "pairs.png", threshold=0.5)
    width, height = png_size(path)
    assert width >= 800 and height >= 400
    axes = drawn[0].axes
    assert len(axes) == 8  # 2 rows of image | CAM | image | CAM
    assert "same person, WRONG" in axes[0].get_title() and "different people, WRONG" in axes[4].get_title()
    assert all(len(ax.get_images()) == 1 for ax in axes)
    right = plot_hardest_pairs(net, images, pixels[..., :1], [(0, 1, 0.4, True)], tmp_path / "grey.png", threshold=0.5)
    assert right.exists() and "right at t = 0.500" in drawn[1].axes[0].get_title()
    with pytest.raises(ShapeError, match="outside the 4 images"):
        plot_hardest_pairs(net, images, pixels, [(0, 4, 1.0, False)], tmp_path / "bad.png")
