"""The course's style-transfer costs against NumPy written straight from the course's formulas."""

from __future__ import annotations

import numpy as np
import torch

from cnnlab.tasks.style.costs import (
    content_cost,
    gram_matrix,
    layer_style_cost,
    scaled_gram,
    style_cost,
    swag,
    total_cost,
)

RNG = np.random.default_rng(0)


def _np_content(a_c: np.ndarray, a_g: np.ndarray) -> float:
    n_c, n_h, n_w = a_g.shape
    return float(((a_c - a_g) ** 2).sum() / (4 * n_h * n_w * n_c))


def _np_layer_style(a_s: np.ndarray, a_g: np.ndarray) -> float:
    n_c, n_h, n_w = a_g.shape
    s, g = a_s.reshape(n_c, -1), a_g.reshape(n_c, -1)  # the course's unrolling: (n_C, n_H n_W)
    return float(((s @ s.T - g @ g.T) ** 2).sum() / (4 * n_c**2 * (n_h * n_w) ** 2))


def test_gram_matrix_is_a_times_a_transposed() -> None:
    x = RNG.normal(size=(2, 3, 4, 5)).astype(np.float32)
    expected = np.stack([m.reshape(3, -1) @ m.reshape(3, -1).T for m in x])
    np.testing.assert_allclose(gram_matrix(torch.from_numpy(x)).numpy(), expected, rtol=1e-5)


def test_costs_equal_the_course_formulas_and_vanish_for_identical_images() -> None:
    a_c, a_g = (RNG.normal(size=(4, 3, 5)).astype(np.float32) for _ in range(2))
    t_c, t_g = torch.from_numpy(a_c)[None], torch.from_numpy(a_g)[None]
    np.testing.assert_allclose(content_cost(t_c, t_g).item(), _np_content(a_c, a_g), rtol=1e-5)
    np.testing.assert_allclose(layer_style_cost(t_c, t_g).item(), _np_layer_style(a_c, a_g), rtol=1e-4)
    assert content_cost(t_g, t_g).item() == 0.0
    assert layer_style_cost(t_g, t_g).item() == 0.0
    assert total_cost(torch.tensor(2.0), torch.tensor(0.5)).item() == 10 * 2.0 + 40 * 0.5  # the course's 10, 40


def test_style_cost_weights_layers_and_a_larger_style_image_gives_the_same_target() -> None:
    a = {name: torch.rand(1, 3, 6, 6) for name in ("x", "y")}
    g = {name: torch.rand(1, 3, 6, 6) for name in ("x", "y")}
    grams = {name: scaled_gram(a[name], 36) for name in a}
    expected = 0.2 * _np_layer_style(a["x"][0].numpy(), g["x"][0].numpy())
    expected += 0.8 * _np_layer_style(a["y"][0].numpy(), g["y"][0].numpy())
    np.testing.assert_allclose(style_cost(grams, g, {"x": 0.2, "y": 0.8}).item(), expected, rtol=1e-4)
    tiled = a["x"].repeat(1, 1, 2, 2)  # the same texture on 4x the area: the same per-position Gram
    torch.testing.assert_close(scaled_gram(tiled, 36), grams["x"])


def test_swag_is_a_softmax_over_each_image_scaled_to_mean_one() -> None:
    x = torch.randn(2, 3, 4, 4)
    out = swag(x)
    expected = torch.softmax(x[1].flatten(), 0).view(3, 4, 4) * 48
    torch.testing.assert_close(out[1], expected)
    assert out.min() > 0
