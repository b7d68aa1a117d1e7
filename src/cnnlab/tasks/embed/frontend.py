"""The face front-end of recognition: a photo to one aligned, square face crop an embedder can take.

Steps (:meth:`FaceFrontEnd.chip`): find faces with the pretrained Tiny-YOLOv2 detector
(:class:`~cnnlab.tasks.detect.faces.FaceDetector`) and keep the largest; crop a square about its box centre,
``margin`` of the box's longer side added each side (parts outside the photo are black); align: MTCNN's O-Net
places five landmarks on the tight square box (once, then again on the box its regression head corrects, as
MTCNN's last stage does) and, when it says "face" (probability >= 0.5), the crop is rotated about its centre so
the eyes are level. Every :class:`FaceChip` says in ``note`` what was done.

Modes: ``detect`` needs a face (else :class:`NoFaceFound`); ``none`` takes the whole picture as the face, for
pre-cropped datasets (ORL, LFW chips); ``auto`` takes a small picture (at most :data:`SMALL_PICTURE` pixels on its
longer side: a face crop, where the detector, which wants background around a face, finds only a fifth of ORL's
faces, and a mix of detected and whole crops would compare unlike with like) whole, and detects in larger ones.

>>> front = FaceFrontEnd(detector=None, onet=None)  # mode "none" needs no weights
>>> chip = front.chip(np.zeros((112, 92), np.uint8), mode="none")
>>> chip.pixels.shape, chip.box, chip.faces_found, chip.note
((112, 92, 3), None, 0, 'the whole picture used as the face (faces: none)')
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch
from PIL import Image

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.models.detect.onet import ONet, face_landmarks, load_onet, to_onet_input
from cnnlab.tasks.detect.faces import FaceDetector, as_rgb_image

FaceMode = Literal["auto", "detect", "none"]
MODES: tuple[str, ...] = ("auto", "detect", "none")
SMALL_PICTURE = 160
"""In ``auto`` mode a picture at most this many pixels on its longer side is taken whole when no face is found."""
DEFAULT_MARGIN = 0.25
"""Crop margin each side, as a fraction of the face box's longer side."""
MIN_FACE_PROBABILITY = 0.5
"""O-Net's face probability needed to trust its landmarks and rotate the crop."""
MAX_TILT = 45.0
"""Eye lines steeper than this (degrees) are taken for a landmark error: the crop is left unrotated."""

Box = tuple[float, float, float, float]


def needs_detector(shape: tuple[int, ...], mode: FaceMode) -> bool:
    """Whether a picture of ``shape`` (H, W, ...) goes through the detector in ``mode`` (so its weights are needed).

    >>> needs_detector((112, 92), "auto"), needs_detector((480, 640, 3), "auto"), needs_detector((50, 50), "detect")
    (False, True, True)
    """
    return mode == "detect" or (mode == "auto" and max(shape[:2]) > SMALL_PICTURE)


class NoFaceFound(DataError):
    """The detector found no face where one was required."""


class FaceChip(NamedTuple):
    """One face ready for an embedder: ``pixels`` uint8 RGB (square unless the whole picture was used),
    ``box`` = the detected face (x1, y1, x2, y2) in the photo (None when the whole picture was used),
    ``faces_found`` by the detector, ``note`` = what was done, ``angle`` = degrees the crop was rotated,
    counter-clockwise positive (0 when not aligned)."""

    pixels: np.ndarray
    box: Box | None
    faces_found: int
    note: str
    angle: float = 0.0


def square_about_centre(box: Box, margin: float = 0.0) -> Box:
    """The square centred on ``box`` whose side is the box's longer side plus ``margin`` of it on each side.

    >>> square_about_centre((10, 20, 30, 60), margin=0.25)  # 40 tall: a 60 x 60 square about (20, 40)
    (-10.0, 10.0, 50.0, 70.0)
    """
    x1, y1, x2, y2 = box
    half = max(x2 - x1, y2 - y1) * (1 + 2 * margin) / 2
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return (cx - half, cy - half, cx + half, cy + half)


def crop_padded(image: np.ndarray, box: Box) -> np.ndarray:
    """The pixels of ``box``, black where it leaves the picture; its corner and its size are rounded to whole
    pixels separately, so a square box gives a square crop.

    >>> crop_padded(np.full((4, 4, 3), 9, np.uint8), (-1, -1, 2, 2))[..., 0].tolist()
    [[0, 0, 0], [0, 9, 9], [0, 9, 9]]
    >>> crop_padded(np.zeros((9, 9, 3), np.uint8), (0.4, 0.6, 3.8, 4.0)).shape  # 3.4 x 3.4: 3 x 3
    (3, 3, 3)
    """
    left, top = round(box[0]), round(box[1])
    width, height = max(1, round(box[2] - box[0])), max(1, round(box[3] - box[1]))
    return np.asarray(Image.fromarray(image).crop((left, top, left + width, top + height)))


