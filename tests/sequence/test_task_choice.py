"""`cnnlab train --data X` without --task: image layouts stay image classification, sequence data is claimed.

CI found `--data hymenoptera` (train/<class>/<image>) taken for class folders of frame-folder clips; these
layouts are what a newcomer's first image folder looks like.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.data.clips import save_clip_folder
from cnnlab.tasks.base import task_for_data
from cnnlab.tasks.sequence.sources import source_kind


def _image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(path)


IMAGE_LAYOUTS = {
    "split folders": ["train/ants/a.jpg", "train/bees/b.jpg", "val/ants/c.jpg", "val/bees/d.jpg"],
    "split folders, capitalised": ["Train/cat/1.png", "Test/dog/2.png"],
    "nested class folders": ["cat/indoor/1.png", "cat/outdoor/2.png", "dog/park/3.png"],
    "class folders": ["cat/1.png", "dog/2.png"],
}


@pytest.mark.parametrize("layout", IMAGE_LAYOUTS)
def test_image_layouts_are_not_claimed(layout: str, tmp_path: Path) -> None:
    for name in IMAGE_LAYOUTS[layout]:
        _image(tmp_path / name)
    assert task_for_data(str(tmp_path)) is None  # so classify


def test_npy_clips_are_claimed_and_frame_folders_need_the_task(tmp_path: Path) -> None:
    clips = np.zeros((2, 3, 4, 4), dtype=np.uint8)
    npy = save_clip_folder(tmp_path / "npy", clips, [0, 1], ["left", "right"])
    assert task_for_data(str(npy)) == "sequence"
    for clip in ("left/c0", "right/c1"):
        for frame in range(3):
            _image(tmp_path / "frames" / clip / f"{frame:03d}.png")
    assert task_for_data(str(tmp_path / "frames")) is None
    assert source_kind(str(tmp_path / "frames")) == "clip"  # what --task sequence reads it as


SERIES_FILES = {
    "csv, label first with a header": ("s.csv", "label,t0,t1,t2\nwalk,0.5,1.5,2\nrun,2,3,?\n"),
    "csv, label last, no header": ("s.csv", "0.5,1.5,2,walk\n2,3,4,run\n"),
    "csv, numeric labels": ("s.csv", "1,0.5,1.5,2\n0,2,3,4\n"),
}
IMAGE_FILES = {
    "csv of image paths": ("i.csv", "path,label\na.png,cat\nb.png,dog\n"),
    "csv of paths with extra columns": ("i.csv", "a.png,cat,0.5\nb.png,dog,0.7\n"),
}


@pytest.mark.parametrize("case", [*SERIES_FILES, *IMAGE_FILES])
def test_a_csv_of_number_rows_is_claimed_and_an_image_list_is_not(case: str, tmp_path: Path) -> None:
    name, text = {**SERIES_FILES, **IMAGE_FILES}[case]
    (tmp_path / name).write_text(text)
    expected = "sequence" if case in SERIES_FILES else None
    assert task_for_data(str(tmp_path / name)) == expected


@pytest.mark.parametrize(
    ("shape", "claimed"),
    [((6, 80), True), ((6, 128, 3), True), ((6, 28, 28), False), ((6, 28, 28, 1), False), ((6, 32, 32, 3), False)],
)
def test_an_npz_of_series_shapes_is_claimed_and_images_are_not(shape: tuple, claimed: bool, tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x_train=np.zeros(shape, np.float32), y_train=np.arange(shape[0]) % 2)
    assert (task_for_data(str(tmp_path / "d.npz")) == "sequence") is claimed
