"""``cnnlab train``: train a classifier on a dataset folder or a named dataset into a run folder."""

from __future__ import annotations

from pathlib import Path

import typer

from cnnlab.cli.options import DEVICE_HELP
from cnnlab.core.errors import ConfigError
from cnnlab.core.rundir import RunDir


def train(
    ctx: typer.Context,
    data: str = typer.Option(
        None,
        "--data",
        help="Class folders, .npz, .csv, fashion-mnist / mnist; detect: data.yaml, VOC folder, COCO .json; embed: a "
        "folder per person.",
    ),
    model: str = typer.Option(None, "--model", help="Model name (cnnlab models lists them)."),
    epochs: int = typer.Option(None, help="Training epochs."),
    batch_size: int = typer.Option(None, "--batch-size", help="Images per training step."),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate."),
    aug: str = typer.Option(
        None,
        "--aug",
        help="Augmentation preset (cnnlab augment --help lists them), or auto (default): chosen from the data.",
    ),
    img_size: int = typer.Option(
        None, "--img-size", help="Resize images to SxS when decoding (detect: the longer side; default from the data)."
    ),
    optimizer: str = typer.Option(None, help="sgd | adam | adamw."),
    label_smoothing: float = typer.Option(
        None, "--label-smoothing", help="Share of each target spread over the other classes (e.g. 0.1)."
    ),
    precision: str = typer.Option(
        None, help="auto | fp32 | bf16 | fp16 (auto: bf16 where the CPU or GPU has it natively; fp16 is for GPUs)."
    ),
    device: str = typer.Option(None, "--device", help=DEVICE_HELP + " Default: the run's (auto)."),
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
    task: str = typer.Option(
        None,
        "--task",
        help="classify (default) | segment (needs --masks) | detect (boxes) | embed (people folders) | sequence "
        "(series, audio, clips, volumes; picked from --data when it is a UCR set or a folder of WAVs or clips).",
    ),
    masks: str = typer.Option(None, "--masks", help="Segmentation: mask folder paired with --data by file name."),
    patch_size: int = typer.Option(
        None, "--patch-size", help="Segmentation: training patch side in pixels (default: from the image size)."
    ),
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
    embedding_dim: int = typer.Option(None, "--embedding-dim", help="Embed: embedding size (default 128)."),
    mining: str = typer.Option(
        None, "--mining", help="Embed: batch_hard (default) | batch_hard_soft | semi_hard | contrastive."
    ),
    margin: float = typer.Option(None, "--margin", help="Embed: triplet margin alpha (default 0.2, the course's)."),
    faces: str = typer.Option(
        None, "--faces", help="Embed: auto (default: photos through the face front-end, crops whole) | detect | none."
    ),
    split: str = typer.Option(
        None,
        "--split",
        help="Sequence: the test split: auto | source (UCR _TEST files) | index (FSDD 0-4) | group (unseen "
        "speakers) | random.",
    ),
) -> None:
    """Train a model for a task (default: classify) into runs/<task>/<name>-<n>/. `cnnlab train --task segment
    --data IMAGES --masks MASKS` trains a segmentation model, `cnnlab train --task detect --data data.yaml` a
    detector, `cnnlab train --task embed --data PEOPLE` a face (or any) embedder; `--resume RUN` continues any run."""
    from cnnlab.runtime.device import check_device_request
    from cnnlab.tasks import TASKS
    from cnnlab.tasks.config import check_resume, load_run_config

    if device is not None:
        device = check_device_request(device)  # a misspelt device stops here; an absent one once the config is read
    source = RunDir.open(resume).config if resume is not None else config  # a clear error if it is no run folder
    # An unknown task stops here, before any run folder.
    chosen = TASKS.get(task_name(task, source, data, data_dir, resumed=resume is not None))
    specific = {"masks": masks, "loss": loss, "num_classes": num_classes, "patch_size": patch_size}
    specific |= {"transfer": transfer, "unfreeze": unfreeze, "tta": tta, "sync_bn": sync_bn or None}
    specific |= {"embedding_dim": embedding_dim, "mining": mining, "margin": margin, "split": split, "faces": faces}
    overrides = {
        "run": {"name": name},
        "data": {
            "source": data,
            "data_dir": data_dir,
            "img_size": img_size,
            "aug": aug,
            "val_fraction": val_fraction,
            "fit": fit,
            "strict": strict or None,
        },
        "model": {"name": model, "weights": weights},
        "train": {
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "optimizer": optimizer,
            "label_smoothing": label_smoothing,
            "precision": precision,
            "device": device,
            "seed": seed,
            "compile": compile or None,  # None: keep the config's (a resumed run's) choice
        },
    }
    for option, value in specific.items():
        if value is None:
            continue
        if option not in chosen.options:
            owners = [t for t in TASKS.names() if option in TASKS.get(t).options]
            raise ConfigError(
                f"--{option.replace('_', '-')} does not apply to --task {chosen.name}",
                where=f"--{option.replace('_', '-')}",
                fix=f"drop it (it is an option of --task {' / '.join(owners)})",
            )
        section, field = chosen.options[option].split(".")
        overrides.setdefault(section, {})[field] = value
    run_config = load_run_config(chosen.config_type, source, overrides)
    if resume is not None:
        check_resume(load_run_config(chosen.config_type, source, {}), run_config)
    _check_device(run_config, nproc)
    if nproc > 1:
        if not chosen.distributed:
            raise ConfigError(f"--nproc does not train --task {chosen.name}", where="--nproc", fix="drop --nproc")
        from cnnlab.train.distributed import launch_local

        launch_local(nproc, ["-m", "cnnlab.cli.app", *_worker_args(ctx)])
        return
    results = chosen.run(run_config, runs_dir=runs_dir, resume=resume)
    if results.get("interrupted"):
        raise typer.Exit(130)  # a stopped run is not a finished one: `train && evaluate` must not go on


def _check_device(run_config: object, nproc: int) -> None:
    """Stop before any data is read when the run's device is not here (with ``--nproc N`` on CUDA: N GPUs)."""
    from cnnlab.runtime.device import resolve_device
    from cnnlab.train.distributed import World, rank_device

    train = getattr(run_config, "train", None)
    if train is None:
        return
    resolve_device(train.device)
    if nproc > 1:
        rank_device(train.device, World(rank=nproc - 1, local_rank=nproc - 1, size=nproc))  # the last rank's


def task_name(
    option: str | None, source: Path | None, data: str | None = None, data_dir: str | None = None, resumed: bool = False
) -> str:
    """The task to train: ``--task``, else the one the ``--config`` file or ``resumed`` run names (a run folder
    without one is a round-1 classifier's), else the task whose data ``--data`` is (a UCR set or a folder of WAV
    files is a sequence run), else classify; a ``--task`` that contradicts the resumed run's is an error.

    >>> task_name(None, None, "photos/"), task_name("segment", None)
    ('classify', 'segment')
    """
    from cnnlab.tasks.base import config_task, task_for_data

    named = config_task(source, unnamed="classify" if resumed else None) if source is not None else None
    if option is not None and named is not None and option != named:
        raise ConfigError(f"--task {option} contradicts the run's task '{named}'", where=str(source), fix="drop --task")
    return option or named or task_for_data(data, data_dir) or "classify"


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
