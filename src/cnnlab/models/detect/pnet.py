"""MTCNN's P-Net (Zhang et al. 2016, "Joint Face Detection and Alignment using Multi-task Cascaded
Convolutional Networks"): a real, pretrained sliding-window face classifier written fully convolutionally.

Trained on 12x12 crops, it has no fully connected layer: conv 3x3 (10) - PReLU - max pool 2x2 (ceil) -
conv 3x3 (16) - PReLU - conv 3x3 (32) - PReLU, then two 1x1 heads: face / not face (softmax over 2) and
4 box offsets. On a 12x12 crop every map is 1x1; on a bigger image one pass gives one answer per 12x12
window at stride 2 (the pool's), the course's "convolutional implementation of sliding windows". Faces
larger than 12 pixels are found by running it on an image pyramid (each level ``factor`` = 0.709 smaller).
6,632 parameters. Weights: facenet-pytorch 2.6.0's ``pnet.pt`` (MIT), module names kept so the file loads
strictly; input RGB 0..255 as ``(x - 127.5) / 128``.

>>> net = PNet().eval()
>>> probs, offsets = net(torch.zeros(1, 3, 12, 12))
>>> probs.shape, offsets.shape, sum(p.numel() for p in net.parameters())
(torch.Size([1, 2, 1, 1]), torch.Size([1, 4, 1, 1]), 6632)
>>> net(torch.zeros(1, 3, 60, 80))[0].shape  # (60 - 12) / 2 + 1 = 25 rows, (80 - 12) / 2 + 1 = 35 columns
torch.Size([1, 2, 25, 35])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.core.errors import ConfigError, WeightsError
from cnnlab.models.weights import M, find_face_weights, load_exact, sha256_file

WINDOW = 12
"""The side of the crops P-Net was trained on: one output per 12x12 window."""
STRIDE = 2
"""The net's total stride (its one 2x2 pool): the step between neighbouring windows."""
PNET_FILE = "pnet.pt"
PNET_SHA256 = "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f"  # facenet-pytorch 2.6.0


class PNet(nn.Module):
    """The P-Net layers under facenet-pytorch's names; ``forward`` returns ``(probs, offsets)``:
    ``probs`` (B, 2, h, w) = softmax [not face, face], ``offsets`` (B, 4, h, w) box corrections."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, 3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, 3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))  # (B, 10, ceil((H-2)/2), ...)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))  # (B, 32, h, w)
        return torch.softmax(self.conv4_1(x), dim=1), self.conv4_2(x)


def load_pnet(path: str | Path | None = None) -> PNet:
    """P-Net with the pretrained weights of ``path`` (default: ``pnet.pt`` in ``$CNNLAB_WEIGHTS`` or
    ``~/.cache/cnnlab/weights``), in eval mode. A file named ``pnet.pt`` must be facenet-pytorch's
    (checksum checked); any file must fit the layers exactly.

    >>> load_pnet("/nowhere/pnet.pt")
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.WeightsError: P-Net weights not found [/nowhere/pnet.pt]...
    """
    return load_stage(PNet(), path, PNET_FILE, PNET_SHA256, "P-Net")


def load_stage(net: M, path: str | Path | None, file_name: str, sha256: str, stage: str) -> M:
    """One MTCNN stage (``net``: P-Net, O-Net) with the weights of ``path`` (default: ``file_name`` found by
    :func:`~cnnlab.models.weights.find_face_weights`), in eval mode: a file of facenet-pytorch's name must have its
    checksum, and any file must fit the layers exactly."""
    file = Path(path).expanduser() if path is not None else find_face_weights(file_name)
    if not file.is_file():
        raise WeightsError(
            f"{stage} weights not found",
            where=str(file),
            fix=f"pass the path of facenet-pytorch's {file_name}, e.g. ../shared/data/face-models/{file_name}",
        )
    if file.name == file_name and sha256_file(file) != sha256:
        raise WeightsError(
            f"{file_name} is not facenet-pytorch 2.6.0's {stage} (checksum differs)",
            where=str(file),
            fix=f"get {file_name} again from the facenet-pytorch 2.6.0 wheel (facenet_pytorch/data/{file_name})",
        )
    return load_exact(net, file, f"{stage}'s layers", f"pass MTCNN's {file_name} (facenet-pytorch layout)")


def to_pnet_input(image: np.ndarray) -> torch.Tensor:
    """A uint8 RGB image (H, W, 3) as P-Net's input (1, 3, H, W): ``(x - 127.5) * 0.0078125``;
    a grey (H, W) or (H, W, 1) image is repeated to three channels.

    >>> to_pnet_input(np.full((2, 2), 255, np.uint8)).shape, float(to_pnet_input(np.zeros((1, 1, 3), np.uint8)).max())
    (torch.Size([1, 3, 2, 2]), -0.99609375)
    """
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise ConfigError(
            f"expected an image (H, W), (H, W, 1) or (H, W, 3). Received shape {array.shape}",
            where="to_pnet_input",
            fix="decode images with cnnlab.data.images.read_image(path, channels=3)",
        )
    x = torch.from_numpy(np.array(array, dtype=np.float32)).permute(2, 0, 1)  # a copy: read-only arrays are fine
    return ((x.expand(3, -1, -1) - 127.5) * 0.0078125)[None]


def pyramid_scales(size: tuple[int, int], min_face: int = 20, factor: float = 0.709) -> list[float]:
    """MTCNN's image pyramid for an image of ``size`` = (height, width): the first scale maps a ``min_face``
    face to 12 pixels, each next one is ``factor`` times smaller, down to a shorter side of 12 pixels.

    >>> [round(s, 3) for s in pyramid_scales((100, 120), min_face=24)]
    [0.5, 0.354, 0.251, 0.178, 0.126]
    """
    scale, scales = WINDOW / min_face, []
    while min(size) * scale >= WINDOW:
        scales.append(scale)
        scale *= factor
    return scales


@dataclass(frozen=True)
class FaceWindow:
    """One P-Net window: its box ``xyxy`` in the original image's pixels, face probability and pyramid scale."""

    box: tuple[float, float, float, float]
    probability: float
    scale: float


