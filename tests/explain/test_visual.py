"""Overlays and the PNG figures: colours checked against matplotlib's jet map, files read back with Pillow."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib import colormaps
from PIL import Image

from cnnlab.core.errors import ShapeError
from cnnlab.explain import overlay, plot_cam, plot_feature_maps, plot_filters


def test_overlay_blends_the_jet_colour_of_each_pixel():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    heat = rng.random((5, 7))
    expected = 0.3 * image + 0.7 * colormaps["jet"](heat)[..., :3] * 255
    got = overlay(image, torch.from_numpy(heat), alpha=0.7)
    assert got.dtype == np.uint8 and got.shape == (5, 7, 3)
    assert np.abs(got.astype(float) - expected).max() <= 1.0  # jet is a 256-entry table: one step of rounding
    assert np.array_equal(overlay(image, heat, alpha=0.0), image)


def test_overlay_resizes_the_heatmap_and_takes_grey_images():
    grey = np.full((40, 60), 200, np.uint8)
    heat = np.zeros((4, 6))
    heat[:, 3:] = 1.0  # right half hot
    out = overlay(grey, heat, alpha=1.0)
    assert out.shape == (40, 60, 3)
    assert out[20, 5].tolist() == [0, 0, 128] and out[20, 55].tolist() == [128, 0, 0]  # jet's two ends
    assert np.array_equal(overlay(grey[..., None], heat, alpha=0.0), np.repeat(grey[..., None], 3, axis=2))


def test_overlay_rejects_what_it_cannot_show():
    with pytest.raises(ShapeError, match="uint8 image"):
        overlay(np.zeros((4, 4, 3), np.float32), np.zeros((4, 4)))
    with pytest.raises(ShapeError, match="heatmap"):
        overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((1, 4, 4)))


def test_figures_are_png_files_of_the_expected_layout(tmp_path):
    image = np.zeros((32, 32, 3), np.uint8)
    cam = plot_cam(image, np.eye(8), tmp_path / "sub" / "cam.png", "tiger cat (p=0.021)")
    maps = plot_feature_maps(torch.rand(40, 6, 6), tmp_path / "maps.png")
    filters = plot_filters(torch.randn(16, 1, 3, 3), tmp_path / "filters.png")
    for path in (cam, maps, filters):
        with Image.open(path) as png:
            assert png.format == "PNG" and png.width > 100
    with Image.open(cam) as png:
        assert png.width > 1.5 * png.height  # image | overlay side by side
    assert not list(tmp_path.rglob("*.tmp"))  # written atomically
    with pytest.raises(ShapeError, match="feature maps"):
        plot_feature_maps(torch.rand(1, 5, 6, 6), tmp_path / "x.png")
    with pytest.raises(ShapeError, match="conv filters"):
        plot_filters(torch.rand(5, 6, 6), tmp_path / "x.png")
