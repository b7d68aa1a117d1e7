"""Sources, decoding and bad input, on small synthetic files made in tmp_path."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.core.errors import DataError
from cnnlab.data.cache import DataWarning, decode_images
from cnnlab.data.datasets import (
    from_arrays,
    load_csv,
    load_image_folder,
    load_mnist,
    load_npz,
    load_segmentation,
    load_split_folders,
    open_source,
    stratified_split,
)
from cnnlab.data.images import image_info, read_image, read_mask


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width x height (a decompression bomb needs no real pixels to be refused)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")
    )


def _jpeg(path: Path, size: tuple[int, int] = (16, 12), colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    Image.new("RGB", size, colour).save(path, quality=95)
    return path


# --- single files: modes and orientation ---------------------------------------------------------


def test_exif_orientation_is_honoured(tmp_path: Path) -> None:
    stored = np.zeros((8, 16, 3), np.uint8)
    stored[:, :8] = (255, 0, 0)  # left half red
    stored[:, 8:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "rotated.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=100)
    image = read_image(path)
    assert image.shape == (16, 8, 3)  # width and height swapped
    assert image_info(path)[0] == (8, 16)
    # Turning clockwise brings the stored left (red) side to the top.
    assert image[:6, :, 0].min() > 200 and image[:6, :, 2].max() < 60
    assert image[-6:, :, 2].min() > 200 and image[-6:, :, 0].max() < 60


def test_sixteen_bit_palette_and_rgba_become_8_bit(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 65535, 257 * 128]], np.uint16)).save(tmp_path / "deep.png")
    assert read_image(tmp_path / "deep.png", channels=1)[..., 0].tolist() == [[0, 255, 128]]

    palette = Image.new("P", (2, 1))
    palette.putpalette([10, 20, 30, 200, 100, 0] + [0] * 762)
    palette.putdata([0, 1])
    palette.save(tmp_path / "palette.png")
    assert read_image(tmp_path / "palette.png").tolist() == [[[10, 20, 30], [200, 100, 0]]]

    rgba = Image.new("RGBA", (2, 1))
    rgba.putdata([(255, 0, 0, 0), (0, 0, 255, 255)])  # transparent red, opaque blue
    rgba.save(tmp_path / "alpha.png")
    assert read_image(tmp_path / "alpha.png").tolist() == [[[255, 255, 255], [0, 0, 255]]]  # on white
    assert read_image(tmp_path / "alpha.png", channels=1)[0, 1, 0] == round(0.299 * 0 + 0.587 * 0 + 0.114 * 255)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".gif", ".tiff", ".webp", ".jpg", ".pgm", ".ppm"])
def test_every_listed_format_decodes(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"x{suffix}"
    Image.new("RGB", (6, 4), (0, 255, 0)).save(path, **({"lossless": True} if suffix == ".webp" else {}))
    image = read_image(path)
    assert image.shape == (4, 6, 3) and abs(int(image[2, 3, 1]) - 255) <= 2


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("zero.jpg", b"", r"empty \(0 bytes\)"),
        ("text.png", b"hello, I am not an image", "not an image"),
        ("truncated.jpg", None, "truncated"),
    ],
)
def test_bad_files_name_the_path(tmp_path: Path, name: str, content: bytes | None, expected: str) -> None:
    path = tmp_path / name
    if content is None:
        full = _jpeg(tmp_path / "full.jpg", (64, 64)).read_bytes()
        content = full[: len(full) // 2]
    path.write_bytes(content)
    with pytest.raises(DataError, match=expected) as info:
        read_image(path)
    assert str(path) in str(info.value) and "Fix:" in str(info.value)


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    _png_header_only(tmp_path / "bomb.png", 30_000, 30_000)  # 900 megapixels, a few bytes on disk
    with pytest.raises(DataError, match="decompression bomb") as info:
        read_image(tmp_path / "bomb.png")
    assert "bomb.png" in str(info.value)
    Image.new("L", (100, 100)).save(tmp_path / "big.png")
    with pytest.raises(DataError, match="10,000 pixels > 5,000"):
        read_image(tmp_path / "big.png", max_pixels=5_000)


# --- masks -----------------------------------------------------------------------------------------


def test_masks_0_255_and_0_1_and_palette_indices(tmp_path: Path) -> None:
    values = np.array([[0, 255], [255, 0]], np.uint8)
    Image.fromarray(values).save(tmp_path / "a.png")
    Image.fromarray(values // 255).save(tmp_path / "b.png")
    assert read_mask(tmp_path / "a.png").tolist() == read_mask(tmp_path / "b.png").tolist() == [[0, 1], [1, 0]]
    palette = Image.fromarray(np.array([[0, 1, 2]], np.uint8), "P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    palette.save(tmp_path / "p.png")
    assert read_mask(tmp_path / "p.png", num_classes=3).tolist() == [[0, 1, 2]]


def test_mask_with_a_third_value_names_file_and_values(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 128, 255]], np.uint8)).save(tmp_path / "odd.png")
    with pytest.raises(DataError, match=r"unexpected values \[0, 128, 255\]") as info:
        read_mask(tmp_path / "odd.png")
    assert "odd.png" in str(info.value)


def _pairs(tmp_path: Path) -> tuple[Path, Path]:
    images, masks = tmp_path / "image", tmp_path / "label"
    images.mkdir()
    masks.mkdir()
    for i in range(3):
        Image.fromarray(np.full((6, 8), 40 * i, np.uint8)).save(images / f"{i}.png")
        mask = np.zeros((6, 8), np.uint8)
        mask[:, i:] = 255
        Image.fromarray(mask).save(masks / f"{i}.png")
    return images, masks


def test_segmentation_pairs_by_stem(tmp_path: Path) -> None:
    images, masks = _pairs(tmp_path)
    data = load_segmentation(images, masks)
    assert data.images.shape == (3, 1, 6, 8) and data.targets.shape == (3, 6, 8)
    assert data.targets[2, 0].tolist() == [0, 0, 1, 1, 1, 1, 1, 1]
    assert data.is_segmentation and data.classes == ["background", "foreground"]
    resized = load_segmentation(images, masks, size=(3, 4))
    assert resized.images.shape == (3, 1, 3, 4) and set(resized.targets.unique().tolist()) == {0, 1}


def test_segmentation_problems_are_skipped_or_fatal(tmp_path: Path) -> None:
    images, masks = _pairs(tmp_path)
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(masks / "1.png")  # size mismatch
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(images / "9.png")  # no mask
    with pytest.warns(DataWarning):
        data = load_segmentation(images, masks)
    assert len(data) == 2 and len(data.problems) == 2
    assert any("8x6 but its mask is 5x5" in p.message and "1.png" in p.path for p in data.problems)
    with pytest.raises(DataError, match="no mask"):
        load_segmentation(images, masks, strict=True)
    Image.fromarray(np.array([[0, 7]], np.uint8)).resize((8, 6)).save(masks / "0.png")
    with pytest.raises(DataError, match="unexpected values") as info, pytest.warns(DataWarning):
        load_segmentation(images, masks)  # always fatal: the labels themselves are wrong
    assert str(masks / "0.png") in str(info.value)


# --- folders, CSV, arrays ------------------------------------------------------------------------


def _class_folders(root: Path) -> Path:
    for name, colour in (("ants", (200, 0, 0)), ("bees", (0, 0, 200))):
        (root / name).mkdir(parents=True)
        for i in range(3):
            _jpeg(root / name / f"{i}.jpg", (16 + i, 12), colour)
    return root


def test_image_folder_counts_labels_and_sizes(tmp_path: Path) -> None:
    root = _class_folders(tmp_path / "set")
    with pytest.raises(DataError, match="differ in size"):
        load_image_folder(root)
    data = load_image_folder(root, size=(8, 10))
    assert data.images.shape == (6, 3, 8, 10) and data.classes == ["ants", "bees"]
    assert data.targets.tolist() == [0, 0, 0, 1, 1, 1] and data.problems == []
    assert data.images[0, 0].float().mean() > 150 and data.images[-1, 2].float().mean() > 150


def test_open_source_fits_other_aspects_as_asked(tmp_path: Path) -> None:
    root = tmp_path / "set"
    for name in ("wide", "tall"):
        (root / name).mkdir(parents=True)
        Image.new("RGB", (40, 20) if name == "wide" else (20, 40), (250, 250, 250)).save(root / name / "0.png")
    padded = open_source(root, size=20, fit="pad")["all"].images  # (2, 3, 20, 20): tall, wide
    cropped = open_source(root, size=20, fit="crop")["all"].images
    stretched = open_source(root, size=20)["all"].images
    assert padded[1, :, 0].max() == 0 and padded[1, :, 10].min() > 240  # wide: black bars above and below
    assert padded[0, :, :, 0].max() == 0 and padded[0, :, :, 10].min() > 240  # tall: bars left and right
    assert cropped.min() > 240 and stretched.min() > 240  # both fill the square


def test_image_folder_skips_bad_files_with_warnings(tmp_path: Path) -> None:
    root = _class_folders(tmp_path / "set")
    (root / "ants" / "zero.jpg").write_bytes(b"")
    (root / "ants" / "notes.txt").write_text("not an image")
    (root / "bees" / "fake.png").write_bytes(b"GIF89a but not really")
    (root / "wasps").mkdir()
    with pytest.warns(DataWarning) as caught:
        data = load_image_folder(root, size=8)
    assert len(data) == 6 and data.classes == ["ants", "bees"]  # the empty 'wasps' folder is dropped, said once
    assert data.class_counts() == {"ants": 3, "bees": 3}
    messages = " ".join(f"{p.path}: {p.message}" for p in data.problems)
    assert len(data.problems) == 4 == len(caught)
    for needle in ("zero.jpg", "notes.txt", "fake.png", "wasps"):
        assert needle in messages
    with pytest.raises(DataError, match=r"zero\.jpg|notes\.txt"):
        load_image_folder(root, size=8, strict=True)


def test_grayscale_folder_gets_one_channel(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.new("L", (4, 4), 77).save(tmp_path / name / "x.png")
    data = load_image_folder(tmp_path)
    assert data.images.shape == (2, 1, 4, 4) and data.images.unique().tolist() == [77]


def test_split_folders_share_the_class_order(tmp_path: Path) -> None:
    _class_folders(tmp_path / "train")
    (tmp_path / "val" / "bees").mkdir(parents=True)
    _jpeg(tmp_path / "val" / "bees" / "1.jpg")
    with pytest.warns(DataWarning, match="'ants' has no images"):
        splits = load_split_folders(tmp_path, size=8)
    assert sorted(splits) == ["train", "val"]
    assert splits["val"].classes == ["ants", "bees"] and splits["val"].targets.tolist() == [1]
    assert splits["val"].problems[0].message.startswith("class folder 'ants' has no images")


def test_csv_of_path_label(tmp_path: Path) -> None:
    root = _class_folders(tmp_path)
    rows = ["path,label", "ants/0.jpg,ant", "bees/1.jpg,bee", "ants/2.jpg,ant", "missing.jpg,bee"]
    (root / "list.csv").write_text("\n".join(rows) + "\n")
    with pytest.warns(DataWarning, match="missing.jpg"):
        data = load_csv(root / "list.csv", size=8)
    assert data.classes == ["ant", "bee"] and data.targets.tolist() == [0, 1, 0]
    assert data.paths[1].endswith("bees/1.jpg")
    (root / "numbers.csv").write_text("ants/0.jpg,2\nbees/0.jpg,0\n")
    assert load_csv(root / "numbers.csv", size=8).classes == ["0", "1", "2"]


def test_arrays_and_npz(tmp_path: Path) -> None:
    x = np.random.default_rng(0).integers(0, 256, (5, 7, 9, 3), dtype=np.uint8)
    data = from_arrays(x, [0, 1, 0, 1, 1])
    assert data.images.shape == (5, 3, 7, 9) and torch.equal(data.images[2].permute(1, 2, 0), torch.from_numpy(x[2]))
    floats = from_arrays(np.full((2, 4, 4), 0.5), [0, 0])
    assert floats.images.unique().tolist() == [128]
    np.savez(tmp_path / "keras.npz", x_train=x, y_train=np.arange(5) % 2, x_test=x[:2], y_test=np.array([1, 0]))
    splits = open_source(tmp_path / "keras.npz")
    assert {k: len(v) for k, v in splits.items()} == {"train": 5, "test": 2}
    with pytest.raises(DataError, match="no images/labels for split 'valid'"):
        load_npz(tmp_path / "keras.npz", "valid")


def test_idx_folder_raw_and_gzip(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(
        bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 3, 3) + images.tobytes()
    )
    labels = bytes([0, 0, 8, 1]) + struct.pack(">I", 2) + bytes([4, 1])
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))
    data = load_mnist(tmp_path)
    assert data.images.shape == (2, 1, 3, 3) and data.targets.tolist() == [4, 1]
    assert torch.equal(data.images[1, 0], torch.from_numpy(images[1]))
    with pytest.raises(DataError, match="no t10k images IDX file"):
        load_mnist(tmp_path, "test")


# --- splits and the decode-once cache ------------------------------------------------------------


def test_stratified_split_is_seeded_complete_and_proportional() -> None:
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    rest, held = stratified_split(labels, 0.2, seed=7)
    assert torch.bincount(labels[held]).tolist() == [10, 6, 4]
    assert sorted(torch.cat([rest, held]).tolist()) == list(range(100))
    again, _ = stratified_split(labels, 0.2, seed=7)
    other, _ = stratified_split(labels, 0.2, seed=8)
    assert torch.equal(rest, again) and not torch.equal(rest, other)


def test_cache_is_reused_and_keyed_by_content_and_settings(tmp_path: Path) -> None:
    root = _class_folders(tmp_path / "set")
    files = sorted(root.rglob("*.jpg"))
    cache = tmp_path / "cache"
    first = decode_images(files, size=(8, 8), cache_dir=cache)
    second = decode_images(files, size=(8, 8), cache_dir=cache)
    assert not first.from_cache and second.from_cache and isinstance(second.pixels, np.memmap)
    assert np.array_equal(first.pixels, second.pixels)
    assert not decode_images(files, size=(8, 9), cache_dir=cache).from_cache  # other settings
    _jpeg(files[0], (16, 12), (0, 255, 0))
    changed = decode_images(files, size=(8, 8), cache_dir=cache)
    assert not changed.from_cache and changed.pixels[0, 4, 4, 1] > 200  # the edit is seen
    assert len(list(cache.glob("*.npy"))) == len(list(cache.glob("*.json"))) == 3
    data = load_image_folder(root, size=(8, 8), cache_dir=cache)
    assert torch.equal(data.images, torch.from_numpy(np.asarray(changed.pixels)).permute(0, 3, 1, 2))


def test_cached_problems_still_count_and_strict_still_fails(tmp_path: Path) -> None:
    root = _class_folders(tmp_path / "set")
    (root / "ants" / "zero.jpg").write_bytes(b"")
    with pytest.warns(DataWarning):
        load_image_folder(root, size=8, cache_dir=tmp_path / "c")
    with pytest.warns(DataWarning, match="zero.jpg"):
        again = load_image_folder(root, size=8, cache_dir=tmp_path / "c")
    assert len(again) == 6 and len(again.problems) == 1
    with pytest.raises(DataError, match=r"zero\.jpg"):
        decode_images(sorted(root.rglob("*.jpg")), size=(8, 8), strict=True, cache_dir=tmp_path / "c")
