"""Clip folders (npy and frame folders) and 3-D volumes (npy, NIfTI, tissue labels, leak-free patches)."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.data.cache import DataWarning
from cnnlab.data.clips import fit_clip, is_clip_source, load_clip_folder, read_clip, save_clip_folder
from cnnlab.data.volumes import (
    check_same_grid,
    is_volume_source,
    load_volume_folder,
    random_patches,
    read_volume,
    slab_split,
    tissue_labels,
)


def _ramp(frames: int, height: int, width: int) -> np.ndarray:
    """uint8 clip whose frame t is filled with 10 * t + 5: order and cropping can be read back."""
    return np.broadcast_to((np.arange(frames) * 10 + 5).astype(np.uint8)[:, None, None], (frames, height, width)).copy()


@pytest.fixture
def clip_root(tmp_path: Path) -> Path:
    root = tmp_path / "clips"
    (root / "jump").mkdir(parents=True)
    (root / "walk").mkdir()
    np.save(root / "jump" / "a.npy", _ramp(6, 8, 8))
    np.save(root / "jump" / "b.npy", _ramp(4, 8, 8))  # short: last frame repeated
    np.save(root / "jump" / "c.npy", _ramp(8, 8, 8))  # long: centre-cropped
    frames = root / "walk" / "clip1"
    frames.mkdir()
    for t in (10, 2, 1, 3, 4, 5):  # natural order: 1, 2, 3, 4, 5, 10
        Image.fromarray(np.full((8, 8), t * 20, dtype=np.uint8)).save(frames / f"{t}.png")
    np.save(root / "walk" / "d.npy", np.full((6, 16, 16), 0.25, dtype=np.float32))  # float, larger frames
    (root / "walk" / "broken.npy").write_bytes(b"not an array")
    return root


def test_clip_folder_fits_lengths_and_sizes_and_skips_broken_files(clip_root: Path) -> None:
    with pytest.warns(DataWarning, match=r"broken\.npy"):
        data = load_clip_folder(clip_root)
    assert data.kind == "clip" and data.classes == ["jump", "walk"]
    assert tuple(data.x.shape) == (5, 1, 6, 8, 8) and data.x.dtype == torch.float32
    assert data.meta["chosen"] == {"frames": 6, "size": (8, 8)}
    assert [s["path"] for s in data.meta["skipped"]] == [str(clip_root / "walk" / "broken.npy")]
    assert data.names == ["jump/a.npy", "jump/b.npy", "jump/c.npy", "walk/clip1", "walk/d.npy"]
    assert data.y.tolist() == [0, 0, 0, 1, 1]
    per_frame = data.x[:, 0, :, 0, 0] * 255  # every frame is one value
    expected = {
        "jump/a.npy": [5, 15, 25, 35, 45, 55],
        "jump/b.npy": [5, 15, 25, 35, 35, 35],  # padded by repeating the last frame
        "jump/c.npy": [15, 25, 35, 45, 55, 65],  # 8 frames, centre 6 of them
        "walk/clip1": [20, 40, 60, 80, 100, 200],  # frames in natural order of their names
        "walk/d.npy": [63.75] * 6,  # float kept (0.25), resized without changing a flat frame
    }
    for name, row in zip(data.names, per_frame, strict=True):
        np.testing.assert_allclose(row.numpy(), expected[name], atol=1e-3)
    assert torch.allclose(data.x[4], torch.full((1, 6, 8, 8), 0.25))


def test_clip_folder_strict_names_the_broken_file(clip_root: Path) -> None:
    with pytest.raises(DataError, match=r"broken\.npy"):
        load_clip_folder(clip_root, strict=True)


def test_clip_folder_with_given_frames_and_size_and_colour(tmp_path: Path) -> None:
    colour = np.zeros((3, 6, 6, 3), dtype=np.uint8)
    colour[..., 0] = 255  # red
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    np.save(tmp_path / "a" / "red.npy", colour)
    np.save(tmp_path / "b" / "grey.npy", np.full((5, 6, 6), 51, dtype=np.uint8))
    data = load_clip_folder(tmp_path, frames=4, size=3)
    assert tuple(data.x.shape) == (2, 3, 4, 3, 3) and data.meta["chosen"] == {"frames": 4, "size": (3, 3)}
    assert torch.allclose(data.x[0, 0], torch.ones(4, 3, 3)) and float(data.x[0, 1:].abs().max()) == 0
    assert torch.allclose(data.x[1], torch.full((3, 4, 3, 3), 0.2))  # grey repeated into three channels


def test_resize_matches_pillow_bilinear() -> None:
    yy, xx = np.mgrid[0:16, 0:16]
    frame = (np.sin(xx / 3.0) * 0.4 + 0.5 + yy / 40).astype(np.float32)
    clip = torch.from_numpy(frame)[None, None].repeat(1, 2, 1, 1)
    for side in (8, 24):
        reference = np.asarray(Image.fromarray(frame, mode="F").resize((side, side), Image.BILINEAR))
        np.testing.assert_allclose(fit_clip(clip, size=side)[0, 1].numpy(), reference, atol=1e-5)


def test_read_clip_matches_the_folder_and_detection(clip_root: Path, tmp_path: Path) -> None:
    with pytest.warns(DataWarning):
        data = load_clip_folder(clip_root)
    one = read_clip(clip_root / "walk" / "clip1", frames=6, size=8)
    assert torch.equal(one, data.x[3])
    assert is_clip_source(clip_root)
    images = tmp_path / "images"
    (images / "cat").mkdir(parents=True)
    Image.new("L", (4, 4)).save(images / "cat" / "1.png")
    assert not is_clip_source(images) and not is_clip_source(clip_root / "jump" / "a.npy")


def test_save_clip_folder_round_trip(tmp_path: Path) -> None:
    clips = np.random.default_rng(0).integers(0, 256, (5, 3, 4, 4), dtype=np.uint8)
    save_clip_folder(tmp_path, clips, [0, 1, 0, 1, 1], ["x", "y"])
    data = load_clip_folder(tmp_path)
    assert data.y.tolist() == [0, 0, 1, 1, 1]
    order = [0, 2, 1, 3, 4]  # class x first, then y
    np.testing.assert_allclose(data.x[:, 0].numpy() * 255, clips[order].astype(np.float32), atol=1e-4)


# ---- volumes


@pytest.fixture
def nib() -> ModuleType:
    """nibabel (a dev dependency), only for the tests that write NIfTI files."""
    return pytest.importorskip("nibabel")


def _nifti(nib: ModuleType, path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), path)
    return path


def test_npy_volume_round_trip(tmp_path: Path) -> None:
    volume = np.random.default_rng(1).normal(size=(3, 4, 5)).astype(np.float32)
    np.save(tmp_path / "v.npy", volume)
    read, info = read_volume(tmp_path / "v.npy")
    np.testing.assert_array_equal(read, volume)
    assert info["shape"] == (3, 4, 5) and info["orientation"] is None


def test_nifti_orientations_and_shapes_must_match(tmp_path: Path, nib: ModuleType) -> None:
    data = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    ras = _nifti(nib, tmp_path / "t1.nii.gz", data)
    las = _nifti(nib, tmp_path / "gm.nii", data, np.diag([-1.0, 1.0, 1.0, 1.0]))
    small = _nifti(nib, tmp_path / "wm.nii.gz", data[:, :, :3])
    volume, info = read_volume(ras)
    np.testing.assert_array_equal(volume, data.astype(np.float32))
    assert info["orientation"] == ("R", "A", "S") and info["zooms"] == (1.0, 1.0, 1.0) and info["dtype"] == "uint8"
    infos = {p: read_volume(p)[1] for p in (ras, las, small)}
    assert infos[las]["orientation"] == ("L", "A", "S")
    check_same_grid([ras, ras], [infos[ras], infos[ras]])
    with pytest.raises(DataError) as error:
        check_same_grid([ras, las], [infos[ras], infos[las]])
    message = str(error.value)
    assert all(text in message for text in ("t1.nii.gz", "gm.nii", "RAS", "LAS", "as_closest_canonical"))
    with pytest.raises(DataError, match=r"t1.nii.gz is \(2, 3, 4\).*wm.nii.gz is \(2, 3, 3\)"):
        check_same_grid([ras, small], [infos[ras], infos[small]])
    canonical = nib.as_closest_canonical(nib.load(las))  # the suggested fix works
    assert nib.aff2axcodes(canonical.affine) == ("R", "A", "S")


def test_corrupt_nifti(tmp_path: Path, nib: ModuleType) -> None:
    good = _nifti(nib, tmp_path / "good.nii.gz", np.random.default_rng(0).random((8, 8, 8)).astype(np.float32))
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataError, match=r"broken\.nii\.gz"):
        read_volume(broken)
    (tmp_path / "junk.nii").write_bytes(b"junk" * 10)
    with pytest.raises(DataError, match=r"junk\.nii"):
        read_volume(tmp_path / "junk.nii")
    (tmp_path / "junk.nii.gz").write_bytes(gzip.compress(b"junk" * 10))
    with pytest.raises(DataError, match=r"junk\.nii\.gz"):
        read_volume(tmp_path / "junk.nii.gz")


def test_nifti_without_nibabel_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "scan.nii.gz").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "nibabel", None)  # import nibabel now raises ImportError
    with pytest.raises(ConfigError, match="pip install nibabel"):
        read_volume(tmp_path / "scan.nii.gz")


def test_tissue_labels_match_a_hand_computed_argmax() -> None:
    rng = np.random.default_rng(2)
    gm = rng.random((5, 5, 4)).astype(np.float32)
    wm = (rng.random((5, 5, 4)) * (1 - gm)).astype(np.float32)
    wm[0, 0, :2] = 0.9  # gm + wm above 1: other clipped to 0
    for threshold in (0.0, 0.5):
        expected = np.zeros(gm.shape, dtype=np.int64)
        for index in np.ndindex(gm.shape):
            g, w = float(gm[index]), float(wm[index])
            scores = [max(0.0, 1 - g - w), g, w]
            best = scores.index(max(scores))
            expected[index] = best if scores[best] >= threshold else 0
        got = tissue_labels(gm, wm, threshold=threshold)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, expected)
    as_bytes = (np.array([[[0, 153, 64, 100]]], dtype=np.uint8), np.array([[[0, 51, 166, 100]]], dtype=np.uint8))
    assert tissue_labels(*as_bytes).tolist() == [[[0, 1, 2, 0]]]
    assert tissue_labels(*(a.astype(np.float32) for a in as_bytes), threshold=0).tolist() == [[[0, 1, 2, 1]]]
    with pytest.raises(DataError, match="white-matter map"):
        tissue_labels(gm, wm[:, :, :2])


@pytest.mark.parametrize("axis", [0, 2])
def test_random_patches_never_touch_held_out_slices(axis: int) -> None:
    shape = [14, 12, 20]
    depth = shape[axis]
    split = slab_split(depth, held_fraction=0.3)
    assert split.train[0].stop == split.held.start and split.held.stop == split.train[1].start
    assert len(split.held) == round(depth * 0.3) and split.train[0].start == 0 and split.train[1].stop == depth
    volume = np.random.default_rng(3).random((2, *shape)).astype(np.float32)
    labels = np.zeros(shape, dtype=np.int64)
    labels[3:9, 4:9, 2:18] = 1  # a foreground blob crossing the held-out slab
    held = [slice(None)] * 3
    held[axis] = slice(split.held.start, split.held.stop)
    volume[(slice(None), *held)] = -1.0
    labels[tuple(held)] = 7
    size = 3
    x, y, corners = random_patches(volume, labels, size, 120, torch.Generator().manual_seed(0), split.train, axis=axis)
    assert tuple(x.shape) == (120, 2, size, size, size) and tuple(y.shape) == (120, size, size, size)
    assert float(x.min()) >= 0 and not bool((y == 7).any())  # nothing from the held-out block
    start = corners[:, axis]
    inside = ((start + size <= split.train[0].stop) | (start >= split.train[1].start)).all()
    assert bool(inside)
    for i in (0, 50, 119):  # patches are the volume at their corners
        d, h, w = corners[i].tolist()
        np.testing.assert_array_equal(x[i].numpy(), volume[:, d : d + size, h : h + size, w : w + size])
    assert int((y[:, 1, 1, 1] == 1).sum()) >= 80  # 2/3 of the patches centred on the foreground
    again = random_patches(volume, labels, size, 120, torch.Generator().manual_seed(0), split.train, axis=axis)
    assert torch.equal(again[2], corners)
    with pytest.raises(ConfigError, match="no place"):
        random_patches(volume, labels, depth, 4, torch.Generator(), split.train, axis=axis)


def test_load_volume_folder(tmp_path: Path, nib: ModuleType) -> None:
    for name in ("healthy", "sick"):
        (tmp_path / name).mkdir()
    np.save(tmp_path / "healthy" / "1.npy", np.full((6, 6, 6), 2.0, dtype=np.float32))
    _nifti(nib, tmp_path / "healthy" / "2.nii.gz", np.full((6, 6, 6), 3.0, dtype=np.float32))
    _nifti(nib, tmp_path / "sick" / "3.nii.gz", np.full((4, 4, 4), 5.0, dtype=np.float32))
    (tmp_path / "sick" / "4.npy").write_bytes(b"broken")
    with pytest.warns(DataWarning, match="4.npy"):
        data = load_volume_folder(tmp_path)
    assert data.kind == "volume" and tuple(data.x.shape) == (3, 1, 6, 6, 6) and data.y.tolist() == [0, 0, 1]
    assert data.meta["chosen"] == {"size": (6, 6, 6)} and data.meta["orientation"] == ("R", "A", "S")
    assert torch.allclose(data.x[2], torch.full((1, 6, 6, 6), 5.0))  # resized, a flat volume stays flat
    assert is_volume_source(tmp_path) and not is_volume_source(tmp_path / "sick")
    (tmp_path / "sick" / "4.npy").unlink()
    assert tuple(load_volume_folder(tmp_path, size=3).x.shape) == (3, 1, 3, 3, 3)
    _nifti(nib, tmp_path / "sick" / "5.nii.gz", np.ones((4, 4, 4), dtype=np.float32), np.diag([1.0, -1.0, 1.0, 1.0]))
    with pytest.raises(DataError, match=r"5\.nii\.gz"):
        load_volume_folder(tmp_path)


@pytest.mark.data
def test_mni152_tissue_labels(shared_data: Path, nib: ModuleType) -> None:
    folder = shared_data / "mni152-volumes"
    paths = [folder / f"mni_icbm152_{n}_tal_nlin_sym_09a_converted.nii.gz" for n in ("t1", "gm", "wm")]
    (t1, t1_info), (gm, gm_info), (wm, wm_info) = (read_volume(p) for p in paths)
    assert t1.shape == gm.shape == wm.shape == (197, 233, 189)
    check_same_grid(paths, [t1_info, gm_info, wm_info])
    assert t1_info["orientation"] == ("R", "A", "S") and gm_info["dtype"] == "uint8"
    labels = tissue_labels(gm, wm)
    fractions = np.bincount(labels.ravel(), minlength=3) / labels.size
    assert fractions.tolist() == pytest.approx([0.8, 0.125, 0.075], abs=0.05)
    assert 0.5 < fractions[1] / (fractions[1] + fractions[2]) < 0.7  # adult brains hold somewhat more GM than WM
    means = [float(t1[labels == k].mean()) for k in range(3)]
    assert means[0] < means[1] < means[2]  # T1 contrast: background/CSF dark, grey matter, white matter brightest
