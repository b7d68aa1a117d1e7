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
    chips, cut = load_people_folder(photos, 64, 1, "stretch", "auto")
    whole, _ = load_people_folder(photos, 64, 1, "stretch", "none")
    assert cut is not None and "face found, cropped and aligned" in cut
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
    assert "each photo's face found, cropped and aligned (--faces auto)" in log
    assert "wall.jpg" in log and "no face found" in log


@pytest.mark.data
def test_face_crops_larger_than_a_thumbnail_are_read_whole_when_few_faces_are_found(
    shared_data: Path, tmp_path: Path
) -> None:
    """ORL's tight crops blown up to 200x243: the detector, which wants background around a face, finds few,
    so the folder is taken for face crops (all 24 pictures kept, said in the log) instead of losing most of them;
    --faces detect still requires a face in each."""
    root = tmp_path / "people"
    for subject in range(1, 7):
        (root / f"person {subject}").mkdir(parents=True)
        for shot in range(1, 5):
            face = orl_face(shared_data, subject, shot).resize((200, 243))
            face.save(root / f"person {subject}" / f"{shot}.jpg")
    data, note = load_people_folder(root, 64, None, "stretch", "auto")
    assert len(data) == 24 and note is not None and "taken for face crops and read whole" in note
    args = ["train", "--task", "embed", "--data", str(root), "--model", "lenet5", "--epochs", "1"]
    assert main([*args, "--runs-dir", str(tmp_path / "runs")]) == 0
    assert "taken for face crops" in (tmp_path / "runs" / "embed" / "lenet5-1" / "log.txt").read_text()
    with pytest.warns(UserWarning, match="no face found"):
        detected, _ = load_people_folder(root, 64, None, "stretch", "detect")
    assert len(detected) < 24
