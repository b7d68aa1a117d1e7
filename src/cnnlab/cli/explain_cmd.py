"""``cnnlab explain``: Grad-CAM, Grad-CAM++ or saliency heatmaps over images, one PNG per image; and
``cnnlab explain units``: each unit's strongest image patches and activation-maximisation image, on one page.

``units`` is a word in the place of the first argument rather than a Typer sub-command: ``explain`` takes
images as positional arguments, which a command group would read as sub-command names, and the old usage
``cnnlab explain CHECKPOINT IMAGE...`` must keep working. A run folder named ``units`` is passed by a longer
path (``$PWD/units``, or its ``units/checkpoints/best.pt``).
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cnnlab import explain as xai
from cnnlab.cli.options import DEVICE_HELP, use_device
from cnnlab.core.errors import ConfigError
from cnnlab.core.rundir import atomic_write_text
from cnnlab.data.images import expand_image_paths, image_files
from cnnlab.explain import maximise, units
from cnnlab.runtime.device import current_device, placed_on
from cnnlab.tasks.classify.predictor import Classifier, load_classifier, load_pretrained

UNITS = "units"
DEFAULT_UNITS = 8
DEFAULT_STEPS = 128

Method = Enum("Method", {name: name for name in xai.METHODS}, type=str)  # typer shows and checks the choices


def explain_images(
    classifier: Classifier,
    images: list[Path],
    out: Path,
    method: str = "gradcam",
    layer: str | None = None,
    class_name: str | None = None,
) -> list[dict[str, object]]:
    """Write ``<out>/<image stem>_<method>_<class>.png`` (image | overlay) per image; returns what was explained.
    The model runs on the command's device (:func:`cnnlab.runtime.device.current_device`)."""
    target = None if class_name is None else classifier.class_index(class_name)
    results: list[dict[str, object]] = []
    device = current_device()
    with placed_on(classifier.model, device) as model:
        for image in images:
            x = classifier.preprocess([image])  # (1, C, H, W)
            found = xai.explain(model, x.to(device), method, layer, target)
            result = dataclasses.replace(
                found, maps=found.maps.cpu(), logits=found.logits.cpu(), targets=found.targets.cpu()
            )
            probs = result.logits.softmax(dim=1)[0]
            index, predicted = int(result.targets[0]), int(probs.argmax())
            label = _short(classifier.classes[index])
            title = f"{method}: {label} (p={probs[index]:.3f})"
            if predicted != index:
                title += f"; predicted {_short(classifier.classes[predicted])} (p={probs[predicted]:.3f})"
            path = out / f"{image.stem}_{method.replace('+', 'p')}_{_slug(label)}.png"
            xai.plot_cam(classifier.to_image(x[0]), result.maps[0], path, title)
            row = {"image": str(image), "class": index, "label": label, "probability": float(probs[index])}
            results.append(row | {"file": str(path)})
    return results


def explain_units(
    classifier: Classifier,
    folder: Path,
    out: Path,
    layers: list[str] | None = None,
    chosen: int | list[int] = DEFAULT_UNITS,
    steps: int = DEFAULT_STEPS,
    console: Console | None = None,
) -> Path:
    """Write ``<out>/units.html`` (top-9 patches and activation maximisation per unit) and ``<out>/units.json``."""
    console = console or Console(stderr=True)
    images = image_files(folder)
    started = time.perf_counter()
    input_size = classifier.input_size
    names = layers or units.default_layers(classifier.model, input_size)
    units.check_layers(classifier.model, names, input_size, chosen)
    how = f"the {chosen} most active" if isinstance(chosen, int) else ", ".join(map(str, chosen))
    console.print(f"{classifier.name}: layers {', '.join(names)}; units: {how}; {len(images)} images in {folder}")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("top patches", total=len(images))
        found = units.top_patches(
            classifier.model,
            images,
            classifier.preprocess,
            names,
            chosen,
            to_image=classifier.to_image,
            progress=lambda n: progress.advance(task, n),
        )
        pictures = {}
        for layer in found if steps else []:
            task = progress.add_task(f"maximise {layer.layer}", total=steps)
            pictures[layer.layer] = maximise.maximise_units(
                classifier.model,
                layer.layer,
                [u.unit for u in layer.units],
                input_size,
                classifier.mean,
                classifier.std,
                steps=steps,
                progress=lambda n, task=task: progress.advance(task, n),
            )
    relative = [str(p.relative_to(folder)) for p in images]
    intro = [
        f"Model {classifier.name} ({classifier.source}), {len(images)} images from {folder}.",
        "Left: the 9 image patches that excite the unit most, at most one per image, strongest first; each is the "
        "exact receptive field of the unit's strongest position in that image (a checkerboard marks the part of "
        "the field outside the image).",
        f"Right: an image optimised to excite the unit ({steps} steps, Fourier parametrisation, jitter and blur)."
        if steps
        else "No activation maximisation (--steps 0).",
    ]
    page = units.write_page(out / "units.html", found, pictures, relative, f"Units of {classifier.name}", intro)
    summary = {"model": classifier.name, "source": classifier.source, "images": len(images), "steps": steps}
    atomic_write_text(out / "units.json", json.dumps({**summary, "layers": units.summary(found, relative)}, indent=1))
    for layer in found:
        console.print(f"{layer.layer}: units {', '.join(str(u.unit) for u in layer.units)}; {units.describe(layer)}")
    console.print(f"wrote {page} and {out / 'units.json'} in {time.perf_counter() - started:.1f} s")
    return page


