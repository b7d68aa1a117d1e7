"""The pretrained Tiny-YOLOv2 face detector (face-api.js' weights, ``shared/data/face-models``): the network's
shapes against hand arithmetic and TensorFlow's 'same' pooling rule, the weight file's keys and shapes against
its README, decoding against the YOLOv2 formulas worked by hand, and the whole detector against the README's
recorded astronaut box, a pasted ORL face at a known place, and pictures with no face."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from PIL import Image
from typer.testing import CliRunner

from cnnlab.core.errors import ConfigError, DataError, ShapeError, WeightsError
from cnnlab.data.images import read_image
from cnnlab.models.detect.tiny_yolov2 import (
    FACE_ANCHORS,
    FILE_NAME,
    TinyYoloV2,
    load_tiny_yolov2,
    max_pool_same,
)
from cnnlab.tasks.detect import faces as faces_module
from cnnlab.tasks.detect.boxes import box_iou
from cnnlab.tasks.detect.faces import FaceDetector, decode_faces, find_weights, letterbox

pytestmark = pytest.mark.usefixtures("one_thread")


def weights_path(shared_data: Path) -> Path:
    return shared_data / "face-models" / FILE_NAME


@pytest.fixture(scope="module")
def detector(shared_data: Path) -> FaceDetector:
    return FaceDetector.load(weights_path(shared_data))


# --- the network -----------------------------------------------------------------------------------------------


def reference_max_pool_same(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """TensorFlow's 'same' max-pool by loops: ceil(n / stride) outputs per axis, the padding split with the odd
    one after; padded cells are ignored."""
    height, width = x.shape
    out_h, out_w = math.ceil(height / stride), math.ceil(width / stride)
    top = max((out_h - 1) * stride + kernel - height, 0) // 2
    left = max((out_w - 1) * stride + kernel - width, 0) // 2
    out = np.empty((out_h, out_w), x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            rows = slice(max(i * stride - top, 0), i * stride - top + kernel)
            cols = slice(max(j * stride - left, 0), j * stride - left + kernel)
            out[i, j] = x[rows, cols].max()
    return out


@pytest.mark.parametrize(("height", "width"), [(1, 1), (2, 3), (5, 4), (7, 7), (8, 9)])
@pytest.mark.parametrize(("kernel", "stride"), [(2, 2), (2, 1), (3, 2)])
def test_max_pool_same_matches_tensorflows_rule(height: int, width: int, kernel: int, stride: int) -> None:
    x = torch.randn(1, 1, height, width, generator=torch.Generator().manual_seed(height * 10 + width))
    expected = reference_max_pool_same(x[0, 0].numpy(), kernel, stride)
    np.testing.assert_array_equal(max_pool_same(x, kernel, stride)[0, 0].numpy(), expected)


def test_feature_map_sizes_follow_the_hand_arithmetic() -> None:
    net = TinyYoloV2().eval()
    sizes: dict[str, int] = {}
    for name in ("conv0", "conv1", "conv2", "conv3", "conv4", "conv5"):
        net.get_submodule(name).register_forward_hook(lambda m, a, out, n=name: sizes.__setitem__(n, out.shape[-1]))
    with torch.no_grad():
        out = net(torch.zeros(1, 3, 416, 416))
    # 416 - 2 ('valid' 3x3) = 414; 'same' 2x2/2 pools: 414 -> 207 -> 104 -> 52 -> 26 -> 13; then 2x2/1: 13
    assert sizes == {"conv0": 414, "conv1": 207, "conv2": 104, "conv3": 52, "conv4": 26, "conv5": 13}
    assert out.shape == (1, 25, 13, 13)
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 608, 320)).shape == (1, 25, 19, 10)  # the course's 608 -> 19 x 19 grid


def test_inputs_that_are_not_multiples_of_32_are_refused() -> None:
    with pytest.raises(ShapeError, match="multiples of 32"):
        TinyYoloV2()(torch.zeros(1, 3, 400, 416))


# --- the weight file ---------------------------------------------------------------------------------------------


@pytest.mark.data
def test_weights_load_with_exact_shapes(shared_data: Path) -> None:
    path = weights_path(shared_data)
    state = torch.load(path, map_location="cpu", weights_only=True)
    # the README's key layout: conv0 3 -> 16, five depthwise-separable convs doubling 16 -> 512, conv8 512 -> 25
    expected = {
        "conv0.weight": (16, 3, 3, 3),
        "conv0.bias": (16,),
        "conv8.weight": (25, 512, 1, 1),
        "conv8.bias": (25,),
    }
    for i, channels in enumerate((16, 32, 64, 128, 256), start=1):
        expected[f"conv{i}.depthwise.weight"] = (channels, 1, 3, 3)
        expected[f"conv{i}.pointwise.weight"] = (2 * channels, channels, 1, 1)
        expected[f"conv{i}.pointwise.bias"] = (2 * channels,)
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    net = load_tiny_yolov2(path)
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == expected
    assert sum(p.numel() for p in net.parameters()) == 193_321  # the README's count
    for key, tensor in state.items():
        assert torch.equal(net.state_dict()[key], tensor), key
    assert not net.training


def test_a_file_that_does_not_fit_names_the_file_and_the_keys(tmp_path: Path) -> None:
    state = TinyYoloV2().state_dict()
    state["conv8.weight"] = torch.zeros(30, 512, 1, 1)  # e.g. six anchors
    del state["conv3.pointwise.bias"]
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "other.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError) as caught:
        load_tiny_yolov2(path)
    message = str(caught.value)
    for part in ("other.pth", "missing: conv3.pointwise.bias", "unexpected: extra.weight", "conv8.weight (30, 512"):
        assert part in message


def test_weights_are_never_downloaded_and_a_missing_file_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNNLAB_WEIGHTS", str(tmp_path / "w"))
    monkeypatch.setenv("CNNLAB_SHARED_DATA", str(tmp_path / "shared"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsError, match="shared/face-models") as caught:
        FaceDetector.load()
    assert FILE_NAME in str(caught.value) and "../shared/data/face-models" in str(caught.value)
    with pytest.raises(WeightsError, match="not found"):
        FaceDetector.load(tmp_path / "nothing.pth")
    found = tmp_path / "shared" / "face-models" / FILE_NAME
    found.parent.mkdir(parents=True)
    torch.save(TinyYoloV2().state_dict(), found)
    assert find_weights() == found


# --- decoding: the course's functions ----------------------------------------------------------------------------


def test_decoding_a_hand_built_output_recovers_its_boxes() -> None:
    """Encode two boxes by hand with the README's YOLOv2 formulas (the inverse of cx = (col + sigmoid(tx)) / 13,
    w = exp(tw) * anchor_w / 13, score = sigmoid(obj)), decode through the course's functions, compare."""
    side, grid = 832.0, 13  # a 832 x 832 picture: 64 px per cell
    wanted = [((300.0, 200.0, 420.0, 350.0), 0.9, 3), ((600.0, 500.0, 700.0, 620.0), 0.7, 0)]
    raw = torch.full((1, 25, grid, grid), -20.0)  # objectness sigmoid(-20): no face anywhere else
    for (x1, y1, x2, y2), score, anchor in wanted:
        cx, cy = (x1 + x2) / 2 / side * grid, (y1 + y2) / 2 / side * grid  # in cells
        col, row = int(cx), int(cy)
        w, h = (x2 - x1) / side * grid, (y2 - y1) / side * grid
        logit = lambda p: math.log(p / (1 - p))  # noqa: E731
        values = [logit(cx - col), logit(cy - row), math.log(w / FACE_ANCHORS[anchor][0])]
        values += [math.log(h / FACE_ANCHORS[anchor][1]), logit(score)]
        raw[0, anchor * 5 : anchor * 5 + 5, row, col] = torch.tensor(values)
    boxes, scores = decode_faces(raw, (side, side), score_threshold=0.5)
    # (torch.testing.assert_close would cost 2 s of lazy imports on its first call)
    assert (boxes - torch.tensor([w[0] for w in wanted])).abs().max().item() < 1e-3
    assert (scores - torch.tensor([0.9, 0.7])).abs().max().item() < 1e-5
    assert len(decode_faces(raw, (side, side), score_threshold=0.8)[0]) == 1


