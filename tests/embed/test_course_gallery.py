"""The course's verify / who_is_it, the gallery file, the siamese head: against hand computations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.tasks.embed.course import COURSE_THRESHOLD, identify, verify, who_is_it
from cnnlab.tasks.embed.gallery import Gallery, gallery_photos
from cnnlab.tasks.embed.siamese import fit_siamese_head, pair_accuracy


def test_verify_and_who_is_it_follow_the_course() -> None:
    database = {"younes": torch.tensor([0.0, 0.0, 0.0]), "kian": torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])}
    probe = torch.tensor([0.0, 0.6, 0.0])
    assert COURSE_THRESHOLD == 0.7
    assert verify(probe, "younes", database) == (0.6, True)  # 0.6 < 0.7: the door opens
    assert verify(probe, "kian", database) == (0.4, True)  # the nearest of kian's two encodings
    assert who_is_it(probe, database) == (0.4, "kian")
    assert who_is_it(torch.tensor([3.0, 0.0, 0.0]), database) == (2.0, None)  # "Not in the database"
    assert identify is who_is_it
    assert verify(probe, "younes", database, threshold=0.5) == (0.6, False)


def test_the_same_encoding_always_verifies() -> None:
    e = F.normalize(torch.randn(128), dim=0)
    assert verify(e, "me", {"me": e}, threshold=0.0) == (0.0, True)


def test_gallery_round_trip_and_unknown(tmp_path: Path) -> None:
    vectors = F.normalize(torch.randn(5, 8), dim=1)
    gallery = Gallery(vectors, ["a", "a", "b", "c", "c"], [f"p{i}" for i in range(5)], "dlib_resnet29", 0.6)
    loaded = Gallery.load(gallery.save(tmp_path / "sub" / "g.npz"))
    assert torch.equal(loaded.vectors, vectors) and loaded.people == gallery.people and loaded.threshold == 0.6
    ranked = loaded.identify(vectors[3], k=3)
    assert ranked[0] == ("c", 0.0) and len(ranked) == 3 and ranked[1][1] <= ranked[2][1]
    assert loaded.who(-vectors[3])[0] is None or loaded.who(-vectors[3])[1] <= 0.6
    assert not list((tmp_path / "sub").glob("*.partial*"))  # written atomically


def test_gallery_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cnnlab enrol"):
        Gallery.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(DataError, match="not a cnnlab gallery"):
        Gallery.load(tmp_path / "other.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no photos"):
        gallery_photos(tmp_path / "empty")


def test_gallery_folders_and_named_photos(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "ann").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "ann" / "1.png")
    Image.new("L", (8, 8)).save(tmp_path / "bob.jpg")  # one-shot: a single photo named after its person
    (tmp_path / "notes.txt").write_text("x")
    assert {k: len(v) for k, v in gallery_photos(tmp_path).items()} == {"ann": 1, "bob": 1}
    Image.new("L", (8, 8)).save(tmp_path / "ann.png")
    with pytest.raises(DataError, match="both a photo and a folder"):
        gallery_photos(tmp_path)


def test_siamese_head_separates_pairs_of_people_it_never_saw() -> None:
    torch.manual_seed(0)
    centres = F.normalize(torch.randn(10, 16), dim=1)
    vectors = F.normalize(centres.repeat_interleave(6, 0) + 0.15 * torch.randn(60, 16), dim=1)
    labels = torch.arange(10).repeat_interleave(6)
    head = fit_siamese_head(vectors[labels < 6], labels[labels < 6])
    assert pair_accuracy(head, vectors[labels >= 6], labels[labels >= 6]) > 0.9
    assert head.linear.weight.mean() < 0  # a larger |difference| means "different": negative weights
