"""Elastic deformation, the U-Net paper's augmentation for tiny datasets (Ronneberger et al. 2015, 3.1).

"We generate smooth deformations using random displacement vectors on a coarse 3 by 3 grid. The
displacements are sampled from a Gaussian distribution with 10 pixels standard deviation.
Per-pixel displacements are then computed using bicubic interpolation." Two halves as in
:mod:`cnnlab.data.augment`: ``draw`` samples the coarse displacements, ``apply`` warps; an image is
sampled bilinearly and its mask with nearest neighbour, so :meth:`Compose.pair` moves both together.

>>> import torch
>>> from cnnlab.data.augment import Compose
>>> image = torch.arange(64, dtype=torch.uint8).reshape(1, 1, 8, 8).repeat(2, 1, 1, 1)
>>> warped, mask = Compose([ElasticDeform(sigma=2.0)]).pair(image, image[:, 0].clone())
>>> warped.shape, mask.shape, bool((warped != image).any())
(torch.Size([2, 1, 8, 8]), torch.Size([2, 8, 8]), True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnlab.core.errors import ConfigError
from cnnlab.data.augment import _GRID_PADDING, TRANSFORMS, Fill, Kind, Params, Transform, _back


@TRANSFORMS.register("elastic")
class ElasticDeform(Transform):
    """Smooth random warp: ``grid`` x ``grid`` displacements ~ N(0, ``sigma`` px), bicubically upsampled.

    ``p`` is the share of images warped; ``fill`` says what shows where the warp looks outside the
    image (``reflect`` by default, the paper's mirroring).

    >>> x = torch.rand(3, 1, 16, 16)
    >>> torch.equal(ElasticDeform(p=0.0)(x), x)  # nothing drawn: the identity
    True
    """

    geometric = True

    def __init__(self, sigma: float = 10.0, grid: int = 3, p: float = 1.0, fill: Fill = "reflect") -> None:
        if sigma < 0 or grid < 2 or not 0 <= p <= 1:
            raise ConfigError(
                f"ElasticDeform: need sigma >= 0, grid >= 2, 0 <= p <= 1. Received: sigma={sigma}, grid={grid}, p={p}",
                where="elastic",
            )
        if fill not in _GRID_PADDING:
            raise ConfigError(
                f"ElasticDeform: unknown fill {fill!r}", where="elastic", fix="use zeros, nearest, reflect"
            )
        self.sigma, self.grid, self.p, self.fill = sigma, grid, p, fill

    def draw(self, shape: torch.Size, generator: torch.Generator) -> Params:
        displacement = torch.randn(shape[0], 2, self.grid, self.grid, generator=generator) * self.sigma  # px
        chosen = torch.rand(shape[0], generator=generator) < self.p
        return {"displacement": displacement * chosen[:, None, None, None]}

    def apply(self, x: torch.Tensor, params: Params, kind: Kind = "image") -> torch.Tensor:
        height, width = x.shape[-2:]
        flow = F.interpolate(params["displacement"], size=(height, width), mode="bicubic", align_corners=True)
        xs = (torch.arange(width, dtype=flow.dtype) * 2 + 1) / width - 1  # pixel centres in [-1, 1]
        ys = ((torch.arange(height, dtype=flow.dtype) * 2 + 1) / height - 1)[:, None]
        grid = torch.stack([xs + flow[:, 0] * 2 / width, ys + flow[:, 1] * 2 / height], dim=-1)  # (B, H, W, 2)
        y = F.grid_sample(
            x.float(),
            grid,
            mode="nearest" if kind == "mask" else "bilinear",
            padding_mode=_GRID_PADDING[self.fill],
            align_corners=False,
        )
        return _back(y, x)
