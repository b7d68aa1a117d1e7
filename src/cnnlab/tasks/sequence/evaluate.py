"""Scoring a sequence model on a labelled set: accuracy, per-class scores, confusion (``evaluation.json`` and
its figures, as for images) and a picture of what the model looked at: the worst mistakes and one right answer
per class with their Grad-CAM over time (signals) or over the clip or volume.

``cnnlab evaluate RUN`` scores the run's own test split again; ``--data`` scores any other source of the same
kind (another UCR set's files, a folder of recordings) through the run's front-end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from cnnlab.core.config import from_dict, replace
from cnnlab.core.errors import ConfigError
from cnnlab.data.signals import SignalSet
from cnnlab.explain.cam import GradCAM
from cnnlab.report.artefacts import Plot, write_evaluation
from cnnlab.report.html import write_report
from cnnlab.tasks.base import checkpoint_of, run_folder_of
from cnnlab.tasks.sequence.config import SequenceRunConfig
from cnnlab.tasks.sequence.figures import plot_signal_cams, plot_volume_cams
from cnnlab.tasks.sequence.predictor import SequenceModel
from cnnlab.train.metrics import classification_summary

PICTURED = 8
"""Samples in the class-activation figure: up to half worst mistakes, the rest right answers (one per class)."""


def write_sequence_evaluation(folder: Path, model: SequenceModel, data: SignalSet, title: str) -> dict[str, Any]:
    """Score ``data`` (raw samples) with ``model``; write ``evaluation.json``, the confusion figures and
    :data:`Plot.SIGNAL_CAMS` into ``folder``; return the summary (``accuracy``, ``per_class``, ...)."""
    x = model.prepare(data.x)
    probs = model.predict_proba(x, prepared=True)
    summary = classification_summary(probs, data.y, data.classes)
    write_evaluation(folder, summary, title, None, {"data": title, "samples": len(data)})
    picks = pictured(summary, probs, data.y)
    maps = class_maps(model, x[picks], probs[picks].argmax(1))
    captions = [_caption(data, probs, int(i)) for i in picks]
    samples = x[picks].numpy()
    path = folder / "plots" / Plot.SIGNAL_CAMS
    heading = f"{title}: where the model looked (Grad-CAM of the predicted class)"
    if data.rank == 1:
        spectrogram = bool(model.audio and model.audio.representation == "logmel")
        plot_signal_cams(samples, maps.numpy(), captions, path, heading, spectrogram)
    else:
        plot_volume_cams(samples, maps.numpy(), captions, path, heading, clip=data.kind == "clip")
    return summary


def pictured(summary: dict[str, Any], probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Indices to draw: the worst mistakes (up to half of :data:`PICTURED`), then the most confident right
    answer of each class in turn.

    >>> s = {"worst": [{"index": 2}]}
    >>> pictured(s, torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]]), torch.tensor([0, 1, 1])).tolist()
    [2, 0, 1]
    """
    chosen = [w["index"] for w in summary["worst"][: PICTURED // 2]]
    right = (probs.argmax(1) == targets).nonzero().flatten()
    order = right[probs[right, targets[right]].argsort(descending=True)]
    for c in targets.unique().tolist():
        best = order[targets[order] == c][:1].tolist()
        chosen += best if len(chosen) < PICTURED else []
    return torch.tensor(chosen, dtype=torch.long)


def class_maps(model: SequenceModel, x: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Grad-CAM of ``classes`` for prepared samples ``x``: ``(n, T)`` or ``(n, D, H, W)`` in [0, 1]."""
    if len(x) == 0:
        return torch.zeros(x.shape[:1] + x.shape[2:])
    with GradCAM(model.model) as cam:
        return cam(x, target=classes)


def _caption(data: SignalSet, probs: torch.Tensor, i: int) -> str:
    truth, guess = data.classes[int(data.y[i])], data.classes[int(probs[i].argmax())]
    verdict = "right" if truth == guess else f"WRONG, true {truth}"
    return f"{data.names[i]}: predicted {guess} ({float(probs[i].max()):.0%}), {verdict}"


def evaluate_run(
    target: Path, data: str | None = None, split: str | None = None, out: Path | None = None
) -> dict[str, Any]:
    """``cnnlab evaluate RUN [--data SOURCE]``: the run's test split again, or every sample of ``SOURCE``
    (its test split when it has one: a UCR set's ``_TEST`` file) read through the run's front-end."""
    from cnnlab.tasks.sequence.sources import load_splits

    model = SequenceModel.load(target)
    config = from_dict(SequenceRunConfig, model.meta["config"])
    if split not in (None, "test"):
        raise ConfigError(f"a sequence run is scored on its test split, not {split!r}", where="--split", fix="drop it")
    if data is not None:
        config = replace(config, data=replace(config.data, source=data, val_fraction=0.0))
    splits = load_splits(config, model.audio)
    test = splits.test if splits.test is not None else splits.train
    if tuple(test.classes) != model.classes:
        raise ConfigError(
            f"{data or config.data.source} has classes {test.classes}; the model knows {model.classes}",
            where="--data",
            fix="evaluate on data with the classes the run was trained on",
        )
    folder = out or run_folder_of(Path(target)) or checkpoint_of(Path(target)).parent
    title = f"test split of {data or config.data.source}"
    summary = write_sequence_evaluation(folder, model, test, title)
    console = Console()
    console.print(f"Accuracy [bold green]{summary['accuracy']:.2%}[/bold green] on {len(test)} samples ({title})")
    if (folder / "config.yaml").is_file():
        console.print(f"Report: {write_report(folder)}")
    return summary
