"""The course's "use a pretrained YOLO" exercise, offline: face-api.js' Tiny-YOLOv2 face detector finds faces in
photos, decoded by the course's own functions.

The path of one picture: pad it at the bottom/right to a square and resize it to ``input_size`` (416 by
default; any multiple of 32), as face-api.js does; the net gives a 13 x 13 grid with 5 anchors x (t_x, t_y,
t_w, t_h, t_o); :func:`~cnnlab.tasks.detect.course.yolo_head` decodes it (one class: box score = objectness)
and :func:`~cnnlab.tasks.detect.course.yolo_eval` filters by score, scales to pixels and runs NMS (IoU 0.4,
face-api's setting). Boxes come back as ``xyxy`` pixels of the original picture, clipped to it.

Weights: ``tiny_face_detector_yolo5anchors_faceapi.pth`` (MIT, converted from the npm package
``@vladmandic/face-api`` 1.7.15). Nothing is downloaded; :func:`find_weights` says where it looks.

>>> x, image_shape = letterbox(np.zeros((300, 400, 3), np.uint8), 416)
>>> tuple(x.shape), image_shape  # the 416 x 416 input covers 400 x 400 pixels of the picture
((1, 3, 416, 416), (400.0, 400.0))
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from cnnlab.core.errors import ConfigError, DataError, WeightsError
from cnnlab.data.images import read_image
from cnnlab.models.detect.tiny_yolov2 import (
    FACE_ANCHORS,
    FACE_MEAN_RGB,
    FILE_NAME,
    STRIDE,
    TinyYoloV2,
    load_tiny_yolov2,
)
from cnnlab.models.weights import find_face_weights
from cnnlab.tasks.detect.boxes import box_area, convert
from cnnlab.tasks.detect.course import yolo_eval, yolo_head

DEFAULT_SCORE_THRESHOLD = 0.5  # face-api.js' TinyFaceDetectorOptions default
DEFAULT_IOU_THRESHOLD = 0.4  # face-api.js' NMS setting for this detector
DEFAULT_INPUT_SIZE = 416  # the size the weights were published for: a 13 x 13 grid


class Face(NamedTuple):
    """One detected face: ``box`` = (x1, y1, x2, y2) pixels of the original picture, ``score`` = objectness."""

    box: tuple[float, float, float, float]
    score: float


def find_weights() -> Path:
    """The face detector's weights file in the first of :func:`~cnnlab.models.weights.face_weight_folders`
    that has it; a :class:`WeightsError` listing every folder looked at when none has it."""
    return find_face_weights(FILE_NAME)


def as_rgb_image(image: np.ndarray | torch.Tensor | str | Path) -> np.ndarray:
    """A picture as uint8 RGB ``(H, W, 3)``: a file is decoded (EXIF orientation applied), grey arrays get three
    equal channels.

    >>> as_rgb_image(np.zeros((4, 6), np.uint8)).shape
    (4, 6, 3)
    """
    if isinstance(image, str | Path):
        return read_image(image, channels=3)
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3)):
        raise DataError(
            f"a picture must be uint8 (H, W), (H, W, 1) or (H, W, 3); got {array.dtype} {array.shape}",
            where="face detector input",
            fix="pass a file path, or an array as read by cnnlab.data.images.read_image",
        )
    if array.ndim == 2 or array.shape[2] == 1:
        array = np.repeat(array.reshape(array.shape[0], array.shape[1], 1), 3, axis=2)
    return array


def letterbox(image: np.ndarray, input_size: int = DEFAULT_INPUT_SIZE) -> tuple[torch.Tensor, tuple[float, float]]:
    """face-api.js' preprocessing: resize the RGB uint8 picture so its longer side is ``input_size`` (bilinear,
    antialiased when shrinking), put it in the top-left corner of a black ``input_size`` square, normalise
    ``(pixel - mean) / 255``. Returns the input ``(1, 3, S, S)`` and ``image_shape`` = the (height, width) in
    pixels of the picture that the whole square covers, for the course's ``scale_boxes``.

    >>> x, image_shape = letterbox(np.full((10, 20, 3), 255, np.uint8), 32)
    >>> image_shape, x[0, 0, 15, 0].item() > 0, x[0, 0, 16, 0].item() < 0  # picture above row 16, padding below
    ((20.0, 20.0), True, True)
    """
    if input_size < STRIDE or input_size % STRIDE:
        raise ConfigError(
            f"input_size must be a positive multiple of {STRIDE}, got {input_size}",
            where="input_size",
            fix="use 416 (the published size: a 13 x 13 grid), or e.g. 320 / 608",
        )
    height, width = image.shape[:2]
    scale = input_size / max(height, width)
    new_width, new_height = max(1, round(width * scale)), max(1, round(height * scale))
    resized = np.asarray(Image.fromarray(image).resize((new_width, new_height), Image.Resampling.BILINEAR))
    square = np.zeros((input_size, input_size, 3), np.uint8)
    square[:new_height, :new_width] = resized
    mean = torch.tensor(FACE_MEAN_RGB).view(3, 1, 1)
    x = (torch.from_numpy(square).permute(2, 0, 1).float() - mean) / 255  # (3, S, S)
    # the resized picture's (possibly rounded) size maps back to the original exactly, axis by axis
    image_shape = (input_size * height / new_height, input_size * width / new_width)
    return x[None], image_shape


def decode_faces(
    raw: torch.Tensor,
    image_shape: tuple[float, float],
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
    max_faces: int = 100,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The net's raw output for one picture, ``(1, 25, S, S)`` (or already split, (1, S, S, 5, 5)), to
    ``(boxes (n, 4) xyxy, scores (n,))`` in pixels of a picture of ``image_shape`` = (height, width) covered
    by the grid, best first: the course's ``yolo_head`` with the face anchors and no class, then ``yolo_eval``.

    >>> raw = torch.full((1, 13, 13, 5, 5), -10.0)  # nothing anywhere ...
    >>> raw[0, 6, 3, 1] = torch.tensor([0.0, 0.0, 0.0, 0.0, 10.0])  # ... but anchor 1 of row 6, column 3
    >>> boxes, scores = decode_faces(raw, (416.0, 416.0))
    >>> boxes.round().tolist(), scores.tolist()  # centre (3.5, 6.5) cells, size 6.04 x 7.08 cells of 32 px
    ([[15.0, 95.0, 209.0, 321.0]], [0.9999545812606812])
    """
    outputs = yolo_head(raw, FACE_ANCHORS, num_classes=0)
    scores, boxes, _ = yolo_eval(outputs, image_shape, max_faces, score_threshold, iou_threshold)
    return convert(boxes, "yxyx", "xyxy"), scores


