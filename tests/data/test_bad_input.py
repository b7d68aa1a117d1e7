"""Bad input a user met (issue 19): each case is a one-line error naming the file, or the right behaviour.

Everything is made here in tmp_path: small PIL images, a truncated PNG (the first 100 bytes of a
real one), a PNG header claiming a decompression bomb, .npz, .csv and IDX files.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli.app import main
from cnnlab.core.errors import ConfigError, DataError
from cnnlab.data.cache import DataWarning, data_warnings_as_lines
from cnnlab.data.datasets import (
    class_indices,
    from_arrays,
    load_csv,
    load_image_folder,
    load_mnist,
    load_npz,
    load_segmentation,
    open_source,
)
from cnnlab.data.images import check_image_size, image_info, read_mask
from cnnlab.data.named import resolve_source
from cnnlab.layers.kernels import load_grayscale

# Skipped files warn by design; the tests that care assert the warnings with pytest.warns.
pytestmark = pytest.mark.filterwarnings("ignore::cnnlab.data.cache.DataWarning")

RNG = np.random.default_rng(0)


def _png(path: Path, size: tuple[int, int] = (12, 10), mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = RNG.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


def _truncated(path: Path) -> Path:
    """The first 100 bytes of a real PNG: a valid header, then the pixel data stops."""
    whole = _png(path, (24, 24))
    whole.write_bytes(whole.read_bytes()[:100])
    return path


def _bomb(path: Path) -> Path:
    """A PNG whose header claims 30000 x 30000 pixels (no real pixel data is needed to refuse it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")
    )
    return path


def _class_folders(root: Path, counts: dict[str, int]) -> Path:
    for name, count in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            _png(root / name / f"{i}.png")
    return root


def _inspect(path: Path, tmp_path: Path, *extra: str) -> int:
    return main(["data", "inspect", str(path), "--grid", str(tmp_path / "grid.png"), "--per-class", "1", *extra])


# --- 1. a truncated PNG: inspect names it as a problem and goes on --------------------------------


def test_truncated_png_is_a_problem_in_inspect_not_a_crash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _class_folders(tmp_path / "set", {"a": 2, "b": 2})
    _truncated(root / "a" / "cut.png")
    with pytest.raises(DataError, match="truncated") as info:
        image_info(root / "a" / "cut.png")  # the EXIF look-up reads the cut pixel data
    assert "cut.png" in str(info.value)
    assert _inspect(root, tmp_path) == 0
    out = capsys.readouterr().out
    assert "4 samples, 2 classes" in out and "cut.png" in out and "1 file(s) skipped" in out


# --- 2, 3. empty class folders, and class folders with no images --------------------------------


def test_empty_class_folder_is_dropped_with_a_warning_naming_it(tmp_path: Path) -> None:
    root = _class_folders(tmp_path / "set", {"ants": 2, "bees": 2, "wasps": 0})
    with pytest.warns(DataWarning, match=r"'wasps' has no images \(class dropped\)"):
        data = load_image_folder(root)
    assert data.classes == ["ants", "bees"] and data.class_counts() == {"ants": 2, "bees": 2}
    assert any(p.path.endswith("wasps") for p in data.problems)


def test_a_class_whose_images_all_fail_is_dropped_and_labels_renumbered(tmp_path: Path) -> None:
    root = _class_folders(tmp_path / "set", {"a": 2, "c": 2})
    _truncated(root / "b" / "0.png")
    with pytest.warns(DataWarning, match="class 'b' dropped"):
        data = load_image_folder(root)
    assert data.classes == ["a", "c"] and data.targets.tolist() == [0, 0, 1, 1]


