"""Classic hand-made kernels (edges, Sobel, Scharr, Laplacian, blurs, sharpen) and ``apply_kernel``.

``apply_kernel`` slides the kernel without flipping it (cross-correlation), as CNN layers and
``scipy.signal.correlate2d`` do. The edge kernels follow Andrew Ng's sign: a bright-to-dark step
from left to right (or top to bottom) gives a positive response.

>>> image = torch.tensor([[10.0] * 3 + [0.0] * 3] * 6)   # 6x6, bright left half
>>> apply_kernel(image, "vertical-edge")                   # 3x3 kernel -> 4x4, the edge lights up
tensor([[ 0., 30., 30.,  0.],
        [ 0., 30., 30.,  0.],
        [ 0., 30., 30.,  0.],
        [ 0., 30., 30.,  0.]])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.core import shapes
from cnnlab.core.errors import DataError, ShapeError
from cnnlab.core.registry import Registry

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from PIL import Image


@dataclass(frozen=True)
class Kernel:
    """A named fixed kernel: integer ``weights`` divided by ``divisor``."""

    name: str
    weights: tuple[tuple[int, ...], ...]
    divisor: int
    description: str

    def tensor(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The kernel as a ``(kh, kw)`` tensor.

        >>> KERNELS.get("box-blur").tensor().sum().item()
        1.0
        """
        return torch.tensor(self.weights, dtype=dtype) / self.divisor


KERNELS: Registry[Kernel] = Registry("kernel")

# Columns: name, integer weights, divisor, what it responds to.
_TABLE: tuple[tuple[str, tuple[tuple[int, ...], ...], int, str], ...] = (
    ("vertical-edge", ((1, 0, -1), (1, 0, -1), (1, 0, -1)), 1, "vertical edges (Prewitt x)"),
    ("horizontal-edge", ((1, 1, 1), (0, 0, 0), (-1, -1, -1)), 1, "horizontal edges (Prewitt y)"),
    ("sobel-x", ((1, 0, -1), (2, 0, -2), (1, 0, -1)), 1, "vertical edges, centre row weighted 2"),
    ("sobel-y", ((1, 2, 1), (0, 0, 0), (-1, -2, -1)), 1, "horizontal edges, centre column weighted 2"),
    ("scharr-x", ((3, 0, -3), (10, 0, -10), (3, 0, -3)), 1, "vertical edges, better rotation symmetry"),
    ("scharr-y", ((3, 10, 3), (0, 0, 0), (-3, -10, -3)), 1, "horizontal edges, better rotation symmetry"),
    ("laplacian", ((0, 1, 0), (1, -4, 1), (0, 1, 0)), 1, "second derivative: edges in every direction"),
    ("box-blur", ((1, 1, 1), (1, 1, 1), (1, 1, 1)), 9, "3x3 mean"),
    (
        "gaussian-blur",
        ((1, 4, 6, 4, 1), (4, 16, 24, 16, 4), (6, 24, 36, 24, 6), (4, 16, 24, 16, 4), (1, 4, 6, 4, 1)),
        256,
        "5x5 binomial approximation of a Gaussian (sigma about 1)",
    ),
    ("sharpen", ((0, -1, 0), (-1, 5, -1), (0, -1, 0)), 1, "image plus its negative Laplacian"),
)
for _name, _weights, _divisor, _description in _TABLE:
    KERNELS.add(_name, Kernel(_name, _weights, _divisor, _description))


def list_kernels() -> list[str]:
    """Names of the classic kernels.

    >>> list_kernels()[:3]
    ['box-blur', 'gaussian-blur', 'horizontal-edge']
    """
    return KERNELS.names()


