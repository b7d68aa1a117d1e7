"""The detection ladder, steps 1-3: the FC -> conv conversion against cropping every window, the course's
localisation loss by hand, localisation and landmark nets that learn (IoU from pycocotools, landmarks from a
brute-force pixel scan), and MTCNN's pretrained P-Net finding a pasted face, fully convolutionally."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.core.errors import ConfigError, WeightsError
from cnnlab.data.synthetic_boxes import localisation_targets, single_digit_canvases, sklearn_glyphs
from cnnlab.models.detect.landmarks import to_pixels
from cnnlab.models.detect.localise import decode_localisation
from cnnlab.models.detect.pnet import PNet, face_probability_map, load_pnet, strongest_face_window, to_pnet_input
from cnnlab.models.detect.sliding import (
    SlidingWindowNet,
    sliding_window_scores,
    to_fully_convolutional,
    total_stride,
)
from cnnlab.tasks.detect.ladder import (
    LadderSettings,
    digit_landmarks,
    localisation_loss,
    run_ladder,
    train_landmark_net,
    train_localiser,
    window_crops,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: one thread is faster on a shared 2-core box

# The few-second training runs: 24x24 canvases, cnn_small of width 8, 1,000 canvases, 4 epochs (about 3 s on
# one core); validation canvases use the 397 scikit-learn digits never drawn for training.
QUICK = LadderSettings(canvas=24, scale=(0.6, 1.0), train_images=1000, val_images=300, epochs=4)


def crop_by_crop(model: nn.Module, image: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """The reference: a double loop, each window cut out and classified alone, (K, rows, cols)."""
    rows = (image.shape[1] - window) // stride + 1
    cols = (image.shape[2] - window) // stride + 1
    out = torch.zeros(0)
    with torch.no_grad():
        for i in range(rows):
            for j in range(cols):
                crop = image[:, i * stride : i * stride + window, j * stride : j * stride + window]
                scores = model(crop[None]).reshape(-1)
                if out.numel() == 0:
                    out = torch.zeros(len(scores), rows, cols)
                out[:, i, j] = scores
    return out


# ----- step 3: FC -> conv ------------------------------------------------------------------------------------
def strided_net() -> tuple[nn.Sequential, tuple[int, int, int]]:
    """A second layout: a stride-2 conv, PReLU, pool, then Dropout and Softmax among the FC layers (stride 4)."""
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, stride=2),  # 17 -> 8
        nn.PReLU(6),
        nn.MaxPool2d(2),  # 8 -> 4
        nn.Flatten(),
        nn.Linear(6 * 4 * 4, 20),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(20, 3),
        nn.Softmax(dim=-1),
    )
    return net, (3, 17, 17)


@pytest.mark.parametrize("layout", ["course", "strided"])
def test_fully_convolutional_net_equals_cropping_every_window(layout: str) -> None:
    torch.manual_seed(0)
    if layout == "course":
        net, size = SlidingWindowNet(num_classes=4, in_chans=3), (3, 14, 14)
    else:
        net, size = strided_net()
    net.eval()
    stride = total_stride(net)
    assert stride == (2 if layout == "course" else 4)
    image = torch.randn(3, size[1] + 9 * stride, size[2] + 13 * stride)  # a 10 x 14 grid of windows
    fcn = to_fully_convolutional(net, size).eval()
    assert not any(isinstance(m, nn.Linear) for m in fcn.modules())
    one_pass = fcn(image[None])[0]
    reference = crop_by_crop(net, image, size[1], stride)
    assert one_pass.shape == reference.shape == (reference.shape[0], 10, 14)
    torch.testing.assert_close(one_pass, reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(sliding_window_scores(net, image, size[1], stride, batch_size=7), reference)


def test_course_example_shapes() -> None:
    # The lecture: 14x14x3 -> 1x1x4; 16x16x3 -> 2x2x4; 28x28x3 -> 8x8x4.
    fcn = to_fully_convolutional(SlidingWindowNet())
    assert [tuple(fcn(torch.zeros(1, 3, s, s)).shape[1:]) for s in (14, 16, 28)] == [(4, 1, 1), (4, 2, 2), (4, 8, 8)]
    conv = fcn[3]  # the first FC layer, now a 5x5 convolution with 400 filters over 16 channels
    assert isinstance(conv, nn.Conv2d) and tuple(conv.weight.shape) == (400, 16, 5, 5)


def test_conversion_refuses_what_it_cannot_convert() -> None:
    with pytest.raises(ConfigError, match=r"no nn\.Flatten"):
        to_fully_convolutional(nn.Sequential(nn.Conv2d(1, 2, 3)), (1, 5, 5))
    with pytest.raises(ConfigError, match="BatchNorm1d"):
        to_fully_convolutional(nn.Sequential(nn.Flatten(), nn.Linear(4, 2), nn.BatchNorm1d(2)), (1, 2, 2))
    with pytest.raises(ConfigError, match="takes 9 features"):
        to_fully_convolutional(nn.Sequential(nn.Flatten(), nn.Linear(9, 2)), (1, 2, 2))
    with pytest.raises(ConfigError, match="window size is unknown"):
        to_fully_convolutional(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))


# ----- step 1: classification with localisation --------------------------------------------------------------
def test_localisation_loss_by_hand() -> None:
    y_true = torch.tensor([[1.0, 0.5, 0.4, 0.3, 0.2, 0.0, 1.0, 0.0], [0.0, 0, 0, 0, 0, 0, 0, 0]])
    y_pred = torch.tensor([[2.0, 0.6, 0.1, 0.3, 0.4, 1.0, 0.5, -1.0], [-1.0, 0.9, 0.9, 0.9, 0.9, 3.0, 0, 0]])
    parts = localisation_loss(y_pred, y_true, box_weight=2.0)

    def bce(logit: float, target: float) -> float:
        p = 1 / (1 + math.exp(-logit))
        return -(target * math.log(p) + (1 - target) * math.log(1 - p))

    p_c = (bce(2.0, 1.0) + bce(-1.0, 0.0)) / 2
    box = 0.1**2 + 0.3**2 + 0.0**2 + 0.2**2  # only the image with an object
    label = -(0.5 - math.log(math.exp(1.0) + math.exp(0.5) + math.exp(-1.0)))
    assert float(parts["p_c"]) == pytest.approx(p_c, abs=1e-6)
    assert float(parts["box"]) == pytest.approx(box, abs=1e-6)
    assert float(parts["class"]) == pytest.approx(label, abs=1e-6)
    assert float(parts["loss"]) == pytest.approx(p_c + 2.0 * box + label, abs=1e-6)
    # When p_c = 0 the rest of y is "don't care": changing it changes nothing.
    changed = y_pred.clone()
    changed[1, 1:] = torch.randn(7)
    assert float(localisation_loss(changed, y_true)["loss"]) == pytest.approx(
        float(localisation_loss(y_pred, y_true)["loss"])
    )


def test_decoding_the_true_y_gives_back_the_true_boxes() -> None:
    glyphs, labels = sklearn_glyphs()
    data = single_digit_canvases(glyphs, labels, count=20, size=(30, 40), seed=3)
    y = localisation_targets(data)
    y[:, 0] = 20.0  # p_c as a confident logit; the classes one-hot scaled into confident logits
    y[:, 5:] *= 20.0
    decoded = decode_localisation(y, (30, 40))
    torch.testing.assert_close(decoded.boxes, data.targets[:, 0, 1:], atol=1e-4, rtol=0)
    assert decoded.labels.tolist() == data.targets[:, 0, 0].long().tolist()


def test_localiser_learns_boxes_and_classes_in_seconds() -> None:
    from pycocotools import mask as coco_mask

    result = train_localiser(QUICK)
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < 0.5 * losses[0]
    val = result.val
    present = val.targets[:, 0, 0] >= 0
    with torch.no_grad():
        decoded = decode_localisation(result.model(val.images.float() / 255), (24, 24))
    pred, true = decoded.boxes[present].double(), val.targets[present, 0, 1:].double()
    as_xywh = lambda b: torch.cat([b[:, :2], b[:, 2:] - b[:, :2]], 1).tolist()  # noqa: E731
    ious = np.diag(coco_mask.iou(as_xywh(pred), as_xywh(true), [0] * len(true)))  # pycocotools: the reference
    assert result.metrics["mean_iou"] == pytest.approx(ious.mean(), abs=1e-4)
    assert ious.mean() > 0.6
    assert ious.mean() > result.metrics["baseline_iou"] + 0.3  # far above always answering the mean box
    accuracy = (decoded.labels[present] == val.targets[present, 0, 0].long()).float().mean()
    assert float(accuracy) > 0.8
    assert result.metrics["p_c_accuracy"] > 0.95


# ----- step 2: landmarks -------------------------------------------------------------------------------------
def brute_force_landmarks(image: np.ndarray) -> np.ndarray:
    """Top, right, bottom, left extreme ink and ink centre of mass, by scanning the pixels one by one."""
    rows, cols = np.nonzero(image)
    top, bottom, left, right = rows.min(), rows.max(), cols.min(), cols.max()
    weights = image.astype(np.float64)
    ys, xs = np.mgrid[: image.shape[0], : image.shape[1]]
    return np.array(
        [
            [np.mean([c for r, c in zip(rows, cols, strict=True) if r == top]) + 0.5, top],
            [right + 1, np.mean([r for r, c in zip(rows, cols, strict=True) if c == right]) + 0.5],
            [np.mean([c for r, c in zip(rows, cols, strict=True) if r == bottom]) + 0.5, bottom + 1],
            [left, np.mean([r for r, c in zip(rows, cols, strict=True) if c == left]) + 0.5],
            [(weights * (xs + 0.5)).sum() / weights.sum(), (weights * (ys + 0.5)).sum() / weights.sum()],
        ]
    )


def test_digit_landmarks_match_a_pixel_scan_and_touch_the_box() -> None:
    glyphs, labels = sklearn_glyphs()
    data = single_digit_canvases(glyphs, labels, count=12, size=(32, 28), seed=5)
    points = digit_landmarks(data.images)
    for image, found in zip(data.images, points, strict=True):
        np.testing.assert_allclose(found.numpy(), brute_force_landmarks(image[0].numpy()), atol=1e-4)
    x1, y1, x2, y2 = data.targets[:, 0, 1:].unbind(-1)  # the generator's tight boxes: an independent source
    torch.testing.assert_close(points[:, 0, 1], y1)
    torch.testing.assert_close(points[:, 1, 0], x2)
    torch.testing.assert_close(points[:, 2, 1], y2)
    torch.testing.assert_close(points[:, 3, 0], x1)
    assert bool(
        ((points[:, 4, 0] > x1) & (points[:, 4, 0] < x2) & (points[:, 4, 1] > y1) & (points[:, 4, 1] < y2)).all()
    )


def test_landmark_net_learns_in_seconds() -> None:
    result = train_landmark_net(QUICK)
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < 0.3 * losses[0]
    with torch.no_grad():
        pred = to_pixels(result.model(result.val.images.float() / 255), (24, 24))
    true = torch.from_numpy(np.stack([brute_force_landmarks(im[0].numpy()) for im in result.val.images])).float()
    error = float((pred - true).norm(dim=-1).mean())
    assert error == pytest.approx(result.metrics["landmark_error"], abs=1e-4)
    assert error < 2.0  # pixels, on 24x24 canvases
    assert error < 0.4 * result.metrics["baseline_error"]  # always answering the mean points


def test_window_crops_are_digits_exactly_when_all_the_ink_is_inside() -> None:
    glyphs, labels = sklearn_glyphs(12)
    data = single_digit_canvases(glyphs, labels, count=1, size=(30, 30), scale=(0.8, 0.8), seed=2)
    crops, crop_labels = window_crops(data, 200, 14, seed=0)
    ink = int(data.images.sum())
    digit = int(data.targets[0, 0, 0])
    for crop, label in zip(crops, crop_labels, strict=True):
        whole = int(crop.sum()) == ink  # the box is the ink's tight box: inside the window iff all ink is
        assert int(label) == (digit if whole else 10)
    assert {int(v) for v in crop_labels} == {digit, 10}


# ----- step 3: MTCNN's P-Net ---------------------------------------------------------------------------------
def test_pnet_map_equals_running_it_window_by_window() -> None:
    torch.manual_seed(0)
    net = PNet().eval()
    for p in net.parameters():  # random weights: the identity must not depend on what the net learned
        nn.init.normal_(p, std=0.3)
    image = to_pnet_input(np.random.default_rng(0).integers(0, 256, (40, 46, 3), dtype=np.uint8))[0]
    with torch.no_grad():
        probs, offsets = net(image[None])
    torch.testing.assert_close(probs[0], crop_by_crop(lambda c: net(c)[0], image, 12, 2), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(offsets[0], crop_by_crop(lambda c: net(c)[1], image, 12, 2), atol=1e-5, rtol=1e-5)


def test_pnet_refuses_files_that_are_not_its_weights(tmp_path: Path) -> None:
    torch.save({"conv1.weight": torch.zeros(10, 3, 3, 3)}, tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="does not hold P-Net's layers"):
        load_pnet(tmp_path / "other.pt")
    torch.save(PNet().state_dict(), tmp_path / "pnet.pt")
    with pytest.raises(WeightsError, match="checksum differs"):
        load_pnet(tmp_path / "pnet.pt")


def pasted_face(shared_data: Path) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """An AT&T face (92x112, grey) pasted at a known place on a 240x320 canvas of blurred colour noise."""
    from PIL import Image

    from cnnlab.data.images import read_image

    face = read_image(shared_data / "att-faces" / "s1" / "1.pgm", channels=3)
    noise = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    canvas = np.array(Image.fromarray(noise).resize((320, 240), Image.Resampling.BILINEAR))
    left, top = 150, 70
    canvas[top : top + 112, left : left + 92] = face
    return canvas, (left, top, left + 92, top + 112)


@pytest.mark.data
def test_pretrained_pnet_finds_the_pasted_face(shared_data: Path) -> None:
    net = load_pnet(shared_data / "face-models" / "pnet.pt")
    assert sum(p.numel() for p in net.parameters()) == 6632  # README-mtcnn.md
    canvas, (x1, y1, x2, y2) = pasted_face(shared_data)
    best = strongest_face_window(net, canvas)
    bx1, by1, bx2, by2 = best.box
    centre = ((bx1 + bx2) / 2, (by1 + by2) / 2)
    assert x1 <= centre[0] <= x2 and y1 <= centre[1] <= y2
    inside = max(0, min(bx2, x2) - max(bx1, x1)) * max(0, min(by2, y2) - max(by1, y1))
    assert inside / ((bx2 - bx1) * (by2 - by1)) > 0.7  # the window lies on the face, not beside it
    assert best.probability > 0.9
    # The same map, window by window with the real weights, at the scale that found the face.
    probs = face_probability_map(net, canvas, best.scale)
    resized = torch.nn.functional.interpolate(
        to_pnet_input(canvas), size=(round(240 * best.scale), round(320 * best.scale)), mode="area"
    )[0]
    reference = crop_by_crop(lambda c: net(c)[0][:, 1], resized, 12, 2)[0]
    rows, cols = reference.shape
    torch.testing.assert_close(probs[:rows, :cols], reference, atol=1e-5, rtol=0)


# ----- run folders -------------------------------------------------------------------------------------------
def test_run_ladder_writes_metrics_config_and_picture(tmp_path: Path) -> None:
    settings = LadderSettings(canvas=24, train_images=64, val_images=32, epochs=1)
    metrics = run_ladder("landmarks", settings, tmp_path)
    run = Path(metrics["run"])
    assert run == tmp_path / "ladder" / "landmarks-1"
    assert json.loads((run / "metrics.json").read_text())["landmark_error"] == metrics["landmark_error"]
    assert "canvas: 24" in (run / "config.yaml").read_text()
    assert (run / "plots" / "landmarks.png").stat().st_size > 1000
    with pytest.raises(ConfigError, match="unknown ladder step"):
        run_ladder("yolo", settings, tmp_path)
    with pytest.raises(ConfigError, match="needs a photo"):
        run_ladder("pnet", settings, tmp_path)
    assert sorted(p.name for p in (tmp_path / "ladder").iterdir()) == ["landmarks-1"]  # nothing half-made


@pytest.mark.data
def test_cli_runs_the_pnet_step(shared_data: Path, tmp_path: Path) -> None:
    import typer
    from PIL import Image
    from typer.testing import CliRunner

    from cnnlab.cli.ladder_cmd import ladder

    app = typer.Typer()
    app.command("ladder")(ladder)
    app.callback()(lambda: None)  # a group, as in cnnlab's app: `ladder` stays a subcommand
    canvas, _ = pasted_face(shared_data)
    Image.fromarray(canvas).save(tmp_path / "face.png")
    weights = shared_data / "face-models" / "pnet.pt"
    args = ["ladder", "pnet", "--image", str(tmp_path / "face.png"), "--weights", str(weights)]
    result = CliRunner().invoke(app, [*args, "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "runs" / "ladder" / "pnet-1" / "metrics.json").read_text())
    assert metrics["max_abs_difference"] < 1e-5
    assert (tmp_path / "runs" / "ladder" / "pnet-1" / "plots" / "pnet.png").is_file()
    assert "Run:" in result.output
