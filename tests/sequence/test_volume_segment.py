"""Volume segmentation with a 3D U-Net on patches: Dice and loss against independent computations, no held-out
voxel in training patches, tiled inference equal to one whole pass, a small end-to-end run, the MNI152 files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import f1_score
from torch import nn

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.tasks.sequence.volume_segment import (
    HELDOUT_FIGURE,
    VolumeSegmentConfig,
    confusion_matrix,
    dice_ce_loss,
    dice_scores,
    load_tissue_volume,
    segment_volume,
    soft_dice_loss,
    train_volume_segmentation,
    training_source,
)


def test_dice_from_confusion_is_f1_per_class() -> None:
    rng = np.random.default_rng(0)
    target = rng.integers(0, 3, (2, 5, 6, 7))
    pred = np.where(rng.random(target.shape) < 0.6, target, rng.integers(0, 3, target.shape))
    counts = confusion_matrix(torch.from_numpy(pred), torch.from_numpy(target), 4)  # class 3: never seen
    expected = sk_confusion(target.ravel(), pred.ravel(), labels=[0, 1, 2, 3])
    np.testing.assert_array_equal(counts.numpy(), expected)
    f1 = f1_score(target.ravel(), pred.ravel(), labels=[0, 1, 2], average=None)
    dice = dice_scores(counts).numpy()
    np.testing.assert_allclose(dice[:3], f1, rtol=1e-12)
    assert np.isnan(dice[3])


def test_soft_dice_and_cross_entropy_match_a_numpy_computation() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, (2, 3, 4, 5, 3))
    target = rng.integers(0, 3, (2, 4, 5, 3))
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.stack([target == k for k in range(3)], 1).astype(float)
    dice = [(2 * (p[:, k] * onehot[:, k]).sum() + 1) / (p[:, k].sum() + onehot[:, k].sum() + 1) for k in range(3)]
    cross_entropy = -np.log((p * onehot).sum(1)).mean()
    t_logits, t_target = torch.from_numpy(logits), torch.from_numpy(target)
    assert float(soft_dice_loss(t_logits, t_target)) == pytest.approx(1 - np.mean(dice), rel=1e-5)
    assert float(dice_ce_loss(t_logits, t_target)) == pytest.approx(cross_entropy + 1 - np.mean(dice), rel=1e-5)


@pytest.mark.parametrize("axis", [2, 0])
def test_training_patches_never_hold_a_held_out_voxel(axis: int) -> None:
    shape = [16, 14, 16]
    shape[axis] = 40
    t1 = np.random.default_rng(0).random(shape).astype(np.float32)
    labels = (t1 > 0.5).astype(np.int64)
    config = VolumeSegmentConfig(patch=8, depth=1, patches_per_epoch=24, batch_size=8, axis=axis)
    source, split = training_source(t1, labels, config)
    marked = t1.copy()
    index = [slice(None)] * 3
    index[axis] = slice(split.held.start, split.held.stop)
    marked[tuple(index)] = 1e6  # a held-out voxel in a patch would show (intensity change: x 0.9..1.1)
    source.volume = torch.from_numpy(marked)
    for epoch in range(5):
        _, _, corners = source.draw(epoch)
        start, stop = corners[:, axis], corners[:, axis] + config.patch
        assert bool(((stop <= split.held.start) | (start >= split.held.stop)).all())
        for x, _ in source.batches(epoch):
            assert float(x.max()) < 1e3
    first, again = source.draw(3)[2], source.draw(3)[2]
    assert torch.equal(first, again) and not torch.equal(first, source.draw(4)[2])  # seeded, fresh each epoch


def test_tiled_inference_equals_one_whole_pass_and_covers_every_voxel(one_thread: None) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, 3, 3, padding=1))  # reach: 2 voxels
    volume = torch.randn(19, 14, 23)
    whole = net(volume[None, None])[0].detach()
    tiled = segment_volume(net, volume, patch=8, overlap=4)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(segment_volume(net, volume, patch=8, overlap=0), whole, atol=1e-3)  # seams show
    ones = nn.Conv3d(1, 2, 1)
    nn.init.zeros_(ones.weight)
    nn.init.ones_(ones.bias)
    for shape, patch, overlap in (((19, 14, 23), 8, 4), ((9, 5, 17), 8, 3), ((30, 8, 11), 6, 3), ((4, 4, 4), 8, 2)):
        out = segment_volume(ones, torch.randn(shape), patch, overlap)
        assert tuple(out.shape) == (2, *shape)
        assert bool((out == 1).all()), (shape, patch, overlap)  # an uncovered voxel would be 0/0


def _sphere(size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A ball: white-matter core (bright), grey-matter shell (mid grey), background 0, with noise. (Measured:
    held-out Dice > 0.9 for both classes with seeds 0-19; a core of radius 9 left one seed in ten with no white
    matter.)"""
    grid = np.indices((size,) * 3) - (size - 1) / 2
    radius = np.sqrt((grid**2).sum(0))
    labels = np.where(radius < 10, 2, np.where(radius < 14, 1, 0)).astype(np.int64)
    noise = np.random.default_rng(seed).normal(0, 0.1, labels.shape)
    return (np.array([0.0, 0.5, 1.0])[labels] + noise).astype(np.float32), labels


