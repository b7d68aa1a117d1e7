"""``cnnlab evaluate``: metrics, confusion matrix, calibration and worst mistakes of trained checkpoints,
with test-time augmentation and ensembles; writes ``evaluation.json`` and figures, and refreshes the report."""

from __future__ import annotations

from pathlib import Path

import typer

from cnnlab.cli.options import COMPILE_HELP, DEVICE_HELP, PRECISION_HELP, use_device
from cnnlab.core.errors import ConfigError


def evaluate(
    ctx: typer.Context,
    target: Path = typer.Argument(..., help="Run folder or checkpoint (.pt) written by `cnnlab train`."),
    data: str = typer.Option(None, "--data", help="Labelled data (default: the run's own test/validation split)."),
    data_dir: str = typer.Option(None, "--data-dir", help="Where named datasets live (default $CNNLAB_DATA)."),
    split: str = typer.Option(None, "--split", help="Split of --data: test | val | train (default: the first found)."),
    tta: str = typer.Option("none", "--tta", help="Test-time augmentation: none | flip | five_crop | ten_crop."),
    ensemble: list[Path] = typer.Option(None, "--ensemble", help="Another checkpoint/run folder to average (repeat)."),
    out: Path = typer.Option(None, "--out", help="Folder for evaluation.json and plots (default: the run folder)."),
    top_k: int = typer.Option(5, "--top-k", min=1, help="k of the top-k accuracy."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Images per forward pass."),
    precision: str = typer.Option("auto", "--precision", help=PRECISION_HELP),
    compile: str = typer.Option("auto", "--compile", help=COMPILE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print evaluation.json instead of tables."),
    device: str = typer.Option(
        "auto", "--device", help=f"{DEVICE_HELP} Classifiers' forward passes run there; Grad-CAM on the CPU."
    ),
) -> None:
    """Evaluate a trained run. Classifiers: accuracy, top-k, per-class precision/recall/F1, confusion matrix,
    calibration, worst mistakes with Grad-CAM; `--tta flip` and `--ensemble CKPT` show what each adds.
    Detectors: mAP@0.5 (VOC all-point and VOC07 11-point) and COCO AP@[.5:.95] per class, PR curves,
    a confusion matrix with a background row, the images with the most errors."""
    from cnnlab.tasks.base import task_of

    use_device(ctx, device)
    task = task_of(target)
    if task.evaluate is not None:
        task.evaluate(target, data, split, out)
        return
    from rich.console import Console
    from rich.table import Table

    from cnnlab.report.html import write_report
    from cnnlab.runtime.inference import check_inference_options
    from cnnlab.tasks.base import run_folder_of
    from cnnlab.tasks.classify.evaluate import TTA_MODES, write_run_evaluation
    from cnnlab.tasks.classify.evaluate import evaluate as run_evaluation
    from cnnlab.tasks.classify.heldout import fit_images, held_out_data
    from cnnlab.tasks.classify.predictor import load_classifier

    if tta not in TTA_MODES:  # before minutes of loading data
        raise ConfigError(f"unknown test-time augmentation '{tta}'", where="--tta", fix=f"use one of {TTA_MODES}")
    check_inference_options(precision, compile)
    paths = [target, *(ensemble or [])]
    members = [load_classifier(path) for path in paths]
    for path, member in zip(paths[1:], members[1:], strict=True):
        if member.classes != members[0].classes or member.input_size != members[0].input_size:
            raise ConfigError(
                "ensemble members differ in classes or input size", where=str(path), fix="ensemble runs of one dataset"
            )
    held, title = held_out_data(target, data, data_dir, split, members[0])
    images = fit_images(held.images, members[0], data or str(target))
    result = run_evaluation(
        members, images, held.targets, members[0].classes, tta, batch_size, top_k, precision=precision, compile=compile
    )
    folder = out or run_folder_of(target) or target.parent / f"{target.stem}-evaluation"
    extra = {"data": title, "checkpoints": [m.source for m in members], "tta": tta, "inference": result.inference}
    written = write_run_evaluation(folder, members, images, result, title, extra)
    report = write_report(folder) if (folder / "config.yaml").is_file() else None
    if as_json:
        typer.echo(written.read_text(encoding="utf-8"))
        return
    console = Console()
    s = result.summary
    console.print(
        f"{title}: {s['images']:,} images. Accuracy [bold green]{s['accuracy']:.2%}[/bold green], "
        f"top-{s['top_k']} {s['top_k_accuracy']:.2%}, macro F1 {s['macro']['f1']:.4f}, "
        f"loss {s['loss']:.4f}, ECE {s['ece']:.2%}"
    )
    table = Table(title="Variants (same images)")
    for column in ("variant", "accuracy", "gain", "ECE", "wall time", "images/s"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    base = result.variants[0]["accuracy"]
    for v in result.variants:
        table.add_row(
            v["name"],
            f"{v['accuracy']:.2%}",
            f"{100 * (v['accuracy'] - base):+.2f} pt",
            f"{v['ece']:.2%}",
            f"{v['seconds']:.1f} s",
            f"{v['images_per_s']:,.0f}",
        )
    console.print(table)
    path = result.inference
    console.print(
        f"Inference: {path['precision']}{' + channels_last' if path['channels_last'] else ''}, "
        f"{'compiled' if path['compiled'] else 'eager'} ({path['reasons'][-1]})"
    )
    pairs = ", ".join(f"{p['true']} as {p['predicted']} ({p['count']})" for p in s["most_confused"][:5])
    console.print(f"Most confused: {pairs or 'none'}")
    console.print(f"Written: {written} and {folder / 'plots'}/" + (f"; report {report}" if report else ""))