def get_kernel(name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The named kernel as a ``(kh, kw)`` tensor (unknown names answer "did you mean ...").

    >>> get_kernel("sobel-x")
    tensor([[ 1.,  0., -1.],
            [ 2.,  0., -2.],
            [ 1.,  0., -1.]])
    """
    return KERNELS.get(name).tensor(dtype)


def gaussian_kernel(size: int = 5, sigma: float = 1.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A ``size x size`` sampled Gaussian that sums to 1.

    >>> k = gaussian_kernel(3, sigma=0.5)
    >>> round(k.sum().item(), 6), k.argmax().item()   # centre (index 4) is the peak
    (1.0, 4)
    """
    if size < 1 or sigma <= 0:
        raise ShapeError(f"gaussian_kernel needs size >= 1 and sigma > 0. Received: size={size}, sigma={sigma}")
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    k = torch.outer(g, g)
    return (k / k.sum()).to(dtype)


def apply_kernel(
    image: torch.Tensor | np.ndarray,
    kernel: torch.Tensor | np.ndarray | str,
    padding: shapes.Padding = "valid",
    stride: int | tuple[int, int] = 1,
) -> torch.Tensor:
    """Cross-correlate a ``(H, W)`` or ``(C, H, W)`` image with one 2-D kernel (each channel alone).

    ``padding`` is ``'valid'``, ``'same'`` (TF style: output ``ceil(n / stride)``), an int, or
    per axis an int or ``(before, after)``; padding is zeros. Floating images keep their dtype.

    >>> apply_kernel(torch.ones(6, 6), "box-blur", padding="same", stride=2).shape
    torch.Size([3, 3])
    >>> apply_kernel(torch.ones(6, 6), torch.ones(3, 3), padding=1)[0]
    tensor([4., 6., 6., 6., 6., 4.])
    """
    x = torch.as_tensor(image)
    x = x if x.is_floating_point() else x.to(torch.float32)
    k = get_kernel(kernel, x.dtype) if isinstance(kernel, str) else torch.as_tensor(kernel).to(x.dtype)
    if k.dim() != 2:
        raise ShapeError(f"apply_kernel: kernel must be 2-D (kh, kw). Received: shape={tuple(k.shape)}")
    if x.dim() not in (2, 3):
        raise ShapeError(f"apply_kernel: image must be (H, W) or (C, H, W). Received: shape={tuple(x.shape)}")
    strides = (stride, stride) if isinstance(stride, int) else tuple(stride)
    sizes, kernel_size = list(x.shape[-2:]), list(k.shape)
    pads = shapes.resolve_padding(padding, sizes, kernel_size, strides, [1, 1])
    for axis, n, f, s, p in zip(("height", "width"), sizes, kernel_size, strides, pads, strict=True):
        try:
            shapes.conv_output_size(n, f, s, p)
        except ShapeError as err:
            raise ShapeError(err.what, where=f"apply_kernel, image {axis}", fix=err.fix) from err
    planes = x.reshape(-1, 1, *sizes)  # (C, 1, H, W)
    (top, bottom), (left, right) = pads
    planes = F.pad(planes, (left, right, top, bottom))
    out = F.conv2d(planes, k[None, None], stride=strides)  # (C, 1, H', W')
    return out.reshape(*x.shape[:-2], *out.shape[-2:])


def load_grayscale(path: str | Path) -> torch.Tensor:
    """Read an image file as a ``(H, W)`` float tensor in ``[0, 1]`` (EXIF rotation applied).

    >>> import tempfile; from PIL import Image
    >>> file = Path(tempfile.mkdtemp()) / "grey.png"; Image.new("L", (5, 4), 255).save(file)
    >>> load_grayscale(file).shape
    torch.Size([4, 5])
    """
    import warnings

    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow warns above its pixel limit and raises above twice that; both are refused here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                grey = ImageOps.exif_transpose(img).convert("L")
    except FileNotFoundError:
        raise DataError("image file not found", where=str(path), fix="check the path") from None
    except IsADirectoryError:
        raise DataError("this is a folder, not an image file", where=str(path), fix="pass one image file") from None
    except UnidentifiedImageError:
        raise DataError("not an image Pillow can read", where=str(path), fix="pass a PNG or JPEG file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(
            f"refused as a decompression bomb ({exc})", where=str(path), fix="pass a smaller image"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow reports truncated or corrupt data as OSError
        raise DataError(
            f"corrupt or truncated image ({exc})", where=str(path), fix="re-export the image or pass another"
        ) from None
    return torch.from_numpy(np.asarray(grey, dtype=np.float32) / 255.0)


def feature_map_image(feature_map: torch.Tensor) -> Image.Image:
    """A ``(H, W)`` map as an 8-bit greyscale image, its minimum black and maximum white.

    >>> feature_map_image(torch.tensor([[-1.0, 0.0], [1.0, 1.0]])).getpixel((1, 0))
    128
    """
    from PIL import Image

    fm = feature_map.detach().to(torch.float64).cpu()
    low, high = fm.min(), fm.max()
    scaled = (fm - low) / (high - low) if high > low else torch.zeros_like(fm)
    return Image.fromarray((scaled * 255).round().to(torch.uint8).numpy(), mode="L")


def kernel_gallery(image: torch.Tensor, names: Sequence[str] | None = None, padding: shapes.Padding = "same") -> Figure:
    """A matplotlib figure: the ``(H, W)`` image, then its feature map under each kernel, side by side.

    >>> fig = kernel_gallery(torch.rand(16, 16), ["sobel-x", "sharpen"])
    >>> [ax.get_title() for ax in fig.axes]
    ['input', 'sobel-x', 'sharpen']
    """
    from matplotlib.figure import Figure

    names = list_kernels() if names is None else list(names)
    panels = [("input", image), *((name, apply_kernel(image, name, padding=padding)) for name in names)]
    cols = min(len(panels), 4)
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(3 * cols, 3.2 * rows), layout="constrained")
    for i, (title, panel) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(panel.detach().cpu().numpy(), cmap="gray")
        ax.set_title(title)
        ax.set_axis_off()
    return fig
