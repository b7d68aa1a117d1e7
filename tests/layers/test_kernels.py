"""Classic kernels and apply_kernel against scipy.signal.correlate2d and the textbook edge example."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.signal import correlate2d
from scipy.signal.windows import gaussian

from cnnlab.core.errors import DataError, RegistryError, ShapeError
from cnnlab.layers.kernels import (
    apply_kernel,
    feature_map_image,
    gaussian_kernel,
    get_kernel,
    kernel_gallery,
    list_kernels,
    load_grayscale,
)

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("name", list_kernels())
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_apply_kernel_equals_scipy_correlate2d(name: str, padding: str) -> None:
    image = RNG.random((13, 17))
    kernel = get_kernel(name, torch.float64).numpy()
    out = apply_kernel(image, name, padding=padding)
    np.testing.assert_allclose(out.numpy(), correlate2d(image, kernel, mode=padding), atol=1e-12)


@pytest.mark.parametrize("stride", [2, 3])
@pytest.mark.parametrize("pad", [0, 2])
def test_int_padding_and_stride_equal_padded_subsampled_scipy(stride: int, pad: int) -> None:
    image = RNG.random((3, 11, 10))  # (C, H, W): each channel on its own
    out = apply_kernel(image, "sobel-y", padding=pad, stride=stride)
    for c in range(3):
        reference = correlate2d(np.pad(image[c], pad), get_kernel("sobel-y", torch.float64).numpy(), mode="valid")
        np.testing.assert_allclose(out[c].numpy(), reference[::stride, ::stride], atol=1e-12)


def test_same_padding_with_stride_gives_ceil_n_over_s() -> None:
    assert apply_kernel(torch.rand(7, 9), "gaussian-blur", padding="same", stride=2).shape == (4, 5)


def test_textbook_vertical_edge_6x6() -> None:
    image = torch.tensor([[10.0] * 3 + [0.0] * 3] * 6)
    out = apply_kernel(image, "vertical-edge")
    assert out.tolist() == [[0.0, 30.0, 30.0, 0.0]] * 4


def test_edge_kernels_see_their_direction_only() -> None:
    stripes = torch.zeros(8, 8)
    stripes[4:] = 1.0  # one horizontal edge
    assert apply_kernel(stripes, "sobel-x").abs().max() == 0
    assert apply_kernel(stripes, "scharr-x").abs().max() == 0
    assert apply_kernel(stripes, "sobel-y").abs().max() == 4  # dark above bright: 1 + 2 + 1
    flat = torch.full((6, 6), 0.7, dtype=torch.float64)
    for name in ("vertical-edge", "horizontal-edge", "laplacian"):
        assert apply_kernel(flat, name).abs().max() < 1e-12
    for name in ("box-blur", "gaussian-blur", "sharpen"):
        torch.testing.assert_close(apply_kernel(flat, name), torch.full_like(apply_kernel(flat, name), 0.7))


def test_gaussian_kernel_equals_scipy_window() -> None:
    window = gaussian(7, std=1.5)
    reference = np.outer(window, window) / np.outer(window, window).sum()
    np.testing.assert_allclose(gaussian_kernel(7, 1.5, torch.float64).numpy(), reference, atol=1e-12)


def test_kernel_larger_than_image_names_both_sizes() -> None:
    with pytest.raises(
        ShapeError, match=r"kernel extent 5 .* larger than the padded input 4 .*apply_kernel, image height"
    ):
        apply_kernel(torch.zeros(4, 10), "gaussian-blur")


def test_bad_kernel_and_image_ranks() -> None:
    with pytest.raises(ShapeError, match=r"kernel must be 2-D \(kh, kw\). Received: shape=\(1, 3, 3\)"):
        apply_kernel(torch.zeros(5, 5), torch.zeros(1, 3, 3))
    with pytest.raises(ShapeError, match=r"image must be \(H, W\) or \(C, H, W\)"):
        apply_kernel(torch.zeros(5), "sharpen")
    with pytest.raises(RegistryError, match="did you mean 'sobel-x'"):
        get_kernel("sobelx")


def test_feature_map_image_spans_0_to_255() -> None:
    img = feature_map_image(torch.tensor([[-3.0, 1.0], [5.0, 1.0]]))
    assert np.asarray(img).tolist() == [[0, 128], [255, 128]]
    assert np.asarray(feature_map_image(torch.ones(2, 2))).max() == 0


def test_load_grayscale_and_gallery(tmp_path: Path) -> None:
    rgb = np.zeros((6, 8, 3), dtype=np.uint8)
    rgb[:, 4:] = (255, 255, 255)
    Image.fromarray(rgb).save(tmp_path / "half.png")
    image = load_grayscale(tmp_path / "half.png")
    assert image.shape == (6, 8) and image[0, 0] == 0 and image[0, 7] == 1
    fig = kernel_gallery(image)
    assert [ax.get_title() for ax in fig.axes] == ["input", *list_kernels()]
    with pytest.raises(DataError, match="image file not found"):
        load_grayscale(tmp_path / "missing.png")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match="not an image Pillow can read"):
        load_grayscale(tmp_path / "notes.txt")


@pytest.mark.data
def test_sobel_on_real_photo_equals_scipy(shared_data: Path) -> None:
    image = load_grayscale(shared_data / "gradcam-samples" / "both.png").to(torch.float64)
    out = apply_kernel(image, "sobel-x", padding="same")
    reference = correlate2d(image.numpy(), get_kernel("sobel-x", torch.float64).numpy(), mode="same")
    np.testing.assert_allclose(out.numpy(), reference, atol=1e-9)
    assert out.shape == image.shape and out.abs().max() > 0.5  # a real photo has strong edges
