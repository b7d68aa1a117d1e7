"""The face front-end: MTCNN's O-Net (facenet-pytorch's weights) against its README and face anatomy, and
detect -> crop -> align on ORL faces pasted at known places (and turned by a known angle) into larger pictures.

The Tiny-YOLOv2 detector wants some background around a face: it finds ORL faces pasted at their own size
(92 x 112) into a 400 x 400 grey picture (score ~0.9), but mostly not at 2x; so the pasted faces here keep
their size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.core.errors import DataError, ShapeError, WeightsError
from cnnlab.models.detect.onet import ONET_FILE, FaceLandmarks, ONet, face_landmarks, load_onet, to_onet_input
from cnnlab.models.detect.tiny_yolov2 import FILE_NAME as DETECTOR_FILE
from cnnlab.tasks.detect.faces import Face
from cnnlab.tasks.embed.frontend import FaceFrontEnd, NoFaceFound, crop_padded, square_about_centre

pytestmark = pytest.mark.usefixtures("one_thread")

GREY = 128


@pytest.fixture(scope="module")
def front(shared_data: Path) -> FaceFrontEnd:
    folder = shared_data / "face-models"
    return FaceFrontEnd.load(folder / DETECTOR_FILE, folder / ONET_FILE)


def orl(shared_data: Path, subject: int, shot: int) -> Image.Image:
    return Image.open(shared_data / "att-faces" / f"s{subject}" / f"{shot}.pgm").convert("RGB")


def paste(canvas: Image.Image, face: Image.Image, left: int, top: int) -> tuple[int, int, int, int]:
    canvas.paste(face, (left, top))
    return (left, top, left + face.width, top + face.height)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


class NoFaces:
    """A detector stand-in that never finds a face (the mode logic, without weights)."""

    def detect(self, image: object) -> list[Face]:
        return []


# --- O-Net -----------------------------------------------------------------------------------------------------


def test_onet_has_the_readmes_parameter_count_and_takes_only_48x48() -> None:
    net = ONet().eval()
    assert sum(p.numel() for p in net.parameters()) == 389_040
    with pytest.raises(ShapeError, match="48"):
        net(torch.zeros(1, 3, 24, 24))


def test_onet_input_is_area_resized_and_scaled_by_hand() -> None:
    crop = np.zeros((96, 96, 3), np.uint8)
    crop[:, 1::2] = 255  # every 2x2 cell averages to 127.5, which maps to 0
    np.testing.assert_allclose(to_onet_input(crop).numpy(), 0.0, atol=1e-6)
    assert to_onet_input(np.full((50, 70), 0, np.uint8)).min().item() == -127.5 / 128
    with pytest.raises(DataError):
        to_onet_input(np.zeros((10, 10, 2), np.uint8))


def test_eye_angle_is_measured_clockwise_in_picture_coordinates() -> None:
    points = np.array([[10.0, 10.0], [30.0, 10.0 + 20 * np.tan(np.radians(10))], [0, 0], [0, 0], [0, 0]])
    assert FaceLandmarks(1.0, points).eye_angle == pytest.approx(10.0)


@pytest.mark.data
def test_onet_weights_load_strictly(shared_data: Path) -> None:
    state = torch.load(shared_data / "face-models" / ONET_FILE, map_location="cpu", weights_only=True)
    assert len(state) == 21 and sum(v.numel() for v in state.values()) == 389_040
    assert tuple(state["dense5.weight"].shape) == (256, 1152)
    assert set(load_onet(shared_data / "face-models" / ONET_FILE).state_dict()) == set(state)


@pytest.mark.data
def test_onet_places_the_landmarks_where_a_face_has_them(shared_data: Path) -> None:
    net = load_onet(shared_data / "face-models" / ONET_FILE)
    crop = np.asarray(orl(shared_data, 1, 1))[10:102]  # a 92 x 92 square on the face
    marks = face_landmarks(net, crop)
    assert marks.probability > 0.9
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = marks.points
    assert abs(ly - ry) < 0.1 * 92 and lx < nx < rx and rx - lx > 0.2 * 92  # level eyes, nose between them
    assert max(ly, ry) < ny < min(mly, mry)  # the nose below the eyes, the mouth below the nose
    assert mlx < mrx and lx < mrx and mlx < rx
    noise = np.random.default_rng(0).integers(0, 256, (92, 92, 3), dtype=np.uint8)
    assert face_landmarks(net, noise).probability < 0.5


@pytest.mark.data
def test_onet_refuses_a_file_that_is_not_onet(tmp_path: Path) -> None:
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="O-Net"):
        load_onet(tmp_path / "other.pt")


# --- the front-end's modes -------------------------------------------------------------------------------------


def test_square_about_centre_and_black_padding() -> None:
    assert square_about_centre((0, 0, 20, 10)) == (0.0, -5.0, 20.0, 15.0)
    crop = crop_padded(np.full((10, 20, 3), 7, np.uint8), (0.0, -5.0, 20.0, 15.0))
    assert crop.shape == (20, 20, 3) and (crop[:5] == 0).all() and (crop[5:15] == 7).all() and (crop[15:] == 0).all()


def test_mode_none_is_the_whole_picture() -> None:
    picture = np.random.default_rng(0).integers(0, 256, (112, 92, 3), dtype=np.uint8)
    chip = FaceFrontEnd(detector=None, onet=None).chip(picture, mode="none")
    assert chip.pixels is picture or np.array_equal(chip.pixels, picture)
    assert chip.box is None and chip.faces_found == 0 and "whole picture" in chip.note


def test_auto_takes_a_small_picture_whole_as_a_face_crop() -> None:
    front = FaceFrontEnd(detector=NoFaces(), onet=None)  # type: ignore[arg-type]
    small = np.full((112, 92), 90, np.uint8)
    chip = front.chip(small, mode="auto")
    assert chip.pixels.shape == (112, 92, 3) and chip.box is None
    assert chip.note == "a small picture (<= 160 px): taken whole as a face crop"
    with pytest.raises(NoFaceFound, match="--faces none"):
        front.chip(np.full((200, 150), 90, np.uint8), mode="auto")  # larger than 160: a photo, a face is needed
    with pytest.raises(NoFaceFound):
        front.chip(small, mode="detect")


def test_no_face_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "holiday.png"
    Image.new("RGB", (300, 200), (GREY, GREY, GREY)).save(path)
    with pytest.raises(NoFaceFound) as info:
        FaceFrontEnd(detector=NoFaces(), onet=None).chip(path, mode="detect")  # type: ignore[arg-type]
    assert isinstance(info.value, DataError)
    assert str(path) in str(info.value) and "300x200" in str(info.value) and "larger photo" in str(info.value)


# --- the real detector and O-Net -------------------------------------------------------------------------------


@pytest.mark.data
def test_a_blank_picture_has_no_face(front: FaceFrontEnd) -> None:
    with pytest.raises(NoFaceFound, match="no face found in the picture"):
        front.chip(np.full((400, 400, 3), GREY, np.uint8), mode="detect")
    assert front.chip(np.full((120, 100, 3), GREY, np.uint8), mode="auto").box is None


@pytest.mark.data
def test_a_pasted_face_is_found_cropped_square_and_aligned(front: FaceFrontEnd, shared_data: Path) -> None:
    canvas = Image.new("RGB", (400, 400), (GREY, GREY, GREY))
    region = paste(canvas, orl(shared_data, 2, 3), 150, 140)
    chip = front.chip(np.asarray(canvas), mode="detect")
    assert chip.box is not None and iou(chip.box, region) > 0.3
    assert chip.faces_found == 1 and chip.note.startswith("1 face found; aligned: rotated")
    side = max(chip.box[2] - chip.box[0], chip.box[3] - chip.box[1]) * 1.5  # the default margin: 0.25 each side
    assert chip.pixels.shape[0] == chip.pixels.shape[1] and abs(chip.pixels.shape[0] - side) <= 1


@pytest.mark.data
def test_the_largest_of_two_faces_is_used(front: FaceFrontEnd, shared_data: Path) -> None:
    canvas = Image.new("RGB", (400, 400), (GREY, GREY, GREY))
    big = paste(canvas, orl(shared_data, 2, 3), 30, 60)
    small = orl(shared_data, 1, 1)
    paste(canvas, small.resize((64, 78), Image.Resampling.BILINEAR), 260, 220)  # this one scores higher
    chip = front.chip(np.asarray(canvas), mode="auto")
    assert chip.faces_found == 2 and chip.note.startswith("2 faces found: the largest used")
    assert chip.box is not None and iou(chip.box, big) > 0.3


@pytest.mark.data
def test_a_turned_face_is_turned_back_level(front: FaceFrontEnd, shared_data: Path) -> None:
    def photo(turn: float) -> np.ndarray:
        canvas = Image.new("RGB", (400, 400), (GREY, GREY, GREY))
        paste(canvas, orl(shared_data, 2, 3), 150, 140)
        centre = (150 + 46, 140 + 56)
        return np.asarray(canvas.rotate(turn, Image.Resampling.BILINEAR, center=centre, fillcolor=(GREY,) * 3))

    upright, turned = front.chip(photo(0.0), mode="detect"), front.chip(photo(15.0), mode="detect")
    # PIL turns the face 15 degrees counter-clockwise; the front-end must turn it back about as much
    assert abs((turned.angle - upright.angle) + 15.0) < 6.0, (upright.note, turned.note)
    assert "clockwise to level the eyes" in turned.note
    # and O-Net on the middle of the aligned chip (the face box without the margin) sees level eyes
    side = turned.pixels.shape[0]
    middle = turned.pixels[round(side / 6) : round(side * 5 / 6), round(side / 6) : round(side * 5 / 6)]
    assert front.onet is not None
    assert abs(face_landmarks(front.onet, middle).eye_angle) < 6.0
