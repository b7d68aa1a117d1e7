"""People folders of photos (faces with background around them) train and evaluate on the face chips the front-end
cuts, as `cnnlab verify` / `identify` embed them; face crops are read as they are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli.app import main
from cnnlab.tasks.embed.face_folder import load_people_folder, needs_front_end


def orl_face(shared_data: Path, subject: int, shot: int) -> Image.Image:
    return Image.open(shared_data / "att-faces" / f"s{subject}" / f"{shot}.pgm").convert("RGB")


def write_photos(shared_data: Path, root: Path, subjects: range, shots: range) -> Path:
    """ORL faces pasted at their own size at varying places of 400 x 400 grey photos (where the detector finds
    them), one folder per person."""
    rng = np.random.default_rng(0)
    for subject in subjects:
        folder = root / f"s{subject}"
        folder.mkdir(parents=True)
        for shot in shots:
            canvas = Image.new("RGB", (400, 400), (128, 128, 128))
            canvas.paste(orl_face(shared_data, subject, shot), tuple(int(v) for v in rng.integers(60, 220, 2)))
            canvas.save(folder / f"{shot}.jpg")
    return root


def background(image: torch.Tensor) -> float:
    """The share of pixels of the photos' plain grey (128, JPEG noise allowed)."""
    return float(((image.int() - 128).abs() <= 4).float().mean())


@pytest.mark.data
def test_photos_are_cut_to_their_faces_and_crops_stay_whole(shared_data: Path, tmp_path: Path) -> None:
    photos = write_photos(shared_data, tmp_path / "photos", range(1, 3), range(1, 4))
    assert needs_front_end(photos, "auto") and not needs_front_end(shared_data / "att-faces", "auto")
    assert not needs_front_end(photos, "none") and needs_front_end(shared_data / "att-faces", "detect")
    chips = load_people_folder(photos, 64, 1, "stretch", "auto")
    whole = load_people_folder(photos, 64, 1, "stretch", "none")
    assert len(chips) == 6 and chips.classes == ["s1", "s2"] and chips.images.shape[1:] == (1, 64, 64)
    for chip, photo in zip(chips.images, whole.images, strict=True):
        assert background(chip) < 0.7 < 0.85 < background(photo)  # the face: half the chip, 7% of the photo


@pytest.mark.data
def test_training_on_photos_says_it_found_the_faces_and_lists_a_photo_without_one(
    shared_data: Path, tmp_path: Path
) -> None:
    photos = write_photos(shared_data, tmp_path / "photos", range(1, 5), range(1, 4))
    Image.new("RGB", (400, 300), (90, 90, 90)).save(photos / "s1" / "wall.jpg")
    args = ["train", "--task", "embed", "--data", str(photos), "--model", "lenet5", "--epochs", "1"]
    assert main([*args, "--runs-dir", str(tmp_path / "runs")]) == 0
    log = (tmp_path / "runs" / "embed" / "lenet5-1" / "log.txt").read_text()
    assert "each photo's face found, cropped and aligned (embed.faces: auto)" in log
    assert "wall.jpg" in log and "no face found" in log
