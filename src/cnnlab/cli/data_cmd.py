"""``cnnlab data ...``: look at a dataset before training on it."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Inspect datasets (IDX, class folders, image/mask folders, .npz, CSV).", no_args_is_help=True)


@app.command("inspect")
def inspect(
    path: Path = typer.Argument(..., help="A dataset: IDX folder, class folders, split folders, .npz or .csv."),
    masks: Path = typer.Option(None, "--masks", help="Mask folder paired with PATH by file name (segmentation)."),
    grid: Path = typer.Option(Path("samples.png"), "--grid", help="Where to save the grid of sample images (PNG)."),
    per_class: int = typer.Option(8, "--per-class", min=1, max=32, help="Samples per row of the grid."),
    strict: bool = typer.Option(False, "--strict", help="Stop at the first unreadable file instead of skipping it."),
    seed: int = typer.Option(0, help="Seed for picking the grid's samples."),
) -> None:
    """Counts per class, image sizes and modes, per-channel mean/std, problems, and a sample grid."""
    import warnings

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from cnnlab.data.cache import DataWarning
    from cnnlab.data.inspect import inspect_source, sample_grid

    console = Console(highlight=False, soft_wrap=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # listed below, once, instead
        splits, summaries, findings = inspect_source(path, masks=masks, strict=strict)
    for summary in summaries:
        data = splits[summary.name]
        console.print(f"[bold]{path} : {summary.name}[/bold]  {summary.count:,} samples, {len(data.classes)} classes")
        table = Table("class", "pixels" if data.is_segmentation else "samples", "share")
        total = max(1, sum(summary.class_counts.values()))
        for name, count in summary.class_counts.items():
            table.add_row(name, f"{count:,}", f"{100 * count / total:.1f}%")
        console.print(table)
        common = ", ".join(f"{w}x{h} ({n})" for (w, h), n in summary.sizes.most_common(4))
        console.print(
            f"  sizes (WxH): {common}" + (f"; {len(summary.sizes)} distinct" if len(summary.sizes) > 4 else "")
        )
        if summary.sizes:
            (w0, h0), (w1, h1) = (f(summary.sizes, key=lambda s: s[0] * s[1]) for f in (min, max))
            console.print(f"  smallest {w0}x{h0}, largest {w1}x{h1} (by area)")
        console.print("  modes: " + ", ".join(f"{m} ({n})" for m, n in summary.modes.most_common()))
        note = f" (on images resized to {summary.resized_to}x{summary.resized_to})" if summary.resized_to else ""
        console.print(f"  mean {summary.mean}  std {summary.std}  (pixels scaled to [0, 1]){note}")
        for problem in summary.problems:
            console.print(f"  [yellow]skipped[/yellow] {escape(str(problem.path))}: {escape(problem.message)}")
    if masks is not None:
        from cnnlab.data.inspect import mask_encodings

        encodings = ", ".join(f"{kind} ({n} files)" for kind, n in mask_encodings(masks).most_common())
        console.print(f"  mask values: {encodings}")
    for finding in findings:
        console.print(f"[yellow]warning[/yellow] {finding}")
    skipped = sum(len(s.problems) for s in summaries)
    console.print(f"problems: {skipped} file(s) skipped, {len(findings)} other finding(s)")
    first = next(iter(splits))
    out = sample_grid(splits[first], grid, per_class=per_class, seed=seed, title=f"{path.name} / {first}")
    console.print(f"sample grid: {out}")


@app.command("moving-mnist")
def moving_mnist(
    out: Path = typer.Argument(..., help="New folder for the clips: OUT/<class>/<class>_<n>.npy."),
    mnist: Path = typer.Option(..., "--mnist", help="Folder with the MNIST IDX files (train-images-idx3-ubyte.gz...)."),
    clips: int = typer.Option(2000, "--clips", min=2, help="How many clips (balanced over the classes)."),
    task: str = typer.Option("direction", "--task", help="direction (left/right/up/down) | digit (0-9)."),
    frames: int = typer.Option(20, "--frames", min=2, help="Frames per clip."),
    size: int = typer.Option(64, "--size", min=28, help="Frame side in pixels."),
    seed: int = typer.Option(0, help="Seed for the digits, paths and speeds."),
) -> None:
    """Write Moving-MNIST-style clips (digits moving in a SIZExSIZE frame) for `cnnlab train --data OUT`."""
    from cnnlab.data.moving_mnist import write_moving_mnist

    if task not in ("direction", "digit"):
        from cnnlab.core.errors import ConfigError

        raise ConfigError(f"unknown clip task {task!r}", where="--task", fix="use direction or digit")
    folder = write_moving_mnist(out, mnist, clips, task=task, frames=frames, size=size, seed=seed)
    typer.echo(f"{clips} clips of {frames} frames, {size}x{size}, labelled by {task}: {folder}")
    typer.echo(f"Train a Conv3D net on them: cnnlab train --data {folder}")
