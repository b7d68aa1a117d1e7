"""Grey/white-matter segmentation of the MNI152 T1 template with a 3D U-Net on patches: held-out-slab Dice and times.

Trains :func:`cnnlab.tasks.sequence.volume_segment.train_volume_segmentation` with the default
:class:`~cnnlab.tasks.sequence.volume_segment.VolumeSegmentConfig` (patches from the outer slabs along the
inferior-superior axis, the middle quarter of the axial slices held out) and writes the Dice per class on the
held-out slab, the training and inference times and the machine (with its load average: on a shared machine
the times depend on what else runs) to ``--out``, with the reference a network must beat: two intensity
thresholds fitted on the training slabs (the MNI tissue maps were made from this T1's intensities):

    python benchmarks/volume_segment_mni152.py --shared ../shared/data
    python benchmarks/volume_segment_mni152.py --variant patch=48,batch_size=2 --variant base_width=16

Each ``--variant`` (settings that replace the defaults) is a further run, one after the other, recorded under
``variants``. ``--runs-dir`` keeps the run folders (with ``plots/heldout_slices.png``); by default they go to a
temporary folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from rich.console import Console

from cnnlab.core.config import to_dict
from cnnlab.core.rundir import atomic_write_text
from cnnlab.data.volumes import slab_split
from cnnlab.report.artefacts import machine_info
from cnnlab.tasks.sequence.volume_segment import (
    VolumeSegmentConfig,
    confusion_matrix,
    dice_scores,
    load_tissue_volume,
    train_volume_segmentation,
)


def parse_variant(text: str) -> dict[str, Any]:
    """``"patch=48,batch_size=2"`` -> ``{"patch": 48, "batch_size": 2}`` (values read as YAML)."""
    pairs = [item.split("=", 1) for item in text.split(",") if item]
    if any(len(pair) != 2 for pair in pairs):
        raise SystemExit(f"--variant takes key=value pairs separated by commas, got {text!r}")
    values = {key.strip(): yaml.safe_load(value) for key, value in pairs}
    if "threshold" in values:
        raise SystemExit("--variant cannot change threshold (the labels are made once, with the default)")
    return values


def threshold_baseline(t1: np.ndarray, labels: np.ndarray, config: VolumeSegmentConfig) -> dict[str, Any]:
    """The reference a network must beat: two intensity thresholds (other < a <= grey matter < b <= white matter)
    chosen on the training slabs (best mean GM/WM Dice over a 0.02-wide grid of the z-scored T1), scored on the
    held-out slab. The MNI tissue maps were themselves made from this T1's intensities, so this is strong."""
    split = slab_split(t1.shape[config.axis], config.held_fraction)
    moved, names = np.moveaxis(t1, config.axis, -1), np.moveaxis(labels, config.axis, -1)
    train_x = np.concatenate([moved[..., r.start : r.stop].ravel() for r in split.train])
    train_y = np.concatenate([names[..., r.start : r.stop].ravel() for r in split.train])
    edges = np.arange(np.floor(train_x.min()), np.ceil(train_x.max()) + 0.02, 0.02)
    # below[k, i]: voxels of class k with intensity under edges[i]
    below = np.stack([np.searchsorted(np.sort(train_x[train_y == k]), edges) for k in range(3)])
    total = below[:, -1:]
    best = (-1.0, 0.0, 0.0)
    for i in range(len(edges) - 1):
        j = np.arange(i + 1, len(edges))  # a = edges[i], b = edges[j]
        gm_hit, gm_pred = below[1, j] - below[1, i], (below[:, j] - below[:, i : i + 1]).sum(0)
        wm_hit, wm_pred = total[2] - below[2, j], (total - below[:, j]).sum(0)
        dice = (2 * gm_hit / np.maximum(gm_pred + total[1], 1) + 2 * wm_hit / np.maximum(wm_pred + total[2], 1)) / 2
        if dice.max() > best[0]:
            best = (float(dice.max()), float(edges[i]), float(edges[j[dice.argmax()]]))
    _, low, high = best
    held = moved[..., split.held.start : split.held.stop]
    pred = np.digitize(held, [low, high])
    counts = confusion_matrix(
        torch.from_numpy(pred), torch.from_numpy(names[..., split.held.start : split.held.stop]), 3
    )
    dice = dice_scores(counts).tolist()
    return {"thresholds": [round(low, 2), round(high, 2)], "dice_gm": dice[1], "dice_wm": dice[2],
            "dice_mean": (dice[1] + dice[2]) / 2, "train_dice_mean": best[0]}  # fmt: skip


def run_one(
    t1: Any, labels: Any, config: VolumeSegmentConfig, runs: Path, keep: bool, console: Console
) -> dict[str, Any]:
    """One training run and its record: the settings, the results and the load average before and after
    (``keep``: the run folder stays, and its path is recorded)."""
    before = machine_info()["load_average"]
    started = time.perf_counter()
    results = train_volume_segmentation(t1, labels, config, runs, console)
    if not keep:
        results.pop("run_dir")
    return {
        "config": to_dict(config),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "load_average_before": before,
        "load_average_after": machine_info()["load_average"],
        "results": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks-volume-segment.json"))
    parser.add_argument("--runs-dir", type=Path, default=None, help="keep the run folders here")
    parser.add_argument("--variant", action="append", default=[], help="key=value,... replacing the defaults")
    parser.add_argument("--skip-default", action="store_true", help="run the variants only")
    args = parser.parse_args()
    console = Console()
    folder = args.shared / "mni152-volumes"
    started = time.perf_counter()
    defaults = VolumeSegmentConfig()
    t1, labels, info = load_tissue_volume(folder, threshold=defaults.threshold)
    record: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "machine": machine_info(),
        "data": str(folder),
        "load_seconds": round(time.perf_counter() - started, 1),
        "volume": {
            k: info[k] for k in ("shape", "zooms", "orientation", "normalise", "threshold", "classes", "counts")
        },
        "intensity_threshold_baseline": threshold_baseline(t1, labels, defaults),
    }
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs_dir or Path(tmp)
        keep = args.runs_dir is not None
        if not args.skip_default:
            record["default"] = run_one(t1, labels, defaults, runs, keep, console)
        record["variants"] = [
            run_one(t1, labels, dataclasses.replace(defaults, **parse_variant(text)), runs, keep, console)
            for text in args.variant
        ]
    atomic_write_text(args.out, json.dumps(record, indent=1) + "\n")
    console.print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