def test_the_detector_decodes_with_the_course_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    """One code path: FaceDetector.detect goes through the course's yolo_head and yolo_eval."""
    calls: list[str] = []
    for name in ("yolo_head", "yolo_eval"):
        original = getattr(faces_module, name)
        monkeypatch.setattr(faces_module, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))
    FaceDetector(TinyYoloV2()).detect(np.zeros((64, 64, 3), np.uint8))
    assert calls == ["yolo_head", "yolo_eval"]


def test_letterbox_pads_bottom_right_and_maps_back_exactly() -> None:
    picture = np.full((300, 500, 3), 255, np.uint8)
    x, image_shape = letterbox(picture, 416)
    # 500 -> 416 wide, 300 -> 250 tall (rounded); rows 250..415 are black padding, normalised below zero
    assert x.shape == (1, 3, 416, 416)
    assert (x[0, :, :250] > 0).all() and (x[0, :, 250:] < 0).all()
    assert image_shape == pytest.approx((416 * 300 / 250, 500.0))
    with pytest.raises(ConfigError, match="multiple of 32"):
        letterbox(picture, 400)


def test_bad_pictures_and_thresholds_are_refused() -> None:
    detector = FaceDetector(TinyYoloV2())
    with pytest.raises(DataError, match="uint8"):
        detector.detect(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ConfigError, match="score_threshold"):
        detector.detect(np.zeros((10, 10, 3), np.uint8), score_threshold=1.5)
    with pytest.raises(ConfigError, match="max_faces"):
        detector.detect(np.zeros((10, 10, 3), np.uint8), max_faces=0)


