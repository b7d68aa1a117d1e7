"""``cnnlab explain``: Grad-CAM, Grad-CAM++ or saliency heatmaps over images, one PNG per image."""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path

import typer

from cnnlab import explain as xai
from cnnlab.core.errors import ConfigError
from cnnlab.tasks.classify.predictor import Classifier, load_classifier, load_pretrained

Method = Enum("Method", {name: name for name in xai.METHODS}, type=str)  # typer shows and checks the choices


def explain_images(
    classifier: Classifier,
    images: list[Path],
    out: Path,
    method: str = "gradcam",
    layer: str | None = None,
    class_name: str | None = None,
) -> list[dict[str, object]]:
    """Write ``<out>/<image stem>_<method>_<class>.png`` (image | overlay) per image; returns what was explained."""
    target = None if class_name is None else classifier.class_index(class_name)
    results: list[dict[str, object]] = []
    for image in images:
        x = classifier.preprocess([image])  # (1, C, H, W)
        result = xai.explain(classifier.model, x, method, layer, target)
        probs = result.logits.softmax(dim=1)[0]
        index, predicted = int(result.targets[0]), int(probs.argmax())
        label = _short(classifier.classes[index])
        title = f"{method}: {label} (p={probs[index]:.3f})"
        if predicted != index:
            title += f"; predicted {_short(classifier.classes[predicted])} (p={probs[predicted]:.3f})"
        path = out / f"{image.stem}_{method.replace('+', 'p')}_{_slug(label)}.png"
        xai.plot_cam(classifier.to_image(x[0]), result.maps[0], path, title)
        results.append(
            {"image": str(image), "class": index, "label": label, "probability": float(probs[index]), "file": str(path)}
        )
    return results


def explain(
    paths: list[Path] = typer.Argument(
        ..., metavar="[CHECKPOINT] IMAGE", help="A checkpoint (.pt or run folder) from `cnnlab train`, then images."
    ),
    out: Path = typer.Option(..., "--out", help="Folder for the heatmap PNGs (created if missing)."),
    layer: str = typer.Option(None, "--layer", help="Layer to explain (dotted name); default: the model's own."),
    class_name: str = typer.Option(None, "--class", help="Class name or index to explain; default: the predicted."),
    method: Method = typer.Option("gradcam", "--method", help="How to explain."),
    model: str = typer.Option(None, "--model", help="A zoo model (with --weights) instead of a CHECKPOINT."),
    weights: Path = typer.Option(None, "--weights", help="Weights file for --model (a local path)."),
) -> None:
    """Heatmaps of what a classifier looks at: `cnnlab explain runs/classify/x-1 cat.png --out heatmaps/`."""
    if (model is None) != (weights is None):
        raise ConfigError("--model and --weights go together", where="cnnlab explain", fix="pass both, or neither")
    if model is not None:
        classifier, images = load_pretrained(model, weights), paths
    else:
        if len(paths) < 2:
            raise ConfigError(
                "need a CHECKPOINT and at least one IMAGE",
                where="cnnlab explain",
                fix="cnnlab explain runs/classify/NAME-1 IMAGE... --out DIR, or --model NAME --weights FILE IMAGE...",
            )
        classifier, images = load_classifier(paths[0]), paths[1:]
    for row in explain_images(classifier, images, out, method.value, layer, class_name):
        typer.echo(
            f"{row['image']}: {row['label']} (class {row['class']}, p={row['probability']:.3f}) -> {row['file']}"
        )


def _short(label: str) -> str:
    """The first name of an ImageNet-style label ("tabby, tabby cat" -> "tabby")."""
    return label.split(",")[0].strip()


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "class"
