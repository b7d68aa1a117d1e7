"""dlib's "ResNet-29" face embedder (Davis King, dlib 2017; via face-api.js): a face chip to 128 numbers whose
Euclidean distance says whether two chips show the same person (dlib's usual threshold: 0.6; LFW 99.38%).

The layers, in face-api.js' TensorFlow order, every convolution being conv + bias, then ``* scale + shift`` per
channel (a frozen batch-norm, no statistics) and ReLU where marked:

- ``conv32_down``: 7x7 stride 2 'valid', 3 -> 32, ReLU; then a 3x3 stride 2 'valid' max-pool (150 -> 72 -> 35);
- residual blocks ``conv32_1..3``, ``conv64_down``, ``conv64_1..3``, ``conv128_down``, ``conv128_1..2``,
  ``conv256_down``, ``conv256_1..2``, ``conv256_down_out``: ``relu(conv1) -> conv2`` (3x3 'same'), added to the
  input, ReLU. In a *down* block ``conv1`` is 3x3 stride 2 'valid' and the shortcut is a 2x2 stride 2 average
  pool with zero channels appended; where the pool's map is one row/column larger (even sides) the conv branch
  gets a zero row/column at the bottom/right (35 -> 17 -> 8 -> 4 -> 2);
- the mean over the map, then ``fc``: 256 -> 128 without bias. The output is *not* L2-normalised (norm ~1.4).

Module names are the keys of ``face_recognition_resnet29_dlib_faceapi.pth`` (5,614,592 parameters), so the file
loads with ``strict=True``. The input is RGB, ``(pixel - MEAN_RGB) / 255``, 150 x 150 (:func:`dlib_chip` makes it
from a face crop); being convolutional up to the mean, the net takes any side of at least :data:`MIN_SIZE`.

>>> net = DlibResNet29().eval()
>>> net(torch.zeros(1, 3, 150, 150)).shape, sum(p.numel() for p in net.parameters())
(torch.Size([1, 128]), 5614592)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.core.errors import ConfigError, DataError, ShapeError, WeightsError
from cnnlab.models.registry import register_model
from cnnlab.models.weights import face_weight_folders, find_face_weights, load_exact

PAPER = "King 2017, dlib face recognition ResNet (dlib_face_recognition_resnet_model_v1; LFW 99.38%), face-api.js port"

FILE_NAME = "face_recognition_resnet29_dlib_faceapi.pth"
"""The converted face-api.js weights, in ``shared/data/face-models``."""
INPUT_SIZE = 150
"""The side of dlib's face chips, the size the embedder was trained on."""
MEAN_RGB: tuple[float, float, float] = (122.782, 117.001, 104.298)
"""Input normalisation: ``(pixel - MEAN_RGB) / 255`` on RGB 0..255 (face-api.js)."""
DLIB_THRESHOLD = 0.6
"""dlib's same-person threshold on the Euclidean distance of two embeddings (for dlib-aligned chips)."""
EMBEDDING_SIZE = 128
MIN_SIZE = 103
"""The smallest input side: below it the last down block's 3x3 'valid' convolution has fewer than 3 pixels."""

# (name, input channels, output channels, down block?) in order, after the stem.
BLOCKS: tuple[tuple[str, int, int, bool], ...] = (
    ("conv32_1", 32, 32, False),
    ("conv32_2", 32, 32, False),
    ("conv32_3", 32, 32, False),
    ("conv64_down", 32, 64, True),
    ("conv64_1", 64, 64, False),
    ("conv64_2", 64, 64, False),
    ("conv64_3", 64, 64, False),
    ("conv128_down", 64, 128, True),
    ("conv128_1", 128, 128, False),
    ("conv128_2", 128, 128, False),
    ("conv256_down", 128, 256, True),
    ("conv256_1", 256, 256, False),
    ("conv256_2", 256, 256, False),
    ("conv256_down_out", 256, 256, True),
)


