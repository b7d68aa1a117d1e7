"""The task contract and the ``TASKS`` registry: what ``cnnlab train/predict/export/serve`` look up by name.

A task (classify, segment, ...) lives in its own folder ``tasks/<task>/`` and is described by one
:class:`Task` entry: its run config type, how a run is trained, how a checkpoint becomes a predictor,
how image files are predicted, and what the server and exporter may do with it. Nothing outside
``tasks/<task>/`` branches on a task's name: the CLI, the server and the model card read the entry.

Run folders and checkpoints say which task wrote them (``config.yaml``'s ``task``, or a checkpoint's
own ``task``/``config.task``); :func:`task_of` reads that, so ``cnnlab predict RUN`` picks the task
without being told.

>>> from cnnlab.tasks import TASKS
>>> TASKS.names()
['classify', 'detect', 'embed', 'segment', 'sequence']
>>> TASKS.get("segmnt")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
cnnlab.core.errors.RegistryError: unknown task 'segmnt'; did you mean 'segment'? [known: classify, detect, ...]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from cnnlab.core.errors import ConfigError
from cnnlab.core.registry import Registry
from cnnlab.core.rundir import RunDir, load_checkpoint

RunFn = Callable[..., dict[str, Any]]
"""``run(config, runs_dir=Path("runs"), resume=None, console=None) -> results`` (also in ``results.json``)."""

EvaluateFn = Callable[..., dict[str, Any]]
"""``evaluate(target, data=None, split=None, out=None) -> headline numbers``; writes ``evaluation.json``."""


@dataclass(frozen=True)
class PredictOptions:
    """What ``cnnlab predict`` passes a task besides the checkpoint and the image files."""

    top_k: int = 5
    tta: str = "none"
    ensemble: Sequence[Path] = ()
    out: Path = Path("predictions")
    precision: str = "auto"
    compile: str = "auto"


@dataclass(frozen=True)
class Task:
    """One task as the CLI, the server and the exporter see it.

    ``routes`` are the server endpoints its predictor answers (``/predict``, ``/explain``, ``/segment``);
    ``exportable`` says whether ``cnnlab export`` can write it; ``distributed`` whether ``--nproc`` trains it;
    ``claims`` whether a ``--data`` source is unmistakably this task's (a UCR set, a folder of WAV files), so
    ``cnnlab train --data`` picks the task without ``--task``; ``predicts_images`` whether a folder given to
    ``cnnlab predict`` stands for the images in it.
    """

    name: str
    summary: str
    config_type: type
    run: RunFn
    load: Callable[[Path], Any]  # a checkpoint (.pt) -> the task's predictor
    predict: Callable[[Path, Sequence[Path], PredictOptions], list[dict[str, Any]]]
    routes: tuple[str, ...] = ()
    exportable: bool = False
    distributed: bool = False
    options: dict[str, str] = field(default_factory=dict)  # task-only CLI option -> "section.field" it sets
    evaluate: EvaluateFn | None = None  # `cnnlab evaluate RUN` for this task (None: the classifier's evaluation)
    pretrained: tuple[str, ...] = ()  # model names `load` and `evaluate` take in place of a run (dlib_resnet29)
    claims: Callable[[str | None, str | None], bool] | None = None  # (--data, --data-dir) is this task's data
    predicts_images: bool = True  # `cnnlab predict RUN FOLDER` means the folder's images (not: clips of frames)


TASKS: Registry[Task] = Registry("task")
"""Every task by name; ``tasks/__init__.py`` registers them (one line per task)."""


def config_task(path: Path, unnamed: str | None = "classify") -> str | None:
    """The ``task`` a run ``config.yaml`` names, ``unnamed`` when it names none (a round-1 run folder is a
    classifier's; a user's run.yaml that leaves the task out passes ``None``), ``None`` when the file is missing or
    unreadable.

    >>> import tempfile
    >>> file = Path(tempfile.mkdtemp()) / "config.yaml"
    >>> _ = file.write_text("task: segment\\nname: x\\n")
    >>> config_task(file), config_task(file.parent / "missing.yaml")
    ('segment', None)
    >>> _ = file.write_text("train:\\n  lr: 0.01\\n")
    >>> config_task(file), config_task(file, unnamed=None)
    ('classify', None)
    """
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None  # the config loader reports a missing or broken file with its own message
    task = values.get("task", unnamed) if isinstance(values, dict) else None
    return task if isinstance(task, str) else None


def run_folder_of(target: Path) -> Path | None:
    """The run folder a run folder or checkpoint belongs to (``<run>/checkpoints/x.pt``), else ``None``."""
    folder = target if target.is_dir() else target.parent.parent
    return folder if (folder / "config.yaml").is_file() else None


def checkpoint_of(target: Path) -> Path:
    """The checkpoint a run folder stands for (``checkpoints/best.pt``), or ``target`` itself."""
    return target / "checkpoints" / "best.pt" if target.is_dir() else target


def task_of(target: str | Path) -> Task:
    """The task that wrote a run folder or checkpoint: its run's ``config.yaml`` says, else the checkpoint's
    own ``task`` or ``config.task``; round-1 classifier checkpoints say nothing and are ``classify``."""
    for name in TASKS.names():
        if str(target) in TASKS.get(name).pretrained and not Path(target).exists():
            return TASKS.get(name)
    target = Path(target)
    folder = run_folder_of(target)
    name = config_task(folder / "config.yaml") if folder is not None else None
    if name is None:
        checkpoint = checkpoint_of(target)
        if not checkpoint.is_file():
            raise ConfigError(
                "no run folder or checkpoint here",
                where=str(target),
                fix="pass a run folder (runs/<task>/<name>-<n>) or its checkpoints/best.pt",
            )
        state = load_checkpoint(checkpoint)
        config = state.get("config") if isinstance(state, dict) else None
        if not isinstance(state, dict) or not isinstance(config, dict | None):
            raise ConfigError(
                "not a cnnlab checkpoint (it holds no run state)",
                where=str(checkpoint),
                fix="pass a run folder or a checkpoint written by cnnlab train",
            )
        name = state.get("task") or (config or {}).get("task") or "classify"
    return TASKS.get(name)


def resume_from(trainer: Any, checkpoint: Path | None, run: RunDir, console: Console) -> None:
    """Load a resumed run's ``checkpoint`` into ``trainer`` (a :class:`~cnnlab.train.trainer.Trainer`) and say
    where it goes on; nothing when the run starts afresh."""
    if checkpoint is not None:
        trainer.load_state_dict(load_checkpoint(checkpoint))
        console.print(f"Resuming {run.path} at epoch {trainer.epoch + 1}, step {trainer.step_in_epoch}")


def timed_fit(trainer: Any, train: Any, val: Any, epochs: int | None, run: RunDir, console: Console) -> dict[str, Any]:
    """Say the speed plan, fit, and return the start of a task's results (run folder, fit seconds, epochs), or
    ``{"interrupted": True, "run_dir": ...}`` after saying how to resume when the fit was stopped."""
    console.print("Speed plan: " + "; ".join(trainer.plan.reasons))
    started = time.perf_counter()
    trainer.fit(train, val, epochs=epochs)
    seconds = time.perf_counter() - started
    if trainer.stop_reason == "interrupted":
        console.print(f"[yellow]Interrupted.[/yellow] Checkpoint saved. Resume with --resume {run.path}")
        return {"interrupted": True, "run_dir": str(run.path)}
    return {"run_dir": str(run.path), "fit_seconds": round(seconds, 1), "epochs": trainer.epoch}


def task_for_data(source: str | None, data_dir: str | None = None) -> str | None:
    """The task whose ``claims`` takes ``--data source`` (``None``: no task claims it; classify is the default).

    >>> task_for_data("photos/"), task_for_data(None)
    (None, None)
    """
    for name in TASKS.names():
        claims = TASKS.get(name).claims
        if claims is not None and claims(source, data_dir):
            return name
    return None