def test_one_class_and_one_empty_folder_is_not_a_classifier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _class_folders(tmp_path / "set", {"only": 3, "empty": 0})
    args = ["train", "--data", str(root), "--model", "cnn_small", "--epochs", "1"]
    with warnings.catch_warnings():
        warnings.simplefilter("always", DataWarning)  # this module ignores them elsewhere
        assert main([*args, "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "needs at least 2 classes; found 1" in err
    assert "warning:" in err and "empty" in err  # the empty class folder is named, on one line


def test_class_folders_without_images_say_what_was_looked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "set"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    (root / "a" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=r"no images found in .*set \(looked for \.png, \.jpg.*notes\.txt"):
        load_image_folder(root)
    assert _inspect(root, tmp_path) == 2
    err = capsys.readouterr().err
    assert "no images found" in err and "unexpected error" not in err


# --- 4. a split that would leave one side empty -------------------------------------------------


def test_split_refuses_to_return_an_empty_held_out_or_training_set() -> None:
    one_each = from_arrays(np.zeros((100, 8, 8), np.uint8), list(range(100)))
    with pytest.raises(DataError, match=r"held-out set empty \(100 samples in 100 classes, 1 per class\)"):
        one_each.split(0.1)
    two_each = from_arrays(np.zeros((4, 8, 8), np.uint8), [0, 0, 1, 1])
    with pytest.raises(DataError, match="nothing to train on"):
        two_each.split(0.9)
    train, held = two_each.split(0.5)
    assert len(train) == 2 and len(held) == 2


def test_a_classifier_validates_every_class_of_three_or_more_even_when_the_fraction_rounds_to_none() -> None:
    """8 images in two folders (4 each) at 0.1 stopped training; a class of 4 among classes of 40 was never
    validated. With at_least_one (the classifier's split) each class of 3+ gives one; a class of 2 gives none."""
    four_each = from_arrays(np.zeros((8, 8, 8), np.uint8), [0] * 4 + [1] * 4)
    train, held = four_each.split(0.1, at_least_one=True)
    assert sorted(held.targets.tolist()) == [0, 1] and len(train) == 6
    uneven = from_arrays(np.zeros((46, 8, 8), np.uint8), [0] * 40 + [1] * 4 + [2] * 2)
    train, held = uneven.split(0.1, at_least_one=True)
    assert sorted(held.targets.tolist()) == [0, 0, 0, 0, 1] and train.class_counts() == {"0": 36, "1": 3, "2": 2}
    with pytest.raises(DataError, match="held-out set empty"):
        four_each.split(0.1)  # without it: the rule as before


# --- 5. sparse, negative, fractional and string labels ------------------------------------------


def test_sparse_integer_labels_are_refused_not_a_million_classes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(3):
        _png(tmp_path / f"{i}.png")
    (tmp_path / "list.csv").write_text("0.png,0\n1.png,5\n2.png,999999\n")
    with pytest.raises(DataError, match=r"sparse: 3 distinct values from 0 to 999999 would make 1,000,000 classes"):
        load_csv(tmp_path / "list.csv")
    assert _inspect(tmp_path / "list.csv", tmp_path) == 2  # used to hang on a 1,000,000-row class table
    assert "list.csv" in capsys.readouterr().err
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 8, 8), np.uint8), y=np.array([0, 1, 1_000_000]))
    with pytest.raises(DataError, match="1,000,001 classes"):
        open_source(tmp_path / "d.npz")


def test_label_gaps_are_kept_as_indices_with_a_warning() -> None:
    with pytest.warns(DataWarning, match=r"no sample has label 10, 11 \(of 0\.\.12\)"):
        targets, names = class_indices([*range(10), 12])
    assert len(names) == 13 and targets.tolist()[-1] == 12