class ConvScale(nn.Module):
    """Convolution with bias, then a per-channel affine ``* scale + shift`` (dlib's "affine" layer)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding)
        self.scale = nn.Parameter(torch.ones(out_channels))
        self.shift = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * self.scale[:, None, None] + self.shift[:, None, None]


class ResidualBlock(nn.Module):
    """``relu(x + conv2(relu(conv1(x))))``; a down block (``down=True``) halves the map: its ``conv1`` is 3x3
    stride 2 'valid' and its shortcut a 2x2 average pool with zero channels appended (no parameters).

    >>> block = ResidualBlock(4, 8, down=True)
    >>> block(torch.zeros(1, 4, 8, 9)).shape  # the pool's floor(8 / 2) x floor(9 / 2) map
    torch.Size([1, 8, 4, 4])
    """

    def __init__(self, in_channels: int, out_channels: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1 = ConvScale(in_channels, out_channels, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.conv2 = ConvScale(out_channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.relu(self.conv1(x)))
        if not self.down:
            return F.relu(out + x)
        shortcut = F.avg_pool2d(x, 2, 2)
        # a 'valid' 3x3 stride-2 conv gives floor(n / 2) - 1 on even sides, the pool floor(n / 2): pad bottom/right
        out = F.pad(out, (0, shortcut.shape[-1] - out.shape[-1], 0, shortcut.shape[-2] - out.shape[-2]))
        shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, out.shape[1] - shortcut.shape[1]))  # zero channels after
        return F.relu(out + shortcut)


class DlibResNet29(nn.Module):
    """The embedder: normalised RGB ``(N, 3, H, W)``, sides at least :data:`MIN_SIZE` (150 as trained), to
    ``(N, 128)`` embeddings (not L2-normalised)."""

    gradcam_layer = "conv128_2"  # 8 x 8 on a 150-px chip (the blocks after it are 4 x 4 and 2 x 2: too coarse to show)

    def __init__(self) -> None:
        super().__init__()
        self.conv32_down = ConvScale(3, 32, 7, stride=2)
        for name, cin, cout, down in BLOCKS:
            self.add_module(name, ResidualBlock(cin, cout, down))
        self.fc = nn.Linear(BLOCKS[-1][2], EMBEDDING_SIZE, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3 or min(x.shape[-2:]) < MIN_SIZE:
            raise ShapeError(
                f"DlibResNet29 takes RGB batches (N, 3, H, W) with sides of at least {MIN_SIZE}. "
                f"Received: {tuple(x.shape)}",
                where="DlibResNet29.forward",
                fix=f"make {INPUT_SIZE} x {INPUT_SIZE} chips with dlib_chip (grey images: repeat to 3 channels)",
            )
        x = F.max_pool2d(F.relu(self.conv32_down(x)), 3, 2)
        for name, *_ in BLOCKS:
            x = self.get_submodule(name)(x)
        return self.fc(x.mean(dim=(2, 3)))


def find_weights() -> Path:
    """The embedder's weights file (:data:`FILE_NAME`), found by :func:`~cnnlab.models.weights.find_face_weights`."""
    return find_face_weights(FILE_NAME)


def load_dlib_resnet29(path: str | Path | None = None) -> DlibResNet29:
    """The embedder with the weights at ``path`` (default: :func:`find_weights`), in eval mode. Keys and shapes
    must match exactly, otherwise a :class:`WeightsError` names the file and the keys.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "random.pth"
    >>> torch.save(DlibResNet29().state_dict(), path)
    >>> load_dlib_resnet29(path).training
    False
    >>> load_dlib_resnet29("/nowhere/face.pth")
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.WeightsError: dlib face embedder weights not found [/nowhere/face.pth]...
    """
    file = Path(path).expanduser() if path is not None else find_weights()
    if not file.is_file():
        raise WeightsError("dlib face embedder weights not found", where=str(file), fix=f"pass the path of {FILE_NAME}")
    fix = f"pass face-api.js' converted weights ({FILE_NAME} in shared/data/face-models)"
    return load_exact(DlibResNet29(), file, "the dlib ResNet-29 embedder", fix)


