"""Face recognition on ORL (AT&T faces, 40 people x 10 images) with 2 cores, as a user runs it:

1. ``cnnlab train --task embed --data att-faces`` with the defaults (30 people trained on, 5 images each;
   10 people held out for verification; the other 5 images of the training people identify them), for each
   of ``--seeds`` (the seed draws the held-out people, the images and the initial weights);
2. the Lawrence et al. 1997 protocol, 40 people with 5 training images each (``--val-fraction 0``, the other
   5 images identified), one seed;
3. ``cnnlab evaluate dlib_resnet29 --data att-faces``: the pretrained dlib embedder on all 40 people, no training.

    python benchmarks/faces_orl.py --shared ../shared/data --out docs/benchmarks-faces.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def cli(*args: str) -> float:
    """Run ``cnnlab`` in a fresh process (as a user does); returns the wall time."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cnnlab.cli.app", *args], check=True)
    return time.perf_counter() - started


def scores(run: Path) -> dict[str, object]:
    """The headline numbers of a run folder (``results.json`` and ``evaluation.json``)."""
    results = json.loads((run / "results.json").read_text())
    evaluation = json.loads((run / "evaluation.json").read_text())
    verification = evaluation["verification"]
    return {
        "fit_seconds": results["fit_seconds"],
        "epochs": results["epochs"],
        "verification_people": evaluation["verification_people"],
        "auc": verification.get("auc"),
        "eer": verification.get("eer"),
        "tar_at_far": verification.get("tar_at_far"),
        "threshold": verification.get("threshold"),
        "kfold_accuracy": verification.get("kfold_accuracy"),
        "siamese_head": verification.get("siamese_head"),
        "identification": evaluation["identification"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks-faces.json"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    data = str(args.shared / "att-faces")
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__}
    result: dict[str, object] = {"machine": machine, "data": data}
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        defaults = {}
        for seed in args.seeds:
            wall = cli("train", "--task", "embed", "--data", data, "--seed", str(seed), "--runs-dir", str(runs),
                       "--name", f"seed{seed}")  # fmt: skip
            defaults[f"seed{seed}"] = {"wall_seconds": round(wall, 1), **scores(runs / "embed" / f"seed{seed}-1")}
        result["defaults"] = defaults
        eers = [run["eer"] for run in defaults.values()]
        result["defaults_eer_mean"] = sum(eers) / len(eers)
        wall = cli("train", "--task", "embed", "--data", data, "--val-fraction", "0", "--runs-dir", str(runs),
                   "--name", "lawrence")  # fmt: skip
        run = runs / "embed" / "lawrence-1"
        evaluation = json.loads((run / "evaluation.json").read_text()) if (run / "evaluation.json").is_file() else {}
        result["lawrence_protocol"] = {
            "wall_seconds": round(wall, 1),
            "results": json.loads((run / "results.json").read_text()),
            "identification": evaluation.get("identification"),
        }
        out = runs / "dlib"
        wall = cli("evaluate", "dlib_resnet29", "--data", data, "--out", str(out))
        evaluation = json.loads((out / "evaluation.json").read_text())
        result["dlib_pretrained"] = {
            "wall_seconds": round(wall, 1),
            "verification": {k: evaluation["verification"][k] for k in ("auc", "eer", "tar_at_far", "threshold")},
            "identification": evaluation["identification"],
        }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