def test_npz_labels_negative_fractional_or_strings(tmp_path: Path) -> None:
    x = np.zeros((3, 8, 8), np.uint8)
    for labels, expected in (([0, -1, 1], r"found -1"), ([0.0, 1.5, 1.0], r"whole class indices, found \[1\.5\]")):
        np.savez(tmp_path / "bad.npz", x=x, y=np.array(labels))
        with pytest.raises(DataError, match=expected) as info:
            load_npz(tmp_path / "bad.npz")
        assert "bad.npz" in str(info.value)
    np.savez(tmp_path / "whole.npz", x=x, y=np.array([[1.0], [0.0], [1.0]]))  # Keras keeps labels as (N, 1)
    np.savez(tmp_path / "none.npz", x=x[:0], y=np.zeros(0, np.int64))
    with pytest.raises(DataError, match="x holds no images"):
        load_npz(tmp_path / "none.npz")
    assert load_npz(tmp_path / "whole.npz").targets.tolist() == [1, 0, 1]
    np.savez(
        tmp_path / "names.npz",
        x_train=x,
        y_train=np.array(["dog", "cat", "eel"]),
        x_test=x[:1],
        y_test=np.array(["eel"]),
    )
    splits = open_source(tmp_path / "names.npz")
    assert splits["train"].classes == splits["test"].classes == ["cat", "dog", "eel"]
    assert splits["train"].targets.tolist() == [1, 0, 2] and splits["test"].targets.tolist() == [2]


def _idx(path: Path, array: np.ndarray) -> None:
    path.write_bytes(bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes())


def test_idx_label_out_of_range(tmp_path: Path) -> None:
    for name, labels, expected in (("mnist", [3, 12], "labels go up to 12 but only 10"), ("other", [0, 200], "sparse")):
        root = tmp_path / name
        root.mkdir()
        _idx(root / "train-images-idx3-ubyte", np.zeros((2, 4, 4), np.uint8))
        _idx(root / "train-labels-idx1-ubyte", np.array(labels, np.uint8))
        with pytest.raises(DataError, match=expected) as info:
            load_mnist(root)
        assert "train-labels-idx1-ubyte" in str(info.value)


# --- 6. float images -----------------------------------------------------------------------------


def test_float_images_nan_refused_unit_scaled_0_255_kept_others_refused(tmp_path: Path) -> None:
    images = np.full((2, 8, 8), 0.5, np.float32)
    for bad, expected in (
        (np.nan, "NaN or infinite"),
        (np.inf, "NaN or infinite"),
        (300.0, r"\[0, 255\]"),
        (-0.1, "found -0.1"),
    ):
        images[0, 0, 0] = bad
        np.savez(tmp_path / "f.npz", x_train=images, y_train=np.array([0, 1]))
        with pytest.raises(DataError, match=expected) as info:
            load_npz(tmp_path / "f.npz")
        assert "x_train/y_train in" in str(info.value) and "f.npz" in str(info.value)
    assert from_arrays(np.full((2, 8, 8), 0.5), [0, 1]).images.unique().tolist() == [128]  # [0, 1]: scaled
    assert from_arrays(np.full((2, 8, 8), 200.0), [0, 1]).images.unique().tolist() == [200]  # [0, 255]: kept


# --- 7. RGB masks in inspect ---------------------------------------------------------------------


def test_inspect_reads_grey_masks_saved_as_rgb_and_names_coloured_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images, masks = tmp_path / "img", tmp_path / "mask"
    masks.mkdir()
    for i in range(3):
        _png(images / f"{i}.png")
        mask = np.zeros((10, 12, 3), np.uint8)
        mask[:5] = 255
        Image.fromarray(mask).save(masks / f"{i}.png")
    assert read_mask(masks / "0.png").sum() == 60
    assert _inspect(images, tmp_path, "--masks", str(masks)) == 0
    assert "3 samples, 2 classes" in capsys.readouterr().out
    for i in range(3):
        colour = np.zeros((10, 12, 3), np.uint8)
        colour[:5, :, 0] = 255  # red: a colour-coded class
        Image.fromarray(colour).save(masks / f"{i}.png")
    with pytest.raises(DataError, match=r"none of the 3 image/mask pairs could be used \(first: colour mask"):
        load_segmentation(images, masks)
    assert _inspect(images, tmp_path, "--masks", str(masks)) == 2
    assert "colour mask" in capsys.readouterr().err


# --- weak cases ----------------------------------------------------------------------------------


