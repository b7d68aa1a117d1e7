"""``cnnlab augment``: see what an augmentation preset does to real samples."""

from __future__ import annotations

from pathlib import Path

import typer

from cnnlab.data.presets import PRESETS


def augment(
    path: Path = typer.Argument(..., help="A dataset (any source `cnnlab data inspect` reads)."),
    preset: str = typer.Option(
        "mnist", "--preset", help=f"Augmentation preset: {', '.join(PRESETS.names())}.", show_default=True
    ),
    out: Path = typer.Option(Path("augment.png"), "--out", help="PNG to write."),
    masks: Path = typer.Option(None, "--masks", help="Mask folder paired with PATH (masks follow the geometry)."),
    samples: int = typer.Option(4, "--samples", min=1, max=16, help="Rows: how many source images."),
    variants: int = typer.Option(6, "--variants", min=1, max=16, help="Columns: augmented versions of each."),
    size: int = typer.Option(
        None, "--size", help="Resize images to SIZE x SIZE while decoding (folders of mixed sizes)."
    ),
    seed: int = typer.Option(0, help="Seed for the samples and the augmentation."),
) -> None:
    """Write a grid: each row is one real sample, then the preset applied to it several times."""
    from cnnlab.data.datasets import open_source
    from cnnlab.data.inspect import augment_grid

    make = PRESETS.get(preset)  # unknown names fail here with "did you mean ..."
    splits = open_source(path, masks=masks, size=size)
    data = next(iter(splits.values()))
    written = augment_grid(
        data, make, out, samples=samples, variants=variants, seed=seed, title=f"{path.name}: {preset}"
    )
    typer.echo(f"wrote {written} ({samples} samples x {variants} variants, preset '{preset}')")
