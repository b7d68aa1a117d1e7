"""``cnnlab predict``: classify images with a zoo model and a weights file, printing the top-k classes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from cnnlab.core.errors import ConfigError


def predict_images(model_name: str, weights: Path, images: list[Path], top_k: int = 5) -> list[dict[str, Any]]:
    """Top-``top_k`` predictions per image: ``[{"image", "top": [{"index", "label", "probability"}]}]``.

    A known weight file brings its preprocessing and class names; for any other file the model's
    default input size, the ImageNet mean/std and class indices are used (and ``"assumed": True``).
    """
    import torch

    from cnnlab.data.preprocess import load_image, preprocess_image
    from cnnlab.models import create_model, model_entry
    from cnnlab.models.weights import IMAGENET_MEAN, IMAGENET_STD, resolve_weights

    entry = model_entry(model_name)
    if entry.task != "classify":
        raise ConfigError(f"'{model_name}' is a {entry.task} model", where="--model", fix="pick a classifier")
    path, spec = resolve_weights(weights)
    model = create_model(model_name, weights=path).eval()
    if spec is not None:
        channels, size, _ = spec.input_size
        resize, mean, std, classes = spec.resize, spec.mean, spec.std, spec.classes
    else:
        channels, size, _ = entry.default_input
        resize = round(size / 0.875)  # the usual 224 / 256 crop ratio
        mean, std = IMAGENET_MEAN[:channels], IMAGENET_STD[:channels]
        classes = ()
    batch = torch.stack([preprocess_image(load_image(p, channels), size, resize, mean, std) for p in images])
    with torch.no_grad():
        probs = model(batch).softmax(dim=1)  # (B, num_classes)
    k = min(top_k, probs.shape[1])
    results = []
    for image, (values, indices) in zip(images, zip(*probs.topk(k, dim=1), strict=True), strict=True):
        top = [
            {"index": int(i), "label": classes[i] if classes else str(int(i)), "probability": round(float(v), 6)}
            for v, i in zip(values, indices, strict=True)
        ]
        results.append({"image": str(image), "top": top, "assumed": spec is None})
    return results


def predict(
    images: list[Path] = typer.Argument(..., help="Image files (PNG, JPEG, ...)."),
    model: str = typer.Option(None, "--model", help="Registered model name (see `cnnlab models`)."),
    weights: Path = typer.Option(None, "--weights", help="Weights file for the model (a local path)."),
    top_k: int = typer.Option(5, "--top-k", min=1, help="How many classes to show per image."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Classify images: `cnnlab predict --model efficientnet_lite0 --weights FILE IMAGE...`."""
    if model is None or weights is None:
        raise ConfigError(
            "both --model and --weights are needed", where="cnnlab predict", fix="e.g. --model resnet20 --weights FILE"
        )
    results = predict_images(model, weights, images, top_k)
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