# --- the detector on real pictures ---------------------------------------------------------------------------------


@pytest.mark.data
def test_astronaut_matches_the_readmes_recorded_box(detector: FaceDetector, shared_data: Path) -> None:
    found = detector.detect(shared_data / "style-images" / "content" / "astronaut.png")
    assert len(found) == 1
    box, score = found[0]
    assert score == pytest.approx(0.973, abs=0.005)
    assert box == pytest.approx((164, 75, 279, 186), abs=2.0)


def paste_face(canvas: np.ndarray, shared_data: Path, subject: int, top_left: tuple[int, int], zoom: int = 2) -> tuple:
    """Paste an ORL face (92 x 112, grey, the first picture of ``subject``) zoomed ``zoom`` times on the canvas;
    returns the pasted region (x1, y1, x2, y2)."""
    face = read_image(shared_data / "att-faces" / f"s{subject}" / "1.pgm", channels=3)
    face = np.asarray(Image.fromarray(face).resize((92 * zoom, 112 * zoom), Image.Resampling.BILINEAR))
    x, y = top_left
    canvas[y : y + face.shape[0], x : x + face.shape[1]] = face
    return (x, y, x + face.shape[1], y + face.shape[0])


def grey_canvas() -> np.ndarray:
    return np.full((480, 640, 3), 128, np.uint8)  # flat grey, 640 x 480: letterboxed with 160 rows of padding


@pytest.mark.data
def test_finds_exactly_one_face_where_an_orl_face_was_pasted(detector: FaceDetector, shared_data: Path) -> None:
    canvas = grey_canvas()
    region = paste_face(canvas, shared_data, subject=16, top_left=(300, 150))
    found = detector.detect(canvas)
    assert len(found) == 1
    box = torch.tensor([found[0].box])
    assert box_iou(box, torch.tensor([region], dtype=torch.float32)).item() > 0.5
    # The ORL crops show the whole head: hair fills about the top quarter, the face (brows to chin, ear to ear)
    # the rest, and face detectors box the face. So the box should fit the lower three quarters of the paste.
    x1, y1, x2, y2 = region
    face_part = torch.tensor([[x1, y1 + (y2 - y1) / 4, x2, y2]], dtype=torch.float32)
    assert box_iou(box, face_part).item() > 0.7


@pytest.mark.data
def test_largest_face_is_the_bigger_of_two(detector: FaceDetector, shared_data: Path) -> None:
    canvas = grey_canvas()
    big = paste_face(canvas, shared_data, subject=13, top_left=(330, 150))
    small = paste_face(canvas, shared_data, subject=22, top_left=(40, 60), zoom=1)
    found = detector.detect(canvas)
    boxes = torch.tensor([face.box for face in found])
    regions = torch.tensor([big, small], dtype=torch.float32)
    assert len(found) == 2 and (box_iou(boxes, regions).max(0).values > 0.4).all()  # one box on each face
    assert box_iou(boxes[:1], regions[1:]).item() > 0.4, "the small face should score best, so that size decides"
    largest = detector.largest_face(canvas)
    assert largest is not None
    assert box_iou(torch.tensor([largest.box]), regions[:1]).item() > 0.5


@pytest.mark.data
def test_no_face_in_a_blood_smear_or_in_noise(detector: FaceDetector, shared_data: Path) -> None:
    assert detector.detect(shared_data / "bccd" / "BCCD" / "JPEGImages" / "BloodImage_00000.jpg") == []
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert detector.detect(noise) == []
    assert detector.largest_face(noise) is None


@pytest.mark.data
def test_faces_command_writes_pictures_and_prints_a_table(shared_data: Path, tmp_path: Path) -> None:
    from cnnlab.cli.faces_cmd import faces

    app = typer.Typer()
    app.command()(faces)
    astronaut = shared_data / "style-images" / "content" / "astronaut.png"
    blood = shared_data / "bccd" / "BCCD" / "JPEGImages" / "BloodImage_00000.jpg"
    result = CliRunner().invoke(
        app,
        [
            str(astronaut),
            str(blood),
            str(astronaut),
            "--out",
            str(tmp_path / "out"),
            "--weights",
            str(weights_path(shared_data)),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "164, 75, 279, 186" in result.output and "0.973" in result.output
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["BloodImage_00000.png", "astronaut-2.png", "astronaut.png"]
    drawn = read_image(tmp_path / "out" / "astronaut.png")
    original = read_image(astronaut)
    assert drawn.shape == original.shape
    assert (drawn[130, 164] != original[130, 164]).any()  # the box's left edge, half-way down
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "BloodImage_00000.png"), read_image(blood))
