"""The course's neural-style-transfer costs (Gatys et al. 2015, as normalised in Andrew Ng's course).

With ``a`` the activations of one layer, ``n_H x n_W`` positions by ``n_C`` channels:

- content cost: ``J_content = 1 / (4 n_H n_W n_C) * sum((a_C - a_G)^2)``
- Gram matrix of activations unrolled to ``A`` of shape ``(n_C, n_H n_W)``: ``G = A A^T``
- one layer's style cost: ``J_style_layer = 1 / (4 n_C^2 (n_H n_W)^2) * sum((G_S - G_G)^2)``
- style cost: ``J_style = sum_l lambda_l J_style_layer(l)`` (the course: 0.2 for each of five layers)
- total cost: ``J = alpha J_content + beta J_style`` (the course: alpha 10, beta 40)

The normalisers divide by the layer's size, so the same alpha and beta work across image sizes and
layers. Grams are computed in float32 even under bf16 autocast: they sum ``n_H n_W`` products, where
bf16's 8-bit mantissa would lose the small differences the style cost is made of.

SWAG (Wang, Li, Vasconcelos, CVPR 2021) makes residual and random nets usable for style: a softmax over
each image's activations (all channels and positions of a layer) before the costs; see :func:`swag`.

>>> a = torch.ones(1, 2, 3, 3)
>>> content_cost(a, a).item(), layer_style_cost(a, a).item()
(0.0, 0.0)
>>> gram_matrix(torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]]))  # A = [[1, 2], [3, 4]]: A A^T
tensor([[[ 5., 11.],
         [11., 25.]]])
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

COURSE_ALPHA = 10.0
COURSE_BETA = 40.0


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """``G = A A^T`` per image, ``A`` the ``(n_C, n_H n_W)`` unrolling of ``(B, n_C, n_H, n_W)`` features.

    >>> gram_matrix(torch.ones(2, 3, 4, 4)).shape, gram_matrix(torch.ones(1, 1, 4, 4)).item()
    (torch.Size([2, 3, 3]), 16.0)
    """
    a = features.float().flatten(2)  # (B, n_C, n_H n_W)
    return a @ a.transpose(1, 2)  # (B, n_C, n_C)


def content_cost(a_content: torch.Tensor, a_generated: torch.Tensor) -> torch.Tensor:
    """``1 / (4 n_H n_W n_C) * sum((a_C - a_G)^2)``, summed over the batch as the course's single image.

    >>> content_cost(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)).item()  # 4 / (4 * 2 * 2 * 1)
    0.25
    """
    _check_same_shape(a_content, a_generated, "content_cost")
    n_c, n_h, n_w = a_generated.shape[-3:]
    return ((a_content.float() - a_generated.float()) ** 2).sum() / (4 * n_h * n_w * n_c)


def layer_style_cost(a_style: torch.Tensor, a_generated: torch.Tensor) -> torch.Tensor:
    """``1 / (4 n_C^2 (n_H n_W)^2) * sum((G_S - G_G)^2)`` for one layer; the style image may have another size
    (its Gram is rescaled to the generated image's positions, :func:`scaled_gram`).

    >>> layer_style_cost(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)).item()  # G_G = 4: 16 / (4 * 1 * 16)
    0.25
    """
    n_h, n_w = a_generated.shape[-2:]
    return layer_style_cost_from_gram(scaled_gram(a_style, n_h * n_w), a_generated)


def layer_style_cost_from_gram(gram_style: torch.Tensor, a_generated: torch.Tensor) -> torch.Tensor:
    """:func:`layer_style_cost` with the style image's Gram computed once (it does not change while optimising);
    ``gram_style`` is already scaled to the generated image's positions (:func:`scaled_gram`)."""
    n_c, n_h, n_w = a_generated.shape[-3:]
    if gram_style.shape[-1] != n_c:
        raise ValueError(f"layer_style_cost: style Gram has {gram_style.shape[-1]} channels, features have {n_c}")
    return ((gram_style - gram_matrix(a_generated)) ** 2).sum() / (4 * n_c**2 * (n_h * n_w) ** 2)


def style_cost(
    style_grams: Mapping[str, torch.Tensor], generated: Mapping[str, torch.Tensor], weights: Mapping[str, float]
) -> torch.Tensor:
    """``sum_l weights[l] * J_style_layer(l)`` over the style layers (the course: 0.2 for each of five).

    ``style_grams`` are the style image's Grams per layer, scaled to the generated image's positions
    (:func:`scaled_gram`); ``generated`` the generated image's activations.

    >>> a = {"x": torch.ones(1, 2, 2, 2)}
    >>> style_cost({"x": gram_matrix(a["x"])}, a, {"x": 0.2}).item()
    0.0
    """
    total = torch.zeros((), device=next(iter(generated.values())).device)
    for name, weight in weights.items():
        total = total + weight * layer_style_cost_from_gram(style_grams[name], generated[name])
    return total


def scaled_gram(features: torch.Tensor, positions: int) -> torch.Tensor:
    """The Gram of a style image's features, rescaled to an image with ``positions`` (n_H n_W) positions.

    A Gram sums over positions, so a style image 4x the content's area has a 4x larger Gram; scaling by
    ``positions / (its n_H n_W)`` compares like with like (equal sizes: the plain Gram).

    >>> scaled_gram(torch.ones(1, 1, 4, 4), positions=4).item()
    4.0
    """
    n_h, n_w = features.shape[-2:]
    return gram_matrix(features) * (positions / (n_h * n_w))


def total_cost(
    j_content: torch.Tensor, j_style: torch.Tensor, alpha: float = COURSE_ALPHA, beta: float = COURSE_BETA
) -> torch.Tensor:
    """``J = alpha J_content + beta J_style`` (the course's alpha 10, beta 40).

    >>> total_cost(torch.tensor(1.0), torch.tensor(2.0)).item()
    90.0
    """
    return alpha * j_content + beta * j_style


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring pixels (smooths the high-frequency noise pixel optimisation makes).

    >>> total_variation(torch.zeros(1, 3, 4, 4)).item()
    0.0
    """
    dy = image[..., 1:, :] - image[..., :-1, :]
    dx = image[..., :, 1:] - image[..., :, :-1]
    return (dy.float() ** 2).mean() + (dx.float() ** 2).mean()


def swag(features: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """SWAG's activation smoothing: a softmax over all channels and positions of each image's features.

    Residual nets' activations concentrate on a few large peaks (low entropy), so their Grams are ruled
    by those few values and carry little texture; the softmax spreads them out (Wang et al. 2021). The
    result is rescaled by the number of elements so it has mean 1 and the costs keep a usable size.

    >>> s = swag(torch.randn(2, 3, 4, 4))
    >>> s.shape, round(s[0].mean().item(), 4)
    (torch.Size([2, 3, 4, 4]), 1.0)
    """
    flat = features.float().flatten(1) / temperature  # (B, C H W)
    return (flat.softmax(dim=1) * flat.shape[1]).view_as(features)


def _check_same_shape(a: torch.Tensor, b: torch.Tensor, where: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{where}: activations differ in shape, {tuple(a.shape)} vs {tuple(b.shape)}")
