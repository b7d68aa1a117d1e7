"""Neural style transfer on 2 cores: the 512 px time goal, the speed plan vs a plain fp32 eager loop, and a
3 content x 3 style grid with VGG-19 (ImageNet) and other backbones. Pictures go to ``docs/img/style/``.

    python benchmarks/style_transfer.py --shared ../shared/data --out docs/img/style

1. ``cnnlab style`` defaults at 512 px (VGG-19, astronaut x Starry Night): wall time, costs, the curve.
2. Seconds per evaluation (forward + backward of the costs) at 256 and 512 px: the run's plan (bf16 autocast
   + channels_last where the CPU has bf16) vs plain fp32 NCHW eager, the same code otherwise, side by side.
3. The grid at ``--grid-size`` px for each backbone (VGG-19 ImageNet; VGG-19 random weights + SWAG;
   EfficientNet-Lite0 ImageNet + SWAG), written as one picture per backbone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
from PIL import Image

from cnnlab.tasks.style.costs import content_cost, style_cost
from cnnlab.tasks.style.pipeline import StyleJob, build_features, load_rgb
from cnnlab.tasks.style.transfer import _targets, resize_to

CONTENTS = ("astronaut.png", "coffee.png", "chelsea.png")
STYLES = ("starry_night.jpg", "the_scream.jpg", "shipwreck.jpg")
VGG = "vgg19-imagenet-conv/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
EFFICIENTNET = "efficientnet-lite0-imagenet/efficientnet-lite0-57934424.pth"


def efficientnet_args(shared: Path) -> list[str]:
    return ["--model", "efficientnet_lite0", "--weights", str(shared / EFFICIENTNET)]


def cli(*args: str) -> dict[str, object]:
    """Run ``cnnlab style`` in a fresh process (as a user does) and return its results.json."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cnnlab.cli.app", "style", *args], check=True, capture_output=True)
    wall = time.perf_counter() - started
    runs = sorted(Path(args[args.index("--runs-dir") + 1], "style").iterdir(), key=lambda p: p.stat().st_mtime)
    results = json.loads((runs[-1] / "results.json").read_text())
    results["wall_s"] = round(wall, 1)
    return results


