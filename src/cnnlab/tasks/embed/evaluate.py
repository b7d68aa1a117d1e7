"""Scoring an embedder: verification (ROC, AUC, EER, TAR@FAR, the threshold) on people it never saw,
identification (nearest enrolled image) and one-shot identification; ``evaluation.json`` and pictures.

:func:`write_embedding_evaluation` serves both the end of ``cnnlab train --task embed`` (its held-out people,
and its training people's held-out images) and ``cnnlab evaluate RUN_OR_dlib_resnet29 --data PEOPLE``
(every person of another folder), which tests the threshold stored with the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.core.rundir import atomic_write_text
from cnnlab.data.datasets import Dataset, load_image_folder
from cnnlab.report.artefacts import EVALUATION_FILE, Plot
from cnnlab.report.html import write_report
from cnnlab.tasks.base import checkpoint_of, run_folder_of
from cnnlab.tasks.embed.embedder import PRETRAINED, Embedder
from cnnlab.tasks.embed.figures import (
    hardest_pairs,
    plot_distance_histograms,
    plot_embedding_2d,
    plot_hardest_pairs,
    plot_roc,
)
from cnnlab.tasks.embed.people import PeopleSplit
from cnnlab.tasks.embed.siamese import fit_siamese_head, pair_accuracy
from cnnlab.tasks.embed.verification import (
    choose_threshold,
    identification_accuracy,
    one_shot_accuracy,
    pair_distances,
    roc,
    verification_report,
)

ENROLMENT_SHOTS = 5
"""Images per person enrolled for the "identification of new people" score (ORL's protocol: 5 of 10)."""


@dataclass(frozen=True)
class Scored:
    """What the evaluation found: the headline numbers and the chosen threshold."""

    summary: dict[str, Any]
    threshold: float


def write_embedding_evaluation(
    folder: Path,
    embedder: Embedder,
    data: Dataset,
    title: str,
    split: PeopleSplit | None = None,
    threshold_rule: str | None = "eer",
    console: Console | None = None,
) -> Scored:
    """Score ``embedder`` on ``data``; writes ``evaluation.json`` and ``plots/`` into ``folder``.

    With ``split`` (a training run): verification on ``split.held`` (people never trained on), identification
    of the training people's ``probe`` images against their ``train`` images. Without: every image is a
    verification image. ``threshold_rule`` chooses a new threshold on the verification people (``None``: keep
    the embedder's, and report how it does here).
    """
    console = console or Console()
    vectors = embedder.embed_uint8(data.images)
    labels = data.targets
    held = split.held if split is not None else torch.arange(len(data))
    distances, same = pair_distances(vectors[held], labels[held])
    curve = roc(distances, same)
    verification = verification_report(distances, same)
    threshold = choose_threshold(curve, threshold_rule) if threshold_rule else embedder.threshold
    far, tar = curve.rates_at(threshold)
    verification["threshold"] = {
        "value": threshold,
        "chosen": f"{threshold_rule} on these people" if threshold_rule else "stored with the model",
        "tar": tar,
        "far": far,
        "accuracy": curve.accuracy_at(threshold),
    }
    if split is not None and len(torch.unique(labels[split.train])) >= 2:
        head = fit_siamese_head(vectors[split.train], labels[split.train])
        verification["siamese_head"] = {
            "balanced_accuracy": pair_accuracy(head, vectors[held], labels[held]),
            "threshold_balanced_accuracy": 0.5 * (tar + 1 - far),
            "fitted_on": f"{len(split.train)} images of the training people (embedder frozen)",
        }
    people = len(torch.unique(labels[held]))
    identification: dict[str, Any] = {}
    if split is not None and len(split.probe):
        gallery, probes = split.train, split.probe
        identification["training_people"] = {
            "gallery": len(gallery),
            "probes": len(probes),
            "people": len(torch.unique(labels[gallery])),
            **{
                f"top{k}": identification_accuracy(
                    vectors[gallery], labels[gallery], vectors[probes], labels[probes], k
                )
                for k in (1, 5)
                if k <= len(torch.unique(labels[gallery]))
            },
        }
    for shots in sorted({1, ENROLMENT_SHOTS}):
        try:
            identification[f"new_people_{shots}_shot"] = one_shot_accuracy(vectors[held], labels[held], shots=shots)
        except DataError as exc:  # too few images per person: reported, not fatal
            identification[f"new_people_{shots}_shot"] = {"skipped": str(exc)}
    plots = folder / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    plot_roc(curve, plots / Plot.ROC, threshold=threshold, title=f"Verification ROC: {people} people")
    plot_distance_histograms(distances, same, plots / Plot.DISTANCES, threshold=threshold)
    shown = held if len(held) <= 2000 else held[torch.randperm(len(held))[:2000]]
    plot_embedding_2d(vectors[shown], labels[shown], data.classes, plots / Plot.EMBEDDING_2D)
    pairs = hardest_pairs(vectors[held], labels[held], k=3)
    inputs = torch.stack([embedder.to_input(data.images[i].permute(1, 2, 0).numpy()) for i in held.tolist()])
    pixels = data.images[held].permute(0, 2, 3, 1).numpy()
    plot_hardest_pairs(embedder.model, inputs, pixels, pairs, plots / Plot.HARDEST_PAIRS, threshold=threshold)
    summary = {
        "auc": verification["auc"],
        "eer": verification["eer"],
        "threshold": threshold,
        "tar_at_far_1e-3": verification["tar_at_far"]["0.001"]["tar"],
    }
    for key, value in identification.items():
        if "top1" in value:
            summary["ident_top1"] = value["top1"]
        elif "accuracy" in value:
            summary[f"{key}_acc"] = value["accuracy"]
    payload = {
        "task": "embed",
        "title": title,
        "images": len(data),
        "embedder": embedder.name,
        "verification_people": people,
        "verification_images": len(held),
        "verification": verification,
        "identification": identification,
        "hardest_pairs": [
            {"a": data.paths[int(held[p.i])], "b": data.paths[int(held[p.j])], "distance": p.distance, "same": p.same}
            for p in pairs
        ],
        "conventions": {
            "distance": "Euclidean distance between embeddings; 'same person' when distance <= threshold",
            "eer": "FAR = FRR, interpolated between the two ROC points around the crossing",
            "tar_at_far": "the highest TAR with FAR <= the target",
        },
    }
    atomic_write_text(folder / EVALUATION_FILE, json.dumps(payload, indent=2) + "\n")
    console.print(
        f"{title}: verification on {people} people ({len(held)} images, {verification['pairs']['genuine']:,} same / "
        f"{verification['pairs']['impostor']:,} different pairs): AUC [bold green]{curve.auc:.4f}[/bold green], "
        f"EER [bold green]{curve.eer:.2%}[/bold green], TAR@FAR=1e-3 {summary['tar_at_far_1e-3']:.2%}; "
        f"threshold {threshold:.3f} ({verification['threshold']['chosen']}): TAR {tar:.2%}, FAR {far:.2%}"
    )
    if "siamese_head" in verification:
        siamese = verification["siamese_head"]
        console.print(
            f"  siamese head (logistic regression on |f(a) - f(b)|): balanced pair accuracy "
            f"{siamese['balanced_accuracy']:.2%} (the threshold: {siamese['threshold_balanced_accuracy']:.2%})"
        )
    for key, value in identification.items():
        if "skipped" in value:
            console.print(f"  {key.replace('_', ' ')}: skipped ({value['skipped']})")
        elif "top1" in value:
            console.print(
                f"  identification of training people ({value['probes']} held-out images, gallery "
                f"{value['gallery']}): top-1 [bold green]{value['top1']:.2%}[/bold green]"
                + (f", top-5 {value['top5']:.2%}" if "top5" in value else "")
            )
        else:
            console.print(
                f"  identification of new people, {key.split('_')[2]} enrolment image(s) each: "
                f"[bold green]{value['accuracy']:.2%}[/bold green] of {value['probes']} probes, "
                f"{value['people']} people"
            )
    console.print(f"Plots in {plots}")
    return Scored(summary, threshold)


def evaluate_run(
    target: Path, data: str | None = None, split: str | None = None, out: Path | None = None
) -> dict[str, Any]:
    """``cnnlab evaluate`` for an embedder (a run, or ``dlib_resnet29``): verification and identification on
    every person of ``data`` (default: the run's own held-out people), with the stored threshold tested."""
    embedder = Embedder.load(target)
    pretrained = str(target) in PRETRAINED
    if data is None:
        if pretrained:
            raise ConfigError("a pretrained embedder has no run data", where="--data", fix="pass --data PEOPLE_FOLDER")
        from cnnlab.tasks.embed.pipeline import load_people

        people, people_split, _ = load_people(embedder.meta["config"])
        title = f"held-out people of {embedder.meta['config']['data']['source']}"
        folder = out or run_folder_of(Path(target)) or Path(target).parent
        return write_embedding_evaluation(folder, embedder, people, title, people_split, None).summary
    channels, height, width = embedder.input_size
    fit = "pad" if pretrained else embedder.fit  # the pretrained chip pads to a centred square
    people = load_image_folder(data, size=(height, width), channels=channels, fit=fit)
    folder = out or (
        Path(f"{target}-evaluation")
        if pretrained
        else (run_folder_of(Path(target)) or checkpoint_of(Path(target)).parent)
    )
    console = Console()
    scored = write_embedding_evaluation(folder, embedder, people, f"{data}", None, None, console)
    if (folder / "config.yaml").is_file():
        console.print(f"Report: {write_report(folder)}")
    return scored.summary
