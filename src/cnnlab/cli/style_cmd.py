"""``cnnlab style``: neural style transfer of one content image with one or more style images."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from cnnlab.core.errors import ConfigError
from cnnlab.data.images import image_info
from cnnlab.tasks.style.pipeline import StyleJob, planned_evaluations, run_style, with_optimizer
from cnnlab.tasks.style.transfer import StyleSettings, result_size


def _numbers(text: str | None, kind: type, option: str, example: str) -> tuple | None:
    """A comma-separated option (``0.7,0.3``) as a tuple of ``kind``; ``None`` when not given."""
    if text is None:
        return None
    try:
        return tuple(kind(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(
            f"not a comma-separated list of numbers: {text!r}", where=option, fix=f"e.g. {example}"
        ) from None


def _names(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(part.strip() for part in text.split(",") if part.strip())


def style(
    content: Path = typer.Argument(..., help="The content image (a photo)."),
    styles: list[Path] = typer.Argument(..., metavar="STYLE...", help="One or more style images (paintings)."),
    out: Path = typer.Option(None, "--out", help="Also write the result here (PNG); it is always in the run folder."),
    size: int = typer.Option(
        None, "--size", help="Longer side of the result in pixels (default: the content image's, at most 512)."
    ),
    steps: str = typer.Option(
        None,
        "--steps",
        help="Optimiser steps per level, coarse to fine (default 100,33,11 at 512 px); one number: "
        "one level at full size.",
    ),
    model: str = typer.Option("vgg19", "--model", help="Backbone: vgg19 (default) or any zoo model."),
    weights: str = typer.Option(
        None,
        "--weights",
        help="Backbone weights: a file or spec name; `random` for none (default for vgg19: "
        "vgg19.imagenet-conv, found via $CNNLAB_WEIGHTS).",
    ),
    optimizer: str = typer.Option(
        "auto", "--optimizer", help="auto (L-BFGS for VGG backbones, Adam for others) | lbfgs | adam."
    ),
    lr: float = typer.Option(0.02, "--lr", help="Adam's learning rate on pixels in [0, 1]."),
    init: str = typer.Option("content", "--init", help="Start from: content | noise | mixed (content + noise)."),
    alpha: float = typer.Option(10.0, "--content-weight", help="alpha, the content cost's weight (the course: 10)."),
    beta: float = typer.Option(
        400.0, "--style-weight", help="beta, the style cost's weight (the course: 40 over 2,500 Adam steps)."
    ),
    tv: float = typer.Option(0.0, "--tv-weight", help="Total-variation weight (smooths pixel noise)."),
    style_layers: str = typer.Option(None, "--style-layers", help="Comma-separated layers (default block1..5_conv1)."),
    layer_weights: str = typer.Option(
        None, "--style-layer-weights", help="One weight per style layer (default equal)."
    ),
    content_layer: str = typer.Option(None, "--content-layer", help="Content layer (default block4_conv2)."),
    blend: str = typer.Option(None, "--blend", help="With several styles: their weights, e.g. 0.7,0.3."),
    style_scale: float = typer.Option(1.0, "--style-scale", help="Style image size relative to the result's."),
    preserve_colour: bool = typer.Option(False, "--preserve-colour", help="Keep the content image's colours."),
    swag: bool = typer.Option(
        False, "--swag/--no-swag", help="SWAG: softmax-smoothed activations (Wang et al. 2021; off by default)."
    ),
    precision: str = typer.Option("auto", "--precision", help="auto | fp32 | bf16."),
    frame_every: int = typer.Option(10, "--frame-every", min=1, help="Save a frame every N evaluations."),
    seed: int = typer.Option(0, "--seed", help="Random seed (noise init, random backbones)."),
    name: str = typer.Option(None, "--name", help="Run folder name (default: <content>-<style>)."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where run folders are created."),
) -> None:
    """Paint CONTENT in the style of STYLE: `cnnlab style photo.jpg starry_night.jpg --out art.png`.

    Writes runs/style/<name>-<n>/ with result.png, frames, cost curves and report.html."""
    console = Console(stderr=True)
    if size is None:
        size, why = result_size(image_info(content)[0])
        console.print(why)
    settings = StyleSettings(
        size=size,
        steps=_numbers(steps, int, "--steps", "160,57,20 or 50"),
        optimizer=optimizer,
        learning_rate=lr,
        init=init,
        alpha=alpha,
        beta=beta,
        tv_weight=tv,
        style_blend=_numbers(blend, float, "--blend", "0.7,0.3"),
        style_scale=style_scale,
        style_layer_weights=_numbers(layer_weights, float, "--style-layer-weights", "0.2,0.2,0.2,0.2,0.2"),
        precision=precision,
        seed=seed,
        frame_every=frame_every,
    )
    job = StyleJob(
        content,
        tuple(styles),
        settings,
        model=model,
        weights=weights,
        style_layers=_names(style_layers),
        content_layer=content_layer,
        swag=swag,
        preserve_colour=preserve_colour,
        out=out,
        name=name,
    )
    job = with_optimizer(job)
    plan = planned_evaluations(job.settings)
    console.print("Plan: " + ", then ".join(f"{n} steps at {s} px" for s, n in plan) + f" ({job.settings.optimizer})")
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[costs]}"),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("style", total=sum(n for _, n in plan), costs="")

        def show(row: dict[str, object], image: object) -> None:
            costs = f"content {row['content']:.3g} style {row['style']:.3g}"
            bar.update(task, advance=1, description=f"{row['size']} px", costs=costs)

        results = run_style(job, runs_dir, show)
    typer.echo(
        f"Style cost {results['style_reduction']:,.0f}x lower in {results['seconds']:.1f} s. "
        f"Result: {Path(results['run']) / 'result.png'}" + (f" and {out}" if out else "")
    )
    typer.echo(f"Page: {Path(results['run']) / 'report.html'}")