def seconds_per_evaluation(shared: Path, size: int, precision: str, channels_last: bool, repeats: int = 4) -> float:
    """Median seconds of one cost evaluation + backward at ``size`` px under one precision and layout."""
    job = StyleJob(shared / "style-images/content/astronaut.png", (shared / "style-images/style/starry_night.jpg",))
    job = StyleJob(job.content, job.styles, weights=str(shared / VGG))
    net, style_layers, content_layer, _ = build_features(job)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    content = resize_to(load_rgb(job.content), size)
    style = load_rgb(job.styles[0])
    bf16 = precision == "bf16"

    def features(x: torch.Tensor) -> dict[str, torch.Tensor]:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return net(x)

    with torch.no_grad():
        targets = _targets(features, content, [style], [1.0], 1.0, content_layer, style_layers)
    weights = {name: 1 / len(style_layers) for name in style_layers}
    image = content.clone().requires_grad_(True)
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        found = features(image)
        total = 10 * content_cost(targets.content, found[content_layer]) + 400 * style_cost(
            targets.grams, found, weights
        )
        total.backward()
        times.append(time.perf_counter() - started)
    return sorted(times[1:])[len(times[1:]) // 2]


def grid(shared: Path, out: Path, runs: Path, size: int, steps: str, label: str, backbone: list[str]) -> list[dict]:
    """Run every content x style pair with one backbone and paste the results into ``out/grid-<label>.jpg``."""
    rows = []
    cell = size
    sheet = Image.new("RGB", (cell * (len(STYLES) + 1), cell * (len(CONTENTS) + 1)), "white")
    for j, style in enumerate(STYLES):
        thumb = Image.open(shared / "style-images/style" / style).convert("RGB")
        thumb.thumbnail((cell, cell))
        sheet.paste(thumb, (cell * (j + 1), 0))
    for i, content in enumerate(CONTENTS):
        thumb = Image.open(shared / "style-images/content" / content).convert("RGB")
        thumb.thumbnail((cell, cell))
        sheet.paste(thumb, (0, cell * (i + 1)))
        for j, style in enumerate(STYLES):
            results = cli(
                str(shared / "style-images/content" / content),
                str(shared / "style-images/style" / style),
                *("--size", str(size), "--steps", steps, "--runs-dir", str(runs), "--name", f"{label}-{i}{j}"),
                *backbone,
            )
            image = Image.open(Path(str(results["run"])) / "result.png")
            image.thumbnail((cell, cell))
            sheet.paste(image, (cell * (j + 1), cell * (i + 1)))
            rows.append({"backbone": label, "content": content, "style": style, **_short(results)})
            print(json.dumps(rows[-1]), flush=True)
    sheet.save(out / f"grid-{label}.jpg", quality=88)
    return rows


def _short(results: dict) -> dict:
    return {
        "wall_s": results["wall_s"],
        "seconds": results["seconds"],
        "style_reduction": round(float(results["style_reduction"]), 1),
        "content_after": round(float(results["after"]["content"]), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("docs/img/style"))
    parser.add_argument("--runs", type=Path, default=Path("/tmp/cnnlab-style-bench"))
    parser.add_argument("--grid-size", type=int, default=256)
    parser.add_argument("--grid-steps", default="60,30")
    parser.add_argument("--skip", nargs="*", default=[], choices=["goal", "speed", "grid"])
    parser.add_argument("--backbones", nargs="*", default=[], help="grid only these backbones (default: all)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ["CNNLAB_WEIGHTS"] = str(args.shared / "vgg19-imagenet-conv")
    print(
        json.dumps(
            {
                "machine": platform.processor() or platform.machine(),
                "cpus": os.cpu_count(),
                "torch": torch.__version__,
                "date": time.strftime("%Y-%m-%d %H:%M"),
            }
        )
    )
    content, style = (
        args.shared / "style-images/content/astronaut.png",
        args.shared / "style-images/style/starry_night.jpg",
    )
    if "goal" not in args.skip:
        results = cli(str(content), str(style), "--runs-dir", str(args.runs), "--name", "goal-512")
        run = Path(str(results["run"]))
        Image.open(run / "result.png").save(args.out / "astronaut-starry-512.jpg", quality=90)
        (args.out / "costs-512.png").write_bytes((run / "plots" / "costs.png").read_bytes())
        print(json.dumps({"goal_512": _short(results), "before": results["before"], "after": results["after"]}))
    if "speed" not in args.skip:
        for size in (256, 512):
            plain = seconds_per_evaluation(args.shared, size, "fp32", channels_last=False)
            plan = seconds_per_evaluation(args.shared, size, "bf16", channels_last=True)
            print(
                json.dumps(
                    {
                        "size": size,
                        "fp32_eager_s": round(plain, 3),
                        "plan_s": round(plan, 3),
                        "ratio": round(plain / plan, 2),
                    }
                )
            )
    if "grid" not in args.skip:
        backbones = {
            "vgg19-imagenet": ["--weights", str(args.shared / VGG)],
            "vgg19-random-swag": ["--weights", "random", "--swag"],
            "efficientnet-lite0-swag": [*efficientnet_args(args.shared), "--swag", "--optimizer", "lbfgs"],
            # the default for non-VGG backbones: no SWAG, Adam, 3x the evaluations (they are ~4x cheaper here)
            "efficientnet-lite0": efficientnet_args(args.shared),
        }
        for label, backbone in backbones.items():
            if args.backbones and label not in args.backbones:
                continue
            steps = args.grid_steps if label != "efficientnet-lite0" else "180,90"
            grid(args.shared, args.out, args.runs, args.grid_size, steps, label, backbone)


if __name__ == "__main__":
    main()
