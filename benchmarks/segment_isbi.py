"""U-Net on the ISBI 2012 EM membrane slices: held-out pixel accuracy and membrane Dice within a wall budget.

Holds out 5 of the 30 labelled 512x512 slices (seeded), trains through the same pipeline as
``cnnlab train --task segment``, and writes what docs/segmentation.md shows:

    python benchmarks/segment_isbi.py                      # the documented run
    python benchmarks/segment_isbi.py --epochs 1 --out /tmp/isbi   # a quick look

Outputs (in ``--out``, default docs/): ``img/segment_isbi_curve.png`` (loss and held-out Dice per
epoch), ``img/segment_isbi_heldout.png`` (image | truth | prediction | errors),
``segment_isbi_results.json`` (scores, wall and CPU time, the machine and its load average, the config).
The ISBI masks hold 255 for cell interior and 0 for membrane, so class 0 is named ``membrane``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

import torch

from cnnlab.core.config import to_dict
from cnnlab.tasks.config import DataConfig, ModelConfig
from cnnlab.tasks.segment.config import SegmentConfig, SegmentRunConfig
from cnnlab.tasks.segment.pipeline import run_segmentation
from cnnlab.train.config import TrainConfig

ISBI = Path(__file__).resolve().parents[2] / "shared" / "data" / "isbi2012-membrane" / "train"


def plot_curve(history: list[dict[str, float]], path: Path) -> None:
    """Training loss and held-out Dice (mean and membrane) per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    left.plot(epochs, [row["loss"] for row in history], "o-", label="train loss")
    left.plot(epochs, [row["val_loss"] for row in history], "o-", label="held-out loss")
    left.set(xlabel="epoch", title="loss")
    left.legend()
    for key, label in (
        ("val_acc", "pixel accuracy"),
        ("val_dice_membrane", "membrane Dice"),
        ("val_dice", "mean Dice"),
    ):
        right.plot(epochs, [row[key] for row in history], "o-", label=label)
    right.axhline(0.80, color="gray", lw=0.8, ls="--")
    right.set(xlabel="epoch", title="held-out (5 slices)", ylim=(0.5, 1.0))
    right.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--loss", default="bce_dice")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=True, help="unet: BN or not")
    parser.add_argument("--elastic", type=float, default=0.0)
    parser.add_argument("--model", default="unet")
    parser.add_argument("--encoder-weights", default=None, help="unet_lite0: an EfficientNet-Lite0 weights file")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    args = parser.parse_args()

    unet = args.model == "unet"
    config = SegmentRunConfig(
        name="isbi-" + args.model,
        data=DataConfig(source=str(ISBI / "image"), aug="segmentation", val_fraction=5 / 30),
        model=ModelConfig(name=args.model),
        segment=SegmentConfig(
            masks=str(ISBI / "label"),
            classes=("membrane", "cell"),
            loss=args.loss,
            crop=args.crop,
            repeats=args.repeats,
            elastic=args.elastic,
            depth=4 if unet else None,
            base_width=args.width,
            padding="same",
            batch_norm=args.batch_norm if unet else None,
            encoder_weights=args.encoder_weights,
        ),
        train=TrainConfig(epochs=args.epochs, batch_size=4, eval_batch_size=1, lr=args.lr, monitor="val_dice"),
    )
    load_before = os.getloadavg()
    started = time.perf_counter()
    results = run_segmentation(config, runs_dir=args.runs_dir)
    wall = time.perf_counter() - started
    run = Path(results["run_dir"])
    history = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)["history"]
    (args.out / "img").mkdir(parents=True, exist_ok=True)
    plot_curve(history, args.out / "img" / "segment_isbi_curve.png")
    shutil.copyfile(run / "plots" / "heldout.png", args.out / "img" / "segment_isbi_heldout.png")
    summary = {
        "wall_seconds": round(wall, 1),
        "process_cpu_seconds": round(time.process_time(), 1),  # on an idle machine wall is about this / threads
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "results": results,
        "history": history,
        "config": to_dict(config),
    }
    (args.out / "segment_isbi_results.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in results.items() if k != "per_image"}, indent=2), f"\nwall {wall:.0f} s")


if __name__ == "__main__":
    main()