class FaceFrontEnd:
    """Detect, crop and align faces (module docstring); :meth:`load` the weights, then :meth:`chip` photos.
    ``detector`` may be None for mode ``none`` only; ``onet`` None skips alignment."""

    def __init__(self, detector: FaceDetector | None, onet: ONet | None, margin: float = DEFAULT_MARGIN) -> None:
        if not 0.0 <= margin <= 2.0:
            raise ConfigError(
                f"margin must be in [0, 2] (a fraction of the face box). Received: {margin}",
                where="FaceFrontEnd",
                fix=f"use e.g. {DEFAULT_MARGIN}",
            )
        self.detector, self.onet, self.margin = detector, onet, margin

    @classmethod
    def load(
        cls,
        detector_path: str | Path | None = None,
        onet_path: str | Path | None = None,
        margin: float = DEFAULT_MARGIN,
    ) -> FaceFrontEnd:
        """The front-end with the Tiny-YOLOv2 face detector and O-Net weights (each found in the face weight
        folders when its path is None; a WeightsError lists the folders searched)."""
        return cls(FaceDetector.load(detector_path), load_onet(onet_path), margin)

    def chip(
        self, image: np.ndarray | torch.Tensor | str | Path, mode: FaceMode = "auto", name: str | None = None
    ) -> FaceChip:
        """The face of one photo (a file or a uint8 array) as a :class:`FaceChip`; ``name`` names the photo in
        messages (default: the file's path). Raises :class:`NoFaceFound` when a face is required and none is
        found (mode ``detect``, or ``auto`` on a picture larger than :data:`SMALL_PICTURE`)."""
        if mode not in MODES:
            raise ConfigError(f"unknown face mode {mode!r}", where="faces", fix=f"use one of {', '.join(MODES)}")
        label = name or (str(image) if isinstance(image, str | Path) else "the picture")
        rgb = as_rgb_image(image)
        if mode == "none":
            return FaceChip(rgb, None, 0, "the whole picture used as the face (faces: none)")
        height, width = rgb.shape[:2]
        if not needs_detector(rgb.shape, mode):
            return FaceChip(rgb, None, 0, f"a small picture (<= {SMALL_PICTURE} px): taken whole as a face crop")
        if self.detector is None:
            raise ConfigError(
                f"face mode {mode!r} needs the face detector", where="FaceFrontEnd", fix="use FaceFrontEnd.load()"
            )
        faces = self.detector.detect(rgb)
        if not faces:
            raise NoFaceFound(
                f"no face found in {label} ({width}x{height} pixels)",
                where=label,
                fix="try a larger photo with the face at least ~40 pixels wide and some background around it, "
                "or --faces none for pre-cropped faces",
            )
        box = max((face.box for face in faces), key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
        found = f"{len(faces)} faces found: the largest used" if len(faces) > 1 else "1 face found"
        crop = crop_padded(rgb, square_about_centre(box, self.margin))
        crop, angle, aligned = self._align(rgb, box, crop)
        return FaceChip(crop, box, len(faces), f"{found}; {aligned}", angle)

    def _align(self, rgb: np.ndarray, box: Box, crop: np.ndarray) -> tuple[np.ndarray, float, str]:
        """Rotate ``crop`` so the eyes O-Net finds in the tight square about ``box`` are level."""
        if self.onet is None:
            return crop, 0.0, "not aligned (no O-Net)"
        square = square_about_centre(box)
        with torch.no_grad():
            _, offsets, _ = self.onet(to_onet_input(crop_padded(rgb, square)))
        side = square[2] - square[0]
        refined = square_about_centre(tuple(v + float(d) * side for v, d in zip(square, offsets[0], strict=True)))
        if refined[2] - refined[0] < 2:  # the regression collapsed the box: keep the detector's
            refined = square
        marks = face_landmarks(self.onet, crop_padded(rgb, refined))
        if marks.probability < MIN_FACE_PROBABILITY:
            return crop, 0.0, f"not aligned: O-Net's face probability {marks.probability:.2f} is under 0.5"
        angle = marks.eye_angle
        if abs(angle) > MAX_TILT:
            return crop, 0.0, f"not aligned: the eye line found is tilted {angle:.1f} deg (a landmark error?)"
        rotated = np.asarray(Image.fromarray(crop).rotate(angle, resample=Image.Resampling.BILINEAR))
        turn = "counter-clockwise" if angle >= 0 else "clockwise"
        return rotated, angle, f"aligned: rotated {abs(angle):.1f} deg {turn} to level the eyes"
