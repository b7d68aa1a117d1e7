"""``cnnlab kernels IMAGE --kernel sobel-x --out edges.png``: classic kernels on a real image."""

from __future__ import annotations

from pathlib import Path

import typer

from cnnlab.core.errors import ConfigError
from cnnlab.layers.kernels import list_kernels


def kernels(
    image: Path = typer.Argument(..., help="A PNG or JPEG (converted to greyscale)."),
    kernel: str = typer.Option(None, "--kernel", help=f"One of: {', '.join(list_kernels())}."),
    show_all: bool = typer.Option(False, "--all", help="Save a figure with every kernel side by side."),
    out: Path = typer.Option(None, "--out", help="Where to save (default IMAGE-KERNEL.png / IMAGE-kernels.png)."),
    padding: str = typer.Option("same", "--padding", help="same, valid or an int."),
    stride: int = typer.Option(1, "--stride", min=1, help="Step of the sliding window."),
) -> None:
    """Apply a classic kernel (Sobel, Scharr, Laplacian, blur, ...) and save the feature map."""
    from cnnlab.layers.kernels import apply_kernel, feature_map_image, kernel_gallery, load_grayscale

    if show_all == (kernel is not None):
        raise ConfigError(
            "pass exactly one of --kernel NAME or --all",
            where="cnnlab kernels",
            fix=f"names: {', '.join(list_kernels())}",
        )
    pad: str | int = padding if padding in ("same", "valid") else _int_padding(padding)
    grey = load_grayscale(image)  # (H, W) in [0, 1]
    if show_all:
        target = out or image.with_name(f"{image.stem}-kernels.png")
        kernel_gallery(grey, padding=pad).savefig(target, dpi=100)
        typer.echo(f"saved {target}: {image.name} and its feature map under each of {len(list_kernels())} kernels")
        return
    fm = apply_kernel(grey, kernel, padding=pad, stride=stride)
    target = out or image.with_name(f"{image.stem}-{kernel}.png")
    feature_map_image(fm).save(target)
    h, w = fm.shape
    typer.echo(
        f"saved {target}: {h}x{w} feature map of {kernel} on {grey.shape[0]}x{grey.shape[1]} "
        f"(values {fm.min().item():.3g}..{fm.max().item():.3g} scaled to 0..255)"
    )


def _int_padding(text: str) -> int:
    if not text.isdigit():
        raise ConfigError(f"padding must be same, valid or a non-negative int. Received: {text!r}", where="--padding")
    return int(text)