@torch.no_grad()
def face_probability_map(net: PNet, image: np.ndarray, scale: float = 1.0) -> torch.Tensor:
    """P-Net's face probability for every 12x12 window of ``image`` (uint8 RGB) resized by ``scale``:
    ``(rows, cols)``; entry ``[i, j]`` is the window with top-left corner ``(2j, 2i)`` in the resized image.
    On an odd side the pool's ceil mode adds one last row or column whose window hangs a pixel past the edge.

    >>> face_probability_map(PNet().eval(), np.zeros((40, 32, 3), np.uint8), scale=0.5).shape  # 20x16 resized
    torch.Size([5, 3])
    """
    x = to_pnet_input(image)
    if scale != 1.0:
        height, width = x.shape[-2:]
        resized = (max(1, round(height * scale)), max(1, round(width * scale)))
        x = F.interpolate(x, size=resized, mode="area")  # what facenet-pytorch's pyramid uses
    if min(x.shape[-2:]) < WINDOW:
        raise ConfigError(
            f"the image at scale {scale:g} is {x.shape[-2]}x{x.shape[-1]}, smaller than one 12x12 window",
            where="face_probability_map",
            fix="use a larger scale or image",
        )
    return net(x)[0][0, 1]


def strongest_face_window(net: PNet, image: np.ndarray, min_face: int = 20, factor: float = 0.709) -> FaceWindow:
    """The window P-Net is surest holds a face, over the whole pyramid (:func:`pyramid_scales`); the box is
    the window itself (the offsets head, which would refine it, is not applied).

    >>> strongest_face_window(PNet().eval(), np.zeros((30, 30, 3), np.uint8), min_face=24).scale
    0.5
    """
    best: FaceWindow | None = None
    height, width = np.asarray(image).shape[:2]
    for scale in pyramid_scales((height, width), min_face, factor):
        probs = face_probability_map(net, image, scale)
        index = int(probs.argmax())
        row, col = divmod(index, probs.shape[1])
        if best is None or float(probs.flatten()[index]) > best.probability:
            # Map the window back with the resize's actual ratio per axis (sizes are rounded).
            sy, sx = max(1, round(height * scale)) / height, max(1, round(width * scale)) / width
            x1, y1 = col * STRIDE / sx, row * STRIDE / sy
            box = (x1, y1, x1 + WINDOW / sx, y1 + WINDOW / sy)
            best = FaceWindow(box, float(probs.flatten()[index]), scale)
    if best is None:
        raise ConfigError(
            f"the image ({height}x{width}) is too small for faces of {min_face} pixels",
            where="strongest_face_window",
            fix="pass a smaller min_face or a larger image",
        )
    return best
