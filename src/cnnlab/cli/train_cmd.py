"""``cnnlab train``: train a classifier on a dataset folder or a named dataset into a run folder."""

from __future__ import annotations

from pathlib import Path

import typer

from cnnlab.core.errors import ConfigError
from cnnlab.core.rundir import RunDir


def train(
    ctx: typer.Context,
    data: str = typer.Option(None, "--data", help="Folder of class folders, .npz, .csv, or fashion-mnist / mnist."),
    model: str = typer.Option(None, "--model", help="Model name (cnnlab models lists them)."),
    epochs: int = typer.Option(None, help="Training epochs."),
    batch_size: int = typer.Option(None, "--batch-size", help="Images per training step."),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate."),
    aug: str = typer.Option(None, "--aug", help="Augmentation preset (cnnlab augment --help lists them)."),
    img_size: int = typer.Option(None, "--img-size", help="Resize images to SxS when decoding."),
    optimizer: str = typer.Option(None, help="sgd | adam | adamw."),
    label_smoothing: float = typer.Option(
        None, "--label-smoothing", help="Share of each target spread over the other classes (e.g. 0.1)."
    ),
    precision: str = typer.Option(None, help="auto | fp32 | bf16 (auto: bf16 where the CPU has it natively)."),
    seed: int = typer.Option(None, help="Random seed (split, init, shuffling, augmentation)."),
    val_fraction: float = typer.Option(None, "--val-fraction", help="Share of train held out for validation."),
    fit: str = typer.Option(
        None, "--fit", help="How images of another aspect reach --img-size: stretch | crop (centre) | pad."
    ),
    weights: str = typer.Option(None, "--weights", help="Pretrained weights file for the model."),
    name: str = typer.Option(None, "--name", help="Run folder name (default: the model name)."),
    config: Path = typer.Option(None, "--config", help="run.yaml with the same settings; options override it."),
    data_dir: str = typer.Option(None, "--data-dir", help="Where named datasets live (default $CNNLAB_DATA)."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where run folders are created."),
    resume: Path = typer.Option(None, "--resume", help="Continue the run in this folder from its last checkpoint."),
    strict: bool = typer.Option(False, "--strict", help="Fail on the first unreadable image instead of skipping it."),
    task: str = typer.Option("classify", "--task", help="classify | segment (segment needs --masks)."),
    masks: str = typer.Option(None, "--masks", help="Segmentation: mask folder paired with --data by file name."),
    loss: str = typer.Option(None, "--loss", help="Segmentation loss: ce | bce | dice | bce_dice | focal."),
    num_classes: int = typer.Option(
        None,
        "--num-classes",
        help="Segmentation classes (default 2: binary masks); with --transfer, the new head's (must match the data).",
    ),
    transfer: str = typer.Option(
        None, "--transfer", help="features | finetune: reuse --weights (head on cached features, or fine-tune)."
    ),
    unfreeze: int = typer.Option(None, "--unfreeze", help="finetune: layer groups trained with the head (default 2)."),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Train with N processes on this machine (DDP via torchrun)."),
    sync_bn: bool = typer.Option(False, "--sync-bn", help="With --nproc: BatchNorm statistics over the global batch."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the model for training (10-25 s to compile)."),
    tta: str = typer.Option(
        None, "--tta", help="Score the held-out set with test-time augmentation too: flip | five_crop | ten_crop."
    ),
) -> None:
    """Train a classifier (or, with --task segment, a segmentation model) into runs/<task>/<name>-<n>/."""
    from cnnlab.classify import load_run_config, run_classification
    from cnnlab.segment import is_segment_config

    source = RunDir.open(resume).config if resume is not None else config  # a clear error if it is no run folder
    if nproc > 1:
        if task == "segment" or (source is not None and is_segment_config(source)):
            raise ConfigError("--nproc trains classifiers only", where="--nproc", fix="drop --nproc for --task segment")
        from cnnlab.train.distributed import launch_local

        launch_local(nproc, ["-m", "cnnlab.cli.app", *_worker_args(ctx)])
        return
    overrides = {
        "run": {"name": name, "tta": tta},
        "data": {
            "source": data,
            "data_dir": data_dir,
            "img_size": img_size,
            "aug": aug,
            "val_fraction": val_fraction,
            "fit": fit,
        },
        "model": {"name": model, "weights": weights},
        "train": {
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "optimizer": optimizer,
            "label_smoothing": label_smoothing,
            "precision": precision,
            "seed": seed,
            "compile": compile or None,  # None: keep the config's (a resumed run's) choice
        },
    }
    if strict:
        overrides["data"]["strict"] = True
    if task == "segment" or (source is not None and is_segment_config(source)):
        from cnnlab.segment import load_segment_config, run_segmentation

        overrides["segment"] = {"masks": masks, "loss": loss, "num_classes": num_classes}
        run_segmentation(load_segment_config(source, overrides), runs_dir=runs_dir, resume=resume)
        return
    overrides["transfer"] = {"mode": transfer, "unfreeze": unfreeze, "num_classes": num_classes}
    overrides["distributed"] = {"sync_bn": sync_bn or None}  # None: keep the config's (a resumed run's) choice
    run_classification(load_run_config(source, overrides), runs_dir=runs_dir, resume=resume)


def _worker_args(ctx: typer.Context) -> list[str]:
    """This command line as parsed, minus ``--nproc``: what each torchrun worker runs."""
    args = ["--debug"] if ctx.find_root().params.get("debug") else []
    args.append("train")
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if param.name == "nproc" or value is None or value is False:
            continue
        args += [param.opts[0]] if value is True else [param.opts[0], str(value)]
    return args