def resize_bilinear_tf(image: torch.Tensor, size: int) -> torch.Tensor:
    """TensorFlow's legacy ``resizeBilinear`` (no corner alignment, no half-pixel centres), as face-api.js uses
    it: output pixel ``i`` samples the input at ``i * in / out``, the right/bottom neighbour clamped to the edge.
    ``image`` is (C, H, W) float; returns (C, size, size).

    >>> resize_bilinear_tf(torch.tensor([[[0.0, 1.0], [2.0, 3.0]]]), 4)[0, 0].tolist()  # columns at 0, .5, 1, 1.5
    [0.0, 0.5, 1.0, 1.0]
    """

    def weights(n_in: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        source = torch.arange(size, dtype=torch.float64) * (n_in / size)
        low = source.floor().long().clamp(max=n_in - 1)
        return low, (low + 1).clamp(max=n_in - 1), (source - low).float()

    top, bottom, fy = weights(image.shape[-2])
    left, right, fx = weights(image.shape[-1])
    rows = image[:, top] * (1 - fy[:, None]) + image[:, bottom] * fy[:, None]  # (C, size, W)
    return rows[:, :, left] * (1 - fx) + rows[:, :, right] * fx


def dlib_chip(image: np.ndarray) -> torch.Tensor:
    """A face crop (uint8 RGB ``(H, W, 3)``; grey ``(H, W)`` is repeated to RGB) as the embedder's input
    ``(3, 150, 150)``, as face-api.js makes it: pad to a centred square with black (the odd pixel after), resize
    bilinearly to 150 (:func:`resize_bilinear_tf`), then ``(x - MEAN_RGB) / 255``.

    >>> chip = dlib_chip(np.full((112, 92), 255, np.uint8))  # ORL's size: 10 black columns each side
    >>> chip.shape, round(chip[0, 75, 0].item(), 4), round(chip[0, 75, 75].item(), 4)
    (torch.Size([3, 150, 150]), -0.4815, 0.5185)
    """
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3 or 0 in array.shape:
        raise DataError(
            f"a face crop must be uint8 (H, W, 3) or (H, W); got {array.dtype} {array.shape}",
            where="dlib_chip",
            fix="pass an RGB uint8 array, e.g. from cnnlab.data.images.read_image(path, channels=3)",
        )
    height, width = array.shape[:2]
    side = max(height, width)
    before_y, before_x = (side - height) // 2, (side - width) // 2  # face-api rounds the half after up
    square = torch.zeros(3, side, side)
    square[:, before_y : before_y + height, before_x : before_x + width] = torch.tensor(array).permute(2, 0, 1)
    chip = square if side == INPUT_SIZE else resize_bilinear_tf(square, INPUT_SIZE)
    return (chip - torch.tensor(MEAN_RGB)[:, None, None]) / 255


@register_model("dlib_resnet29", paper=PAPER, default_input=(3, 150, 150), task="embed", min_size=MIN_SIZE)
def dlib_resnet29(
    num_classes: int = EMBEDDING_SIZE, in_chans: int = 3, pretrained: str | Path | None = "auto"
) -> DlibResNet29:
    """The dlib embedder. ``pretrained``: ``"auto"`` loads :data:`FILE_NAME` when :func:`find_weights` finds it
    (random weights otherwise, and on the meta device), a path loads that file, ``None`` keeps random weights.
    ``num_classes`` is the embedding size and ``in_chans`` the channels: only 128 and 3 (the pretrained layout)
    are accepted.

    >>> dlib_resnet29(pretrained=None).fc.weight.shape
    torch.Size([128, 256])
    """
    for option, value, fixed in (("num_classes", num_classes, EMBEDDING_SIZE), ("in_chans", in_chans, 3)):
        if value != fixed:
            raise ConfigError(
                f"dlib_resnet29 has a fixed layout: {option} must be {fixed}. Received: {option}={value!r}",
                where="dlib_resnet29",
                fix="use its 128-D embeddings of RGB chips (repeat grey images to 3 channels), "
                "or train an embedding head of another size on a zoo backbone",
            )
    if pretrained == "auto":
        found = [folder / FILE_NAME for folder in face_weight_folders() if (folder / FILE_NAME).is_file()]
        shapes_only = torch.get_default_device().type == "meta"  # e.g. counting parameters: nothing to load into
        return load_dlib_resnet29(found[0]) if found and not shapes_only else DlibResNet29()
    return DlibResNet29() if pretrained is None else load_dlib_resnet29(pretrained)