class FaceDetector:
    """Tiny-YOLOv2 faces: :meth:`load` the weights, then :meth:`detect` or :meth:`largest_face` on pictures
    (uint8 HWC arrays or file paths).

    >>> detector = FaceDetector(TinyYoloV2())  # random weights, for the example
    >>> detector.detect(np.zeros((120, 160, 3), np.uint8), score_threshold=1.0)
    []
    """

    def __init__(self, net: TinyYoloV2) -> None:
        # channels-last: a forward pass measured ~2x faster on a 2-core CPU, mostly in the max-pools of the large maps
        self.net = net.eval().to(memory_format=torch.channels_last)

    @classmethod
    def load(cls, path: str | Path | None = None) -> FaceDetector:
        """The detector with the weights at ``path``, or at :func:`find_weights` when ``path`` is None.

        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "random.pth"
        >>> torch.save(TinyYoloV2().state_dict(), path)
        >>> type(FaceDetector.load(path).net).__name__
        'TinyYoloV2'
        """
        weights = Path(path).expanduser() if path is not None else find_weights()
        if not weights.is_file():
            raise WeightsError(
                "face detector weights not found", where=str(weights), fix=f"pass the path of {FILE_NAME}"
            )
        return cls(load_tiny_yolov2(weights))

    def detect(
        self,
        image: np.ndarray | torch.Tensor | str | Path,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        iou_threshold: float = DEFAULT_IOU_THRESHOLD,
        input_size: int = DEFAULT_INPUT_SIZE,
        max_faces: int = 100,
    ) -> list[Face]:
        """Faces in one picture (an array or a file), best score first, boxes clipped to the picture.

        >>> FaceDetector(TinyYoloV2()).detect(np.zeros((50, 70), np.uint8), score_threshold=1.0, input_size=64)
        []
        """
        if not 0.0 <= score_threshold <= 1.0:
            raise ConfigError(
                f"score_threshold must be in [0, 1], got {score_threshold}", where="threshold", fix="use e.g. 0.5"
            )
        if max_faces < 1:
            raise ConfigError(f"max_faces must be at least 1, got {max_faces}", where="max_faces", fix="use e.g. 100")
        rgb = as_rgb_image(image)
        x, image_shape = letterbox(rgb, input_size)
        with torch.inference_mode():
            raw = self.net(x.contiguous(memory_format=torch.channels_last))  # (1, 25, S / 32, S / 32)
        boxes, scores = decode_faces(raw, image_shape, score_threshold, iou_threshold, max_faces)
        height, width = rgb.shape[:2]
        boxes = boxes.clamp(min=0).minimum(boxes.new_tensor([width, height, width, height]))
        return [Face(tuple(b), s) for b, s in zip(boxes.tolist(), scores.tolist(), strict=True)]

    def largest_face(
        self,
        image: np.ndarray | torch.Tensor | str | Path,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        input_size: int = DEFAULT_INPUT_SIZE,
    ) -> Face | None:
        """The face with the largest box (the subject of a portrait, the one to crop for recognition), or None.

        >>> FaceDetector(TinyYoloV2()).largest_face(np.zeros((64, 64, 3), np.uint8), score_threshold=1.0) is None
        True
        """
        faces = self.detect(image, score_threshold=score_threshold, input_size=input_size)
        if not faces:
            return None
        areas = box_area(torch.tensor([face.box for face in faces]))
        return faces[int(areas.argmax())]
