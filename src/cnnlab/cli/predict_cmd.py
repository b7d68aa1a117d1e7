"""``cnnlab predict``: a trained run of any task on image files (the task is read from the run), or a zoo
classifier with a weights file; classifiers print their top-k classes, segmenters write masks."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import typer

from cnnlab.cli.options import COMPILE_HELP, DEVICE_HELP, PRECISION_HELP, use_device
from cnnlab.core.errors import ConfigError


def predict(
    ctx: typer.Context,
    images: list[Path] = typer.Argument(
        ...,
        help="[CHECKPOINT|RUN_DIR] then image files (PNG, JPEG, ...) or folders of them; without --model the "
        "first is the model.",
    ),
    model: str = typer.Option(None, "--model", help="Registered model name (see `cnnlab models`)."),
    weights: Path = typer.Option(None, "--weights", help="Weights file for the model (a local path)."),
    top_k: int = typer.Option(5, "--top-k", min=1, help="How many classes to show per image."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    tta: str = typer.Option("none", "--tta", help="Test-time views (checkpoints): none|flip|five_crop|ten_crop."),
    ensemble: list[Path] = typer.Option(None, "--ensemble", help="Another checkpoint/run folder to average (repeat)."),
    out: Path = typer.Option(Path("predictions"), "--out", help="Folder for masks or pictures with boxes."),
    precision: str = typer.Option("auto", "--precision", help=f"Classifiers: {PRECISION_HELP}"),
    compile: str = typer.Option("auto", "--compile", help=f"Classifiers: {COMPILE_HELP}"),
    device: str = typer.Option("auto", "--device", help=f"{DEVICE_HELP} Classifiers and detectors run there."),
) -> None:
    """Classify images: `cnnlab predict CHECKPOINT IMAGE... [--tta flip] [--ensemble CKPT]` or
    `cnnlab predict --model efficientnet_lite0 --weights FILE IMAGE...`. A segmentation checkpoint writes
    <stem>_mask.png and <stem>_overlay.png into --out; a detection checkpoint writes <stem>_boxes.jpg."""
    from cnnlab.data.images import expand_image_paths
    from cnnlab.runtime.inference import check_inference_options
    from cnnlab.tasks import PredictOptions, task_of
    from cnnlab.tasks.base import checkpoint_of

    check_inference_options(precision, compile)
    use_device(ctx, device)
    checkpoint_first = images[0].is_dir() or images[0].suffix == ".pt"
    if model is not None or weights is not None or not checkpoint_first:
        if model is None or weights is None:
            raise ConfigError(
                "both --model and --weights are needed, or a checkpoint first",
                where="cnnlab predict",
                fix="e.g. --model resnet20 --weights FILE, or cnnlab predict runs/classify/NAME-1 IMAGE...",
            )
        from cnnlab.tasks.classify.predict import predict_images

        results = predict_images(model, weights, expand_image_paths(images), top_k, precision, compile)
    else:
        if len(images) < 2:
            raise ConfigError("no image given", where="cnnlab predict", fix="cnnlab predict CHECKPOINT IMAGE...")
        task = task_of(images[0])
        options = PredictOptions(top_k, tta, tuple(ensemble or ()), out, precision, compile)
        files = expand_image_paths(images[1:]) if task.predicts_images else images[1:]
        results = task.predict(checkpoint_of(images[0]), files, options)
        if not results or "top" not in results[0]:  # files written (masks, pictures with boxes): one line each
            for row in results:
                typer.echo(json.dumps(row) if as_json else _written(row))
            return
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if results and results[0]["assumed"]:
        console.print("[yellow]note:[/yellow] unknown weights file: assumed ImageNet mean/std, class indices shown")
    for result in results:
        table = Table(title=result["image"])
        for column in ("rank", "class", "label", "probability"):
            table.add_column(column, justify="left" if column == "label" else "right")
        for rank, row in enumerate(result["top"], 1):
            table.add_row(str(rank), str(row["index"]), row["label"], f"{row['probability']:.4f}")
        console.print(table)


def _written(row: dict) -> str:
    """One line per image whose prediction was written as files (a mask and overlay, a picture with boxes, or
    an embedding)."""
    if "mask" in row:
        return f"{row['image']} -> {row['mask']}, {row['overlay']}"
    if "embeddings" in row:
        return f"{row['image']} -> {row['embeddings'] or 'no embedding'}: {row['face']}"
    counts = Counter(row["labels"])
    found = ", ".join(f"{n} {label}" for label, n in counts.most_common()) or "nothing"
    return f"{row['image']} -> {row['picture']}: {found}"