def test_a_single_image_file_is_not_a_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DataError, match=r"single image, not a dataset.*folder of class folders"):
        open_source(_png(tmp_path / "one.png"))
    assert _inspect(tmp_path / "one.png", tmp_path) == 2
    assert "one.png" in capsys.readouterr().err


def test_images_in_sub_folders_of_class_folders_are_found(tmp_path: Path) -> None:
    _png(tmp_path / "set" / "cat" / "indoor" / "0.png")
    _png(tmp_path / "set" / "dog" / "park" / "0.png")
    data = open_source(tmp_path / "set")["all"]
    assert data.classes == ["cat", "dog"] and data.targets.tolist() == [0, 1]
    _class_folders(tmp_path / "splits" / "train", {"cat": 1, "dog": 1})
    _class_folders(tmp_path / "splits" / "val", {"cat": 1, "dog": 1})
    (tmp_path / "splits" / "train" / "eel").mkdir()  # empty in every split: dropped
    (tmp_path / "splits" / "val" / "eel").mkdir()
    splits = open_source(tmp_path / "splits")  # split folders are still read as splits
    assert sorted(splits) == ["train", "val"] and splits["train"].classes == ["cat", "dog"]
    assert "'eel' has no images in any split" in splits["train"].problems[0].message


def test_misspelled_named_dataset_suggests_the_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="did you mean 'fashion-mnist'"):
        resolve_source("fashion_mnist")
    (tmp_path / "fashion_mnist").mkdir()  # a real folder of that name is read as a path
    assert resolve_source("fashion_mnist") == (Path("fashion_mnist"), None)
    with pytest.raises(DataError, match=r"no folder named 'cifar10' here, and no dataset cnnlab knows by that name"):
        resolve_source("cifar10")  # it said "no such file or folder"; now the names it knows and --data-dir
    assert resolve_source("photos/cats") == (Path("photos/cats"), None)  # a path: the reader says it is missing


@pytest.mark.parametrize("size", [0, -5, 1, 100_000, (32, 0), 2.5])
def test_image_size_out_of_bounds_is_a_config_error(size: object) -> None:
    with pytest.raises(ConfigError, match="img_size must be between 8 and 4096"):
        check_image_size(size)  # type: ignore[arg-type]


def test_loaders_refuse_impossible_sizes_before_decoding(tmp_path: Path) -> None:
    root = _class_folders(tmp_path / "set", {"a": 1, "b": 1})
    assert check_image_size(64) == (64, 64) and check_image_size((8, 4096)) == (8, 4096)
    for size in (0, -5, 100_000):
        with pytest.raises(ConfigError, match="img_size must be between 1 and 4096"):
            open_source(root, size=size)
    assert open_source(root, size=4)["all"].images.shape == (2, 3, 4, 4)  # a thumbnail still decodes


def test_kernels_on_a_bomb_or_a_truncated_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DataError, match="decompression bomb"):
        load_grayscale(_bomb(tmp_path / "bomb.png"))
    with pytest.raises(DataError, match="corrupt or truncated"):
        load_grayscale(_truncated(tmp_path / "cut.png"))
    for name in ("bomb.png", "cut.png"):
        assert main(["kernels", str(tmp_path / name), "--kernel", "sobel-x"]) == 2
        err = capsys.readouterr().err
        assert name in err and "unexpected error" not in err


def test_data_warnings_can_be_shown_as_one_line_each(tmp_path: Path) -> None:
    root = _class_folders(tmp_path / "set", {"a": 2, "b": 2})
    (root / "a" / "empty.png").write_bytes(b"")
    lines: list[str] = []
    with pytest.warns(UserWarning, match="something else"), data_warnings_as_lines(lines.append):
        load_image_folder(root)
        warnings.warn("something else", UserWarning, stacklevel=1)  # not ours: passed on as before
    assert len(lines) == 1 and "\n" not in lines[0]
    assert lines[0].startswith("skipped: image file is empty (0 bytes)") and "empty.png" in lines[0]