def explain(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(
        ...,
        metavar="[units] [CHECKPOINT] IMAGE",
        help="A checkpoint (.pt or run folder) from `cnnlab train`, then images or folders of them; or the word "
        "`units`, then the checkpoint (see --data).",
    ),
    out: Path = typer.Option(..., "--out", help="Folder for the heatmap PNGs or the units page (created if missing)."),
    layer: str = typer.Option(None, "--layer", help="Layer to explain (dotted name); default: the model's own."),
    class_name: str = typer.Option(None, "--class", help="Class name or index to explain; default: the predicted."),
    method: Method = typer.Option("gradcam", "--method", help="How to explain."),
    model: str = typer.Option(None, "--model", help="A zoo model (with --weights) instead of a CHECKPOINT."),
    weights: Path = typer.Option(None, "--weights", help="Weights file for --model (a local path)."),
    data: Path = typer.Option(None, "--data", help="units: folder of images to find each unit's top patches in."),
    layers: str = typer.Option(
        None, "--layers", help="units: comma-separated layers; default: the end of each stage (up to 4)."
    ),
    unit_list: str = typer.Option(
        None, "--units", help=f"units: how many units per layer (the most active; {DEFAULT_UNITS}), or a list: 0,5,9."
    ),
    steps: int = typer.Option(
        None, "--steps", min=0, help=f"units: activation-maximisation steps ({DEFAULT_STEPS}); 0 skips it."
    ),
    device: str = typer.Option("auto", "--device", help=f"{DEVICE_HELP} Heatmaps run there; `units` on the CPU."),
) -> None:
    """Heatmaps of what a classifier looks at: `cnnlab explain runs/classify/x-1 cat.png --out heatmaps/`.

    What its units respond to: `cnnlab explain units runs/classify/x-1 --data images/ --out units/` writes
    units.html: per layer and unit, the 9 image patches of --data that excite it most and an image optimised to
    excite it.
    """
    if (model is None) != (weights is None):
        raise ConfigError("--model and --weights go together", where="cnnlab explain", fix="pass both, or neither")
    use_device(ctx, device)
    if paths[0] == Path(UNITS):
        _units_command(paths[1:], out, layer, class_name, method, model, weights, data, layers, unit_list, steps)
        return
    units_only = {"--data": data, "--layers": layers, "--units": unit_list, "--steps": steps}
    given = [name for name, value in units_only.items() if value is not None]
    if given:
        raise ConfigError(
            f"{', '.join(given)} belong to `cnnlab explain units`",
            where="cnnlab explain",
            fix="cnnlab explain units CHECKPOINT --data FOLDER --out DIR",
        )
    if model is not None:
        classifier, images = load_pretrained(model, weights), expand_image_paths(paths)
    else:
        if len(paths) < 2:
            raise ConfigError(
                "need a CHECKPOINT and at least one IMAGE",
                where="cnnlab explain",
                fix="cnnlab explain runs/classify/NAME-1 IMAGE... --out DIR, or --model NAME --weights FILE IMAGE...",
            )
        classifier, images = load_classifier(paths[0]), expand_image_paths(paths[1:])
    for row in explain_images(classifier, images, out, method.value, layer, class_name):
        typer.echo(
            f"{row['image']}: {row['label']} (class {row['class']}, p={row['probability']:.3f}) -> {row['file']}"
        )


def _units_command(
    rest: list[Path],
    out: Path,
    layer: str | None,
    class_name: str | None,
    method: Method,
    model: str | None,
    weights: Path | None,
    data: Path | None,
    layers: str | None,
    unit_list: str | None,
    steps: int | None,
) -> None:
    usage = "cnnlab explain units CHECKPOINT --data FOLDER --out DIR, or --model NAME --weights FILE instead of it"
    heatmap_only = {"--layer": layer, "--class": class_name, "--method": None if method.value == "gradcam" else method}
    given = [name for name, value in heatmap_only.items() if value is not None]
    if given:
        raise ConfigError(f"{', '.join(given)} do not apply to `cnnlab explain units`", where="units", fix=usage)
    if data is None:
        raise ConfigError("`cnnlab explain units` needs --data FOLDER (images to search)", where="units", fix=usage)
    if len(rest) != (0 if model is not None else 1):
        raise ConfigError("give one CHECKPOINT, or --model NAME --weights FILE", where="units", fix=usage)
    classifier = load_pretrained(model, weights) if model is not None else load_classifier(rest[0])
    chosen = _parse_units(unit_list)
    names = [name.strip() for name in layers.split(",") if name.strip()] if layers else None
    explain_units(classifier, data, out, names, chosen, DEFAULT_STEPS if steps is None else steps)


def _parse_units(text: str | None) -> int | list[int]:
    """``"8"``: a count; ``"0,5,9"`` (or ``"5,"`` for one unit): channel indices."""
    if text is None:
        return DEFAULT_UNITS
    parts = [part.strip() for part in text.split(",")]
    try:
        if len(parts) == 1:
            return int(parts[0])
        return [int(part) for part in parts if part]
    except ValueError:
        raise ConfigError(
            f"--units must be a count or a comma-separated list of channels. Received: {text!r}",
            where="--units",
            fix="--units 8, or --units 0,5,9 (one unit: --units 5,)",
        ) from None


def _short(label: str) -> str:
    """The first name of an ImageNet-style label ("tabby, tabby cat" -> "tabby")."""
    return label.split(",")[0].strip()


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "class"
