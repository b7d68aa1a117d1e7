"""Tiny-YOLOv2 with depthwise-separable convolutions: face-api.js' pretrained "Tiny Face Detector".

Paper: Redmon & Farhadi 2017, "YOLO9000: Better, Faster, Stronger" (YOLOv2: a grid of cells, five anchor
boxes per cell, ``exp`` box sizes); face-api.js (Vincent Muehler, MIT) made "an even tinier version of Tiny
Yolo V2, replacing the regular convolutions of Yolo with depthwise separable convolutions", trained on
~14K face images, one class. Published parameter count: 193,321 (README of ``shared/data/face-models``).

Module names follow the weight file's keys (``conv0``, ``conv1.depthwise``, ``conv1.pointwise``, ...,
``conv8``), so its state_dict loads with a strict key and shape check. The padding copies TensorFlow.js,
where the weights were trained: ``conv0`` is 'valid' (416 -> 414), every max-pool is 'same', which for a
2x2 window pads one row/column at the bottom/right only when the size needs it (414 -> 207 -> 104).

>>> net = TinyYoloV2()
>>> net(torch.zeros(1, 3, 416, 416)).shape  # 5 anchors x (t_x, t_y, t_w, t_h, t_o) on a 13 x 13 grid
torch.Size([1, 25, 13, 13])
>>> sum(p.numel() for p in net.parameters())
193321
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.core.errors import ShapeError, WeightsError
from cnnlab.models.weights import read_state_dict

PAPER = "Redmon & Farhadi 2017 (YOLOv2); face-api.js Tiny Face Detector (depthwise-separable Tiny-YOLOv2)"

FILE_NAME = "tiny_face_detector_yolo5anchors_faceapi.pth"
"""The converted face-api.js weights, in ``shared/data/face-models``."""

FACE_ANCHORS: tuple[tuple[float, float], ...] = (
    (1.603231, 2.094468),
    (6.041143, 7.080126),
    (2.882459, 3.518061),
    (4.266906, 5.178857),
    (9.041765, 10.66308),
)
"""The five anchor boxes (width, height) in grid cells (1 cell = 32 input pixels), from face-api.js."""

FACE_MEAN_RGB: tuple[float, float, float] = (117.001, 114.697, 97.404)
"""Input normalisation of the face weights: ``(pixel - mean) / 255`` on RGB 0..255."""

STRIDE = 32
"""Input pixels per grid cell: five 2x2 max-pools of stride 2. Inputs must be a multiple of it."""

# Depthwise-separable stages after ``conv0``: (name, input channels, output channels, max-pool stride).
# Each is depthwise 3x3 (pad 1, no bias) -> pointwise 1x1 (+ bias) -> leaky ReLU(0.1) -> 2x2 max-pool 'same'.
SEPARABLE_STAGES: tuple[tuple[str, int, int, int], ...] = (
    ("conv1", 16, 32, 2),
    ("conv2", 32, 64, 2),
    ("conv3", 64, 128, 2),
    ("conv4", 128, 256, 2),
    ("conv5", 256, 512, 1),
)
STEM_CHANNELS = 16  # conv0: 3x3 'valid' 3 -> 16 (+ bias) -> leaky ReLU(0.1) -> 2x2 max-pool 'same', stride 2
LEAKY_SLOPE = 0.1


def max_pool_same(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow's ``maxPool(x, kernel, stride, 'same')``: output side ``ceil(n / stride)``; the padding it
    needs goes half before, the rest (the odd one) after, and padded cells never win the max.

    >>> x = torch.arange(9.0).reshape(1, 1, 3, 3)
    >>> max_pool_same(x, 2, 2)[0, 0].tolist()  # the last row/column are pooled with padding alone
    [[4.0, 5.0], [7.0, 8.0]]
    >>> max_pool_same(x, 2, 1)[0, 0].tolist()
    [[4.0, 5.0, 5.0], [7.0, 8.0, 8.0], [7.0, 8.0, 8.0]]
    """
    pads = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad takes the last axis first
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.max_pool2d(F.pad(x, pads, value=float("-inf")), kernel, stride)


class SeparableConv(nn.Module):
    """Depthwise 3x3 (padding 1, no bias) then pointwise 1x1 with bias: TF's ``separableConv2d`` + bias."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class TinyYoloV2(nn.Module):
    """The face detector's network: normalised RGB ``(B, 3, H, W)`` (H, W multiples of 32) to the raw YOLOv2
    grid ``(B, anchors x 5, H / 32, W / 32)``, channel ``anchor * 5 + k`` for k = t_x, t_y, t_w, t_h, t_o.

    >>> TinyYoloV2()(torch.zeros(2, 3, 64, 96)).shape
    torch.Size([2, 25, 2, 3])
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(3, STEM_CHANNELS, 3)
        for name, cin, cout, _ in SEPARABLE_STAGES:
            self.add_module(name, SeparableConv(cin, cout))
        self.conv8 = nn.Conv2d(SEPARABLE_STAGES[-1][2], len(FACE_ANCHORS) * 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if height % STRIDE or width % STRIDE or x.shape[-3] != 3:
            raise ShapeError(
                f"TinyYoloV2 takes RGB images whose sides are multiples of {STRIDE}. Received: {tuple(x.shape)}",
                where="TinyYoloV2.forward",
                fix="resize or pad the image to e.g. 416 x 416 (a 13 x 13 grid)",
            )
        x = max_pool_same(F.leaky_relu(self.conv0(x), LEAKY_SLOPE), 2, 2)  # (B, 16, H/2 - 1, W/2 - 1)
        for name, _, _, pool_stride in SEPARABLE_STAGES:
            x = max_pool_same(F.leaky_relu(self.get_submodule(name)(x), LEAKY_SLOPE), 2, pool_stride)
        return self.conv8(x)  # (B, anchors x 5, H/32, W/32)


def load_tiny_yolov2(path: str | Path) -> TinyYoloV2:
    """The network with the weights in ``path`` (a plain state_dict, read with ``weights_only=True``), in eval
    mode. Keys and shapes must match exactly; otherwise a :class:`WeightsError` names the file and the keys.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "random.pth"
    >>> torch.save(TinyYoloV2().state_dict(), path)
    >>> load_tiny_yolov2(path).training
    False
    """
    state = read_state_dict(path)
    net = TinyYoloV2()
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        found = (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
        problems = [f"{label}: {', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''}" for label, keys in found if keys]
        raise WeightsError(
            "the file does not hold the Tiny-YOLOv2 face detector (" + "; ".join(problems) + ")",
            where=str(path),
            fix=f"pass face-api.js' converted weights ({FILE_NAME} in shared/data/face-models)",
        )
    net.load_state_dict(state, strict=True)
    return net.eval()
