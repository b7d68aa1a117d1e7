"""``cnnlab predict``: classify images with a trained checkpoint (or an ensemble of them, with optional
test-time augmentation) or with a zoo model and a weights file, printing the top-k classes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from cnnlab.cli.evaluate_cmd import COMPILE_HELP, PRECISION_HELP
from cnnlab.core.errors import ConfigError


def predict_images(
    model_name: str,
    weights: Path,
    images: list[Path],
    top_k: int = 5,
    precision: str = "auto",
    compile: str = "auto",
) -> list[dict[str, Any]]:
    """Top-``top_k`` predictions per image: ``[{"image", "top": [{"index", "label", "probability"}]}]``.

    A known weight file brings its preprocessing and class names; for any other file the model's
    default input size, the ImageNet mean/std and class indices are used (and ``"assumed": True``).
    ``precision`` and ``compile`` choose the inference path (see :func:`cnnlab.infer_speed.fast_inference`).
    """
    from cnnlab.inference import load_pretrained

    classifier = load_pretrained(model_name, weights)
    probs = classifier.predict_proba(classifier.preprocess(images), precision, compile)  # (B, num_classes)
    return _top(images, probs, classifier.classes, top_k, assumed=classifier.assumed)


def predict_checkpoints(
    checkpoints: list[Path],
    images: list[Path],
    top_k: int = 5,
    tta: str = "none",
    precision: str = "auto",
    compile: str = "auto",
) -> list[dict[str, Any]]:
    """Like :func:`predict_images` for ``cnnlab train`` checkpoints or run folders: several are an
    ensemble (probabilities averaged); ``tta`` averages test-time views (see ``cnnlab.evaluate``)."""
    from cnnlab.evaluate import predict_files
    from cnnlab.inference import load_classifier

    members = [load_classifier(path) for path in checkpoints]
    for member in members[1:]:
        if member.classes != members[0].classes:
            raise ConfigError(
                "ensemble members have different classes", where=member.source, fix="ensemble runs of one dataset"
            )
    probs = predict_files(members, images, tta, precision, compile)
    return _top(images, probs, members[0].classes, top_k, assumed=False)


def _top(images: list[Path], probs: Any, classes: Sequence[str], top_k: int, assumed: bool) -> list[dict[str, Any]]:
    k = min(top_k, probs.shape[1])
    results = []
    for image, (values, indices) in zip(images, zip(*probs.topk(k, dim=1), strict=True), strict=True):
        top = [
            {"index": int(i), "label": classes[i] if classes else str(int(i)), "probability": round(float(v), 6)}
            for v, i in zip(values, indices, strict=True)
        ]
        results.append({"image": str(image), "top": top, "assumed": assumed})
    return results


def predict(
    images: list[Path] = typer.Argument(
        ..., help="[CHECKPOINT|RUN_DIR] then image files (PNG, JPEG, ...); without --model the first is the model."
    ),
    model: str = typer.Option(None, "--model", help="Registered model name (see `cnnlab models`)."),
    weights: Path = typer.Option(None, "--weights", help="Weights file for the model (a local path)."),
    top_k: int = typer.Option(5, "--top-k", min=1, help="How many classes to show per image."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    tta: str = typer.Option("none", "--tta", help="Test-time views (checkpoints): none|flip|five_crop|ten_crop."),
    ensemble: list[Path] = typer.Option(None, "--ensemble", help="Another checkpoint/run folder to average (repeat)."),
    out: Path = typer.Option(Path("predictions"), "--out", help="Segmentation: folder for masks and overlays."),
    precision: str = typer.Option("auto", "--precision", help=f"Classifiers: {PRECISION_HELP}"),
    compile: str = typer.Option("auto", "--compile", help=f"Classifiers: {COMPILE_HELP}"),
) -> None:
    """Classify images: `cnnlab predict CHECKPOINT IMAGE... [--tta flip] [--ensemble CKPT]` or
    `cnnlab predict --model efficientnet_lite0 --weights FILE IMAGE...`. A segmentation checkpoint writes
    <stem>_mask.png and <stem>_overlay.png into --out."""
    from cnnlab.infer_speed import check_inference_options

    check_inference_options(precision, compile)
    if model is None and weights is None and len(images) > 1:
        from cnnlab.segment import predict_masks, segmentation_checkpoint

        checkpoint = segmentation_checkpoint(images[0])
        if checkpoint is not None:
            for row in predict_masks(checkpoint, images[1:], out):
                typer.echo(json.dumps(row) if as_json else f"{row['image']} -> {row['mask']}, {row['overlay']}")
            return
    if model is None and weights is None and (images[0].is_dir() or images[0].suffix == ".pt"):
        if len(images) < 2:
            raise ConfigError("no image given", where="cnnlab predict", fix="cnnlab predict CHECKPOINT IMAGE...")
        results = predict_checkpoints([images[0], *(ensemble or [])], images[1:], top_k, tta, precision, compile)
    elif model is None or weights is None:
        raise ConfigError(
            "both --model and --weights are needed, or a checkpoint first",
            where="cnnlab predict",
            fix="e.g. --model resnet20 --weights FILE, or cnnlab predict runs/classify/NAME-1 IMAGE...",
        )
    else:
        results = predict_images(model, weights, images, top_k, precision, compile)
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
