"""Detection metric figures: valid PNGs of a sensible size, and written atomically (a failed save leaves the
old file and no temporary one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from cnnlab.core.errors import ConfigError, RunDirError
from cnnlab.tasks.detect.metric_figures import plot_confusion, plot_f1_curve, plot_pr_curves
from cnnlab.tasks.detect.metrics import DetectionScores, detection_confusion, evaluate_detections

CLASSES = ["RBC", "WBC", "Platelets"]


def scene() -> tuple[list[dict[str, torch.Tensor]], list[dict[str, torch.Tensor]]]:
    """Four images: jittered hits, a class with boxes, a class without boxes (Platelets), false positives."""
    rng = np.random.default_rng(0)
    predictions, ground_truth = [], []
    for _ in range(4):
        corner = rng.uniform(0, 400, (6, 2))
        boxes = np.concatenate([corner, corner + rng.uniform(20, 90, (6, 2))], 1)
        labels = rng.integers(0, 2, 6)
        ground_truth.append({"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels)})
        noisy = np.concatenate([boxes + rng.normal(0, 4, boxes.shape), boxes[:2] + 200])
        predictions.append(
            {
                "boxes": torch.tensor(noisy, dtype=torch.float32),
                "scores": torch.tensor(rng.uniform(0, 1, 8), dtype=torch.float32),
                "labels": torch.tensor(np.concatenate([labels, [1, 2]])),
            }
        )
    return predictions, ground_truth


@pytest.fixture(scope="module")
def scores() -> DetectionScores:
    return evaluate_detections(*scene(), CLASSES)


def assert_png(path: Path, min_side: int = 300) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as picture:
        picture.load()  # decodes every byte: a truncated file fails here
        assert min(picture.size) >= min_side
    assert not list(path.parent.glob("*.tmp")), "a temporary file was left behind"


def test_pr_and_f1_curves_are_complete_pngs(scores: DetectionScores, tmp_path: Path) -> None:
    assert_png(plot_pr_curves(scores, tmp_path / "pr.png"))
    assert_png(plot_f1_curve(scores, tmp_path / "nested" / "f1.png"))


def test_confusion_with_background_row_is_a_complete_png(tmp_path: Path) -> None:
    matrix = detection_confusion(*scene(), num_classes=3)
    assert matrix.shape == (4, 4)
    assert_png(plot_confusion(matrix, CLASSES, tmp_path / "cm.png"))
    with pytest.raises(ConfigError, match=r"\(4, 4\) matrix"):
        plot_confusion(matrix[:3, :3], CLASSES, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_failed_drawing_keeps_the_old_file_and_leaves_no_temporary(
    scores: DetectionScores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "pr.png"
    target.write_bytes(b"old picture")

    def broken_savefig(self: Figure, buffer: object, **kwargs: object) -> None:
        buffer.write(b"\x89PNG half")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        plot_pr_curves(scores, target)
    assert target.read_bytes() == b"old picture"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pr.png"]


def test_unwritable_folder_raises_a_run_folder_error_and_writes_nothing(
    scores: DetectionScores, tmp_path: Path
) -> None:
    blocker = tmp_path / "plots"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(RunDirError):
        plot_confusion(np.zeros((4, 4), dtype=np.int64), CLASSES, blocker / "cm.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plots"]
