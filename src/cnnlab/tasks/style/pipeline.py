"""``cnnlab style``: images in, a run folder out (result, frames, loss curve, costs, a page).

The run folder ``runs/style/<content>-<style>-<n>/`` holds ``config.yaml``, ``log.txt``, ``metrics.csv``
(one row per optimiser evaluation), ``frames/`` (the image every few steps), ``result.png``,
``plots/costs.png``, ``results.json`` (costs before/after, time) and ``report.html``. Nothing is written
until the images have been read and the backbone built, so a bad argument leaves no folder behind.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image

from cnnlab.core.constants import IMAGENET_MEAN, IMAGENET_STD
from cnnlab.core.errors import ConfigError
from cnnlab.core.rundir import RunDir, atomic_write_bytes, atomic_write_text
from cnnlab.data.images import read_image
from cnnlab.models import create_model
from cnnlab.models.weights import CAFFE_STD, resolve_weights
from cnnlab.tasks.style.features import CAFFE_ACTIVATION_SCALE, StyleFeatures, default_layers
from cnnlab.tasks.style.page import write_page
from cnnlab.tasks.style.transfer import (
    Progress,
    StyleResult,
    StyleSettings,
    default_steps,
    level_sizes,
    style_blend,
    stylise,
)

DEFAULT_WEIGHTS = "vgg19.imagenet-conv"
MAX_INPUT_PIXELS = 40_000_000  # 40 MP: a larger input is refused rather than decoded into GBs


@dataclass(frozen=True)
class StyleJob:
    """One ``cnnlab style`` run: the images, the backbone and its layers, and the optimisation settings."""

    content: Path
    styles: tuple[Path, ...]
    settings: StyleSettings = dataclasses.field(default_factory=StyleSettings)
    model: str = "vgg19"
    weights: str | None = None  # a path or spec name; None: VGG-19's ImageNet conv weights; "random": none
    style_layers: tuple[str, ...] | None = None
    content_layer: str | None = None
    swag: bool = False  # SWAG softmax smoothing (Wang et al. 2021); measured: no help here (docs/style.md)
    preserve_colour: bool = False
    out: Path | None = None  # also copy the result here
    name: str | None = None


def load_rgb(path: Path) -> torch.Tensor:
    """An image file as ``(1, 3, H, W)`` floats in ``[0, 1]`` (any format Pillow reads; EXIF orientation applied)."""
    array = read_image(path, channels=3, max_pixels=MAX_INPUT_PIXELS)  # (H, W, 3) uint8
    if min(array.shape[:2]) < 16:
        raise ConfigError(
            f"image is {array.shape[1]}x{array.shape[0]} pixels; style transfer needs at least 16 on each side",
            where=str(path),
            fix="use a larger image",
        )
    return torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0).float() / 255


def build_features(job: StyleJob) -> tuple[StyleFeatures, tuple[str, ...], str, str]:
    """The backbone for ``job`` as a :class:`StyleFeatures`, its style layers, its content layer, and a line
    saying what it is."""
    weights = job.weights if job.weights is not None else (DEFAULT_WEIGHTS if job.model == "vgg19" else "random")
    if weights == "random":
        torch.manual_seed(job.settings.seed)
        model, spec, said = create_model(job.model), None, f"{job.model} with random weights"
    else:
        path, spec = resolve_weights(weights)
        model, said = create_model(job.model, weights=path), f"{job.model} with weights {path.name}"
    mean, std = (spec.mean, spec.std) if spec is not None else (IMAGENET_MEAN, IMAGENET_STD)
    style_default, content_default = default_layers(model)
    style_layers = job.style_layers or style_default
    content_layer = job.content_layer or content_default
    swag = job.swag
    scale = CAFFE_ACTIVATION_SCALE if spec is not None and spec.std == CAFFE_STD else 1.0
    net = StyleFeatures(model, [*style_layers, content_layer], mean, std, swag=swag, scale=scale)
    said += ", SWAG softmax on" if swag else ""
    return net, tuple(style_layers), content_layer, said


def run_style(job: StyleJob, runs_dir: Path = Path("runs"), progress: Progress | None = None) -> dict[str, Any]:
    """Stylise ``job.content`` with ``job.styles``; returns what ``results.json`` holds (with ``run``: its folder).

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name, colour in (("c.png", (200, 30, 30)), ("s.png", (20, 20, 220))):
    ...     Image.new("RGB", (40, 40), colour).save(folder / name)
    >>> settings = StyleSettings(size=32, steps=(3,), optimizer="adam", precision="fp32")
    >>> job = StyleJob(folder / "c.png", (folder / "s.png",), settings, model="vgg11", weights="random")
    >>> results = run_style(job, runs_dir=folder / "runs")
    >>> sorted(p.name for p in Path(results["run"]).iterdir() if p.is_file())
    ['config.yaml', 'log.txt', 'metrics.csv', 'report.html', 'result.png', 'results.json']
    """
    job = with_optimizer(job)
    style_blend(job.settings.style_blend, len(job.styles))  # every check before the run folder exists
    content = load_rgb(job.content)
    styles = [load_rgb(path) for path in job.styles]
    net, style_layers, content_layer, said = build_features(job)
    run = RunDir.create(runs_dir, "style", job.name or f"{job.content.stem}-{job.styles[0].stem}")
    run.checkpoints.rmdir()  # nothing is trained: a style run has no checkpoints
    (run.path / "frames").mkdir()
    atomic_write_text(run.config, yaml.safe_dump(_config(job, style_layers, content_layer, net.swag), sort_keys=False))
    run.log(f"backbone: {said}; content layer {content_layer}; style layers {', '.join(style_layers)}")
    frames: list[str] = []
    every = job.settings.frame_every

    def on_step(row: dict[str, Any], image: torch.Tensor) -> None:
        if row["evaluation"] % every == 0:
            name = f"frames/{row['evaluation']:05d}.jpg"
            atomic_write_bytes(run.path / name, encode(image, "JPEG"))
            frames.append(name)
        if progress is not None:
            progress(row, image)

    result = stylise(net, content, styles, job.settings, content_layer, on_step, style_layers)
    image = preserve_colour(result.image, content) if job.preserve_colour else result.image
    png = encode(image, "PNG")
    atomic_write_bytes(run.path / "result.png", png)
    if job.out is not None:
        atomic_write_bytes(job.out, png)
    run.write_metrics(result.history)
    results = _results(result, run, said)
    atomic_write_text(run.path / "results.json", json.dumps(results, indent=2))
    run.log(f"done in {result.seconds:.1f} s: style cost {_ratio(result)} lower, result {run.path / 'result.png'}")
    write_page(run, job.content, job.styles, frames, results)
    return results


def preserve_colour(image: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The result's luminance with the content's colours (Gatys et al. 2016, "Preserving colour"), in YCbCr.

    >>> grey, red = torch.full((1, 3, 4, 4), 0.5), torch.zeros(1, 3, 4, 4)
    >>> red[:, 0] = 1.0
    >>> out = preserve_colour(grey, red)
    >>> bool(out[0, 0, 0, 0] > out[0, 1, 0, 0])  # reddish now
    True
    """
    size = image.shape[-1], image.shape[-2]
    result = Image.fromarray(_uint8(image)).convert("YCbCr")
    colours = Image.fromarray(_uint8(content)).resize(size, Image.Resampling.BICUBIC).convert("YCbCr")
    merged = Image.merge("YCbCr", (result.getchannel("Y"), *colours.split()[1:])).convert("RGB")
    return torch.from_numpy(np.array(merged)).permute(2, 0, 1).unsqueeze(0).float() / 255


