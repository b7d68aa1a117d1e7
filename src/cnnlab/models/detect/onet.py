"""MTCNN's O-Net (Zhang et al. 2016, "Joint Face Detection and Alignment using Multi-task Cascaded
Convolutional Networks"): the cascade's last stage, a pretrained 48x48 face classifier that also places five
facial landmarks, used here to align face crops.

Layers: conv 3x3 (32) - PReLU - max pool 3/2 (ceil) - conv 3x3 (64) - PReLU - max pool 3/2 (ceil) - conv 3x3
(64) - PReLU - max pool 2/2 (ceil) - conv 2x2 (128) - PReLU (48 -> 46 -> 23 -> 21 -> 10 -> 8 -> 4 -> 3), the
3x3x128 map flattened *width first* (the Caffe original was trained on transposed images; facenet-pytorch
permutes (B, C, H, W) to (B, W, H, C) before flattening, and so does this port) - dense 1152 -> 256 - PReLU,
then three heads: face / not face (softmax over 2), 4 box offsets, and 10 landmark numbers: the x of the five
points (left eye, right eye, nose, left and right mouth corners, "left" = the image's left), then their y,
as fractions of the 48x48 input box. 389,040 parameters. Weights: facenet-pytorch 2.6.0's ``onet.pt``
(MIT), module names kept so the file loads strictly; input RGB 0..255 as ``(x - 127.5) / 128``.

>>> net = ONet().eval()
>>> probs, offsets, landmarks = net(torch.zeros(2, 3, 48, 48))
>>> probs.shape, offsets.shape, landmarks.shape, sum(p.numel() for p in net.parameters())
(torch.Size([2, 2]), torch.Size([2, 4]), torch.Size([2, 10]), 389040)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.core.errors import DataError, ShapeError
from cnnlab.models.detect.pnet import load_stage

INPUT_SIZE = 48
"""The side of the crops O-Net was trained on (its dense layer fixes it)."""
ONET_FILE = "onet.pt"
ONET_SHA256 = "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d"  # facenet-pytorch 2.6.0
LANDMARK_NAMES = ("left eye", "right eye", "nose", "left mouth corner", "right mouth corner")
"""The five points in the order O-Net gives them; left and right as seen in the picture."""


class ONet(nn.Module):
    """The O-Net layers under facenet-pytorch's names; ``forward`` on ``(B, 3, 48, 48)`` returns
    ``(probs, offsets, landmarks)``: ``probs`` (B, 2) = softmax [not face, face], ``offsets`` (B, 4) box
    corrections, ``landmarks`` (B, 10) = five x then five y, fractions of the input's width and height."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, 2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(128 * 3 * 3, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, INPUT_SIZE, INPUT_SIZE):
            raise ShapeError(
                f"O-Net takes RGB crops (B, 3, {INPUT_SIZE}, {INPUT_SIZE}). Received: {tuple(x.shape)}",
                where="ONet.forward",
                fix="resize the face crop with to_onet_input",
            )
        x = self.pool1(self.prelu1(self.conv1(x)))  # (B, 32, 23, 23)
        x = self.pool2(self.prelu2(self.conv2(x)))  # (B, 64, 10, 10)
        x = self.pool3(self.prelu3(self.conv3(x)))  # (B, 64, 4, 4)
        x = self.prelu4(self.conv4(x))  # (B, 128, 3, 3)
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).flatten(1)))  # width first, as the Caffe weights expect
        return torch.softmax(self.dense6_1(x), dim=1), self.dense6_2(x), self.dense6_3(x)


def load_onet(path: str | Path | None = None) -> ONet:
    """O-Net with the pretrained weights of ``path`` (default: ``onet.pt`` found by
    :func:`~cnnlab.models.weights.find_face_weights`), in eval mode. A file named ``onet.pt`` must be
    facenet-pytorch's (checksum checked); any file must fit the layers exactly.

    >>> load_onet("/nowhere/onet.pt")
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.WeightsError: O-Net weights not found [/nowhere/onet.pt]...
    """
    return load_stage(ONet(), path, ONET_FILE, ONET_SHA256, "O-Net")


def to_onet_input(crop: np.ndarray) -> torch.Tensor:
    """A face crop (uint8 RGB ``(H, W, 3)``, or grey ``(H, W)``) as O-Net's input ``(1, 3, 48, 48)``: resized
    with area interpolation (facenet-pytorch's ``imresample``), then ``(x - 127.5) * 0.0078125``.

    >>> x = to_onet_input(np.full((96, 120), 255, np.uint8))
    >>> x.shape, x.max().item()
    (torch.Size([1, 3, 48, 48]), 0.99609375)
    """
    array = np.asarray(crop)
    if array.ndim == 2:
        array = array[..., None]
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] not in (1, 3) or 0 in array.shape:
        raise DataError(
            f"a face crop must be uint8 (H, W), (H, W, 1) or (H, W, 3); got {array.dtype} {array.shape}",
            where="to_onet_input",
            fix="decode images with cnnlab.data.images.read_image(path, channels=3)",
        )
    x = torch.from_numpy(np.array(array, dtype=np.float32)).permute(2, 0, 1).expand(3, -1, -1)[None]
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="area")
    return (x - 127.5) * 0.0078125


@dataclass(frozen=True)
class FaceLandmarks:
    """O-Net's answer for one crop: ``probability`` that it is a face and ``points`` (5, 2) = (x, y) pixels of
    the crop, in :data:`LANDMARK_NAMES` order."""

    probability: float
    points: np.ndarray

    @property
    def eye_angle(self) -> float:
        """The angle in degrees of the line from the left to the right eye, clockwise in picture coordinates
        (y down): 0 for level eyes, positive when the right eye is lower.

        >>> FaceLandmarks(1.0, np.array([[10.0, 20.0], [20.0, 30.0], [0, 0], [0, 0], [0, 0]])).eye_angle
        45.0
        """
        (lx, ly), (rx, ry) = self.points[0], self.points[1]
        return float(np.degrees(np.arctan2(ry - ly, rx - lx)))


@torch.no_grad()
def face_landmarks(net: ONet, crop: np.ndarray) -> FaceLandmarks:
    """O-Net on one face crop (uint8, any size; ideally a square box around the face, as MTCNN gives it):
    its face probability and the five landmarks in the crop's pixels.

    >>> marks = face_landmarks(ONet().eval(), np.zeros((60, 80, 3), np.uint8))
    >>> marks.points.shape, 0.0 <= marks.probability <= 1.0
    ((5, 2), True)
    """
    probs, _, landmarks = net(to_onet_input(crop))
    height, width = np.asarray(crop).shape[:2]
    points = landmarks[0].reshape(2, 5).T.double().numpy() * np.array([width, height])
    return FaceLandmarks(float(probs[0, 1]), points)
