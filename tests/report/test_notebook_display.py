"""What a notebook shows: `_repr_html_` / `_repr_png_` of summaries, histories, run folders and cnnlab.show pictures,
checked against independent computations (scikit-learn's confusion matrix, the model's own summary rows)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import confusion_matrix
from torch import nn

import cnnlab
from cnnlab import show
from cnnlab.core.errors import DataError
from cnnlab.report.boxes_drawing import draw_boxes


def decoded(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def test_summary_shows_every_layer_as_an_html_table() -> None:
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 16 * 16, 10)
    )
    result = cnnlab.summary(net, (3, 32, 32))
    page = result._repr_html_()
    assert page.count("<tr>") == 1 + len(result.layers)  # header + one row per layer
    for row in result.table_rows():
        assert f"<td>{row[0]}</td><td>{row[1]}</td>" in page
    assert f"Total params: {sum(p.numel() for p in net.parameters()):,}" in page


def test_a_keras_style_fit_history_shows_its_curves() -> None:
    from cnnlab.layers import Dense, Flatten

    model = cnnlab.Sequential([Flatten(input_shape=(1, 4, 4)), Dense(2)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", from_logits=True)
    x, y = torch.rand(32, 1, 4, 4), torch.arange(32) % 2
    history = model.fit(x, y, epochs=2, validation_split=0.25, verbose=0)
    page = history._repr_html_()
    assert page.startswith("<img") and "After epoch 2" in page
    last = history.rows()[-1]
    assert last["loss"] == history.history["loss"][-1] and f"{last['loss']:.4g}" in page


def test_confusion_counts_equal_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    truth, predicted = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    picture = show.confusion(torch.from_numpy(truth), predicted, classes=["a", "b", "c", "d"])
    np.testing.assert_array_equal(picture.counts, confusion_matrix(truth, predicted, labels=range(4)))
    assert decoded(picture._repr_png_()).ndim == 3
    with pytest.raises(DataError, match="class names"):
        show.confusion([0, 5], [0, 1], classes=["a", "b"])
    with pytest.raises(DataError, match="class indices"):
        show.confusion([0.2, 0.8], [0, 1])


def test_boxes_picture_is_the_drawn_image() -> None:
    image = np.full((40, 50, 3), 90, np.uint8)
    picture = show.boxes(image, [[5, 5, 30, 25]], ["cell"], scores=[0.9])
    np.testing.assert_array_equal(decoded(picture.png), draw_boxes(image, [[5, 5, 30, 25]], ["cell"], [0.9]))


def test_cam_explains_the_predicted_class_and_masks_need_the_image_size(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    )
    image = torch.rand(3, 16, 16)
    predicted = int(net(image[None]).argmax())
    picture = show.cam(net, image, classes=["x", "y", "z"])
    assert picture.title == f"Grad-CAM of {'xyz'[predicted]}"
    assert picture.save(tmp_path / "cam.png").read_bytes() == picture.png
    overlay = show.mask(np.zeros((8, 8), np.uint8), np.eye(8, dtype=np.int64))
    assert decoded(overlay.png).shape[2] in (3, 4)
    with pytest.raises(DataError, match="the mask is"):
        show.mask(np.zeros((8, 8), np.uint8), np.zeros((4, 4)))


def test_images_grid_takes_loader_tensors() -> None:
    picture = show.images(torch.rand(5, 1, 8, 8), torch.tensor([0, 1, 0, 1, 1]), classes=["no", "yes"])
    assert picture.title == "5 images" and decoded(picture.png).shape[0] > 50


def test_a_run_folder_shows_results_curves_and_confusion(small_run: Path) -> None:
    view = show.run(small_run)
    page = view._repr_html_()
    assert "test_acc" in page and page.count("<img") >= 2
    assert [p.name for p in view.plots()[:2]] == ["curves.png", "confusion_matrix.png"]
    assert len(view.history) == 2 and "report.html" in page


def test_importing_cnnlab_and_drawing_leaves_the_backend_alone() -> None:
    code = (
        "import sys, matplotlib; matplotlib.use('svg'); import cnnlab\n"
        "cnnlab.show.confusion([0, 1], [1, 1])\n"
        "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, timeout=120, capture_output=True, text=True)
    assert done.stdout.split() == ["svg", "False"]  # the user's backend kept, pyplot never imported