def encode(image: torch.Tensor, image_format: str) -> bytes:
    """``(1, 3, H, W)`` in ``[0, 1]`` as PNG or JPEG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(_uint8(image)).save(
        buffer, format=image_format, **({"quality": 85} if image_format == "JPEG" else {})
    )
    return buffer.getvalue()


def _uint8(image: torch.Tensor) -> np.ndarray:
    return (image[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # (H, W, 3)


def _config(job: StyleJob, style_layers: Sequence[str], content_layer: str, swag: bool) -> dict[str, Any]:
    values = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(job).items()}
    values["styles"] = [str(p) for p in job.styles]
    values["settings"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in values["settings"].items()}
    values.update(task="style", style_layers=list(style_layers), content_layer=content_layer, swag=swag)
    return values


def _results(result: StyleResult, run: RunDir, said: str) -> dict[str, Any]:
    return {
        "run": str(run.path),
        "backbone": said,
        "seconds": result.seconds,
        "evaluations": len(result.history),
        "size": list(result.image.shape[-2:]),
        "before": result.before,
        "after": result.after,
        "style_reduction": result.before["style"] / max(result.after["style"], 1e-12),
    }


def _ratio(result: StyleResult) -> str:
    return f"{result.before['style'] / max(result.after['style'], 1e-12):,.0f}x"


def with_optimizer(job: StyleJob) -> StyleJob:
    """``job`` with ``optimizer="auto"`` made concrete: L-BFGS for VGG backbones, Adam for the others (on
    EfficientNet-Lite0, L-BFGS stopped early without lowering the style cost; Adam at lr 0.02 transferred it).

    >>> with_optimizer(StyleJob(Path("c.png"), (Path("s.png"),), model="resnet18")).settings.optimizer
    'adam'
    """
    if job.settings.optimizer != "auto":
        return job
    chosen = "lbfgs" if job.model.startswith("vgg") else "adam"
    return dataclasses.replace(job, settings=dataclasses.replace(job.settings, optimizer=chosen))


def planned_evaluations(settings: StyleSettings) -> list[tuple[int, int]]:
    """``(size, steps)`` per level as :func:`stylise` will run them (for a progress bar and a time estimate).

    >>> planned_evaluations(StyleSettings(size=512))
    [(128, 100), (256, 33), (512, 11)]
    """
    steps = settings.steps or default_steps(settings.size, settings.optimizer)
    sizes = level_sizes(settings.size, len(steps))
    return list(zip(sizes, steps[-len(sizes) :], strict=True))
