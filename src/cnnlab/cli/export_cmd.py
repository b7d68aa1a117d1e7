"""``cnnlab export``: a trained checkpoint -> ONNX / TorchScript / safetensors, verified, with its model card."""

from __future__ import annotations

import time
from dataclasses import replace
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cnnlab.cli.options import DEVICE_HELP
from cnnlab.core.errors import ConfigError, RunDirError
from cnnlab.core.rundir import atomic_write_bytes
from cnnlab.export import FORMATS

OUT_FIX = "pass --out with a folder you can write to (on a disk with free space)"
Format = Enum("Format", {name: name for name in FORMATS}, type=str)  # typer shows and checks the choices


def default_out(checkpoint: Path) -> Path:
    """``<run folder>/export`` for a run folder or its ``checkpoints/*.pt``, else ``export`` beside the file.

    >>> default_out(Path("runs/classify/a-1/checkpoints/best.pt")).as_posix(), default_out(Path("w/m.pt")).as_posix()
    ('runs/classify/a-1/export', 'w/export')
    """
    if checkpoint.suffix == "" or checkpoint.is_dir():
        return checkpoint / "export"
    if checkpoint.parent.name == "checkpoints":
        return checkpoint.parent.parent / "export"
    return checkpoint.parent / "export"


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and write (then delete) a file in it; a :class:`RunDirError` naming it if not.

    >>> import tempfile
    >>> check_writable(Path(tempfile.mkdtemp()) / "export")
    """
    probe = folder / ".cnnlab-write-test"
    try:
        atomic_write_bytes(probe, b"")
    except RunDirError as exc:
        raise RunDirError(f"cannot write the export: {exc.what}", where=str(folder), fix=OUT_FIX) from None
    probe.unlink()


def export(
    checkpoint: Path = typer.Argument(..., help="A checkpoint (.pt) or run folder written by `cnnlab train`."),
    formats: list[Format] = typer.Option(
        ["onnx"], "--format", "-f", help="Export format; repeat for several (onnx, torchscript, safetensors)."
    ),
    out: Path = typer.Option(None, "--out", help="Output folder (default: <run folder>/export)."),
    stem: str = typer.Option("model", "--stem", help="File name stem: <stem>.onnx and its card <stem>.onnx.json, ..."),
    device: str = typer.Option(
        "auto",
        "--device",
        help=f"{DEVICE_HELP} Checked as for every command; the export itself always runs on the CPU (the file must "
        "run anywhere), and checkpoints load there whichever device trained them.",
    ),
) -> None:
    """Export a classifier or detector with a dynamic batch axis; each file is checked against PyTorch before it
    is kept (a detector's graph ends with its decoded boxes; NMS is left to the consumer).

    The model card `<stem>.<format>.json` beside the model holds the class names and the preprocessing
    (size, channel order, mean/std), so a consumer needs nothing else. Example:
    `cnnlab export runs/classify/cnn_small-1 --format onnx --format safetensors`.
    """
    from cnnlab.export import ModelCard, export_model
    from cnnlab.runtime.device import resolve_device
    from cnnlab.serve.model import load_trained

    resolve_device(device)  # the same answer to an absent device as every other command
    if not stem or "/" in stem or "\\" in stem or stem.startswith("."):
        raise ConfigError(f"--stem must be a plain file name stem. Received: {stem!r}", where="--stem")
    task, classifier = load_trained(checkpoint)
    if not task.exportable:
        raise ConfigError(
            f"exporting {task.name} models is not supported yet",
            where=str(checkpoint),
            fix="serve the checkpoint directly: cnnlab serve CHECKPOINT",
        )
    card = ModelCard.from_classifier(classifier, getattr(classifier.model, "gradcam_layer", None))
    card = replace(card, task=task.name)
    module = getattr(classifier, "export_module", classifier.model)  # a detector exports its decoding too
    folder = out or default_out(checkpoint)
    check_writable(folder)  # before the export, which can take a while
    console = Console(highlight=False)
    table = Table(
        "format", "file", "card", "size", "max |diff|", "top-1 agree", "seconds", title=f"{classifier.name} export"
    )
    for fmt in dict.fromkeys(f.value for f in formats):  # repeated formats once, in order
        start = time.perf_counter()
        try:
            result = export_model(module, card, folder, fmt, stem)
        except RunDirError as exc:  # e.g. the disk filled up; core's fix names --runs-dir, which export lacks
            raise RunDirError(exc.what, where=exc.where, fix=OUT_FIX) from None
        check = result.card.verification
        table.add_row(
            fmt,
            result.path.name,
            result.card_path.name,
            f"{result.path.stat().st_size / 1e6:.2f} MB",
            f"{check['max_abs_diff']:.2e}",
            "-" if check["top1_agreement"] is None else f"{check['top1_agreement']:.0%}",
            f"{time.perf_counter() - start:.1f}",
        )
    console.print(table)
    console.print(f"Verified on batch sizes {check['batch_sizes']} (atol {check['atol']}, rtol {check['rtol']}).")
    console.print(f"Folder: {folder}")