def test_small_end_to_end_run_segments_a_held_out_slab(tmp_path: Path, one_thread: None) -> None:
    t1, labels = _sphere()
    config = VolumeSegmentConfig(  # a tiny net learns this in 80 steps with BatchNorm (seeds 0-11: Dice >= 0.88)
        patch=8, depth=1, base_width=4, epochs=20, patches_per_epoch=16, batch_size=4, lr=1e-2, seed=0, batch_norm=True
    )
    results = train_volume_segmentation(t1, labels, config, tmp_path, Console(quiet=True))
    run = Path(results["run_dir"])
    assert run.parent == tmp_path / "sequence" and run.name == "unet3d-1"
    assert results["held_slices"] == [12, 20] and results["held_voxels"] == 32 * 32 * 8
    assert results["dice_gm"] > 0.7 and results["dice_wm"] > 0.7, results
    assert results == json.loads((run / "results.json").read_text())
    for name in ("config.yaml", "metrics.csv", "log.txt", "checkpoints/last.pt", f"plots/{HELDOUT_FIGURE}"):
        assert (run / name).is_file(), name


def _write(folder: Path, name: str, array: np.ndarray) -> Path:
    np.save(folder / name, array.astype(np.float32))
    return folder / name


def test_load_tissue_volume_finds_files_and_says_what_is_missing(tmp_path: Path) -> None:
    t1 = np.zeros((4, 5, 6))
    t1[1:3, 1:4, 1:5] = np.arange(24).reshape(2, 3, 4) + 1
    gm, wm = (t1 > 12) * 0.9, (t1 > 0) * (t1 <= 12) * 0.8
    _write(tmp_path, "x_t1_a.npy", t1)
    _write(tmp_path, "x_gm_a.npy", gm)
    with pytest.raises(DataError, match="_wm_") as error:
        load_tissue_volume(tmp_path)
    assert error.value.where == str(tmp_path)
    (tmp_path / "other").mkdir()
    wm_path = _write(tmp_path / "other", "elsewhere.npy", wm)
    scan, labels, info = load_tissue_volume(tmp_path, wm=wm_path)
    np.testing.assert_array_equal(labels, np.where(t1 > 12, 1, np.where(t1 > 0, 2, 0)))
    inside = t1 > 0
    assert scan[inside].mean() == pytest.approx(0, abs=1e-6) and scan[inside].std() == pytest.approx(1, rel=1e-5)
    assert info["paths"]["wm"] == str(wm_path) and info["counts"] == np.bincount(labels.ravel()).tolist()
    _write(tmp_path, "x_wm_a.npy", wm[:, :, :5])
    with pytest.raises(DataError, match="not on one grid"):
        load_tissue_volume(tmp_path)
    with pytest.raises(DataError, match="not found"):
        load_tissue_volume(tmp_path, t1=tmp_path / "missing_t1_.npy")


def test_config_errors_say_what_to_use() -> None:
    with pytest.raises(ConfigError, match="multiple of 4"):
        VolumeSegmentConfig(patch=10, depth=2)
    with pytest.raises(ConfigError, match="thinner than"):
        training_source(np.zeros((8, 8, 20), np.float32), np.zeros((8, 8, 20), np.int64), VolumeSegmentConfig())


@pytest.mark.data
def test_mni152_volume_loads_with_three_tissue_classes(shared_data: Path) -> None:
    pytest.importorskip("nibabel")
    t1, labels, info = load_tissue_volume(shared_data / "mni152-volumes")
    assert t1.shape == labels.shape == (197, 233, 189) and t1.dtype == np.float32 and labels.dtype == np.int64
    assert set(np.unique(labels).tolist()) == {0, 1, 2}
    assert info["orientation"] == ("R", "A", "S")  # axis 2 runs from feet to head: slabs are axial
    inside = t1 != t1.min()
    assert abs(float(t1[inside].mean())) < 0.05 and abs(float(t1[inside].std()) - 1) < 0.05
