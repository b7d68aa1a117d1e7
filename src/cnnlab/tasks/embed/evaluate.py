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
from rich.markup import escape

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.core.rundir import atomic_write_text
from cnnlab.data.datasets import Dataset
from cnnlab.report.artefacts import EVALUATION_FILE, Plot
from cnnlab.report.html import write_report
from cnnlab.tasks.base import checkpoint_of, run_folder_of
from cnnlab.tasks.embed.embedder import PRETRAINED, Embedder
from cnnlab.tasks.embed.face_folder import load_people_folder
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
    the embedder's, and report how it does here). A run with fewer than 2 held-out people has identification
    scores only, and keeps the embedder's threshold.
    """
    console = console or Console()
    vectors = embedder.embed_uint8(data.images)
    labels = data.targets
    held = split.held if split is not None else torch.arange(len(data))
    people = len(torch.unique(labels[held]))
    plots = folder / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    verification: dict[str, Any] | None = None
    threshold = embedder.threshold
    if people >= 2:
        verification, threshold = _verification(vectors[held], labels[held], embedder.threshold, threshold_rule, plots)
        if split is not None and len(torch.unique(labels[split.train])) >= 2:
            head = fit_siamese_head(vectors[split.train], labels[split.train])
            chosen = verification["threshold"]
            verification["siamese_head"] = {
                "balanced_accuracy": pair_accuracy(head, vectors[held], labels[held]),
                "threshold_balanced_accuracy": 0.5 * (chosen["tar"] + 1 - chosen["far"]),
                "fitted_on": f"{len(split.train)} images of the training people (embedder frozen)",
            }
        summary = {
            "auc": verification["auc"],
            "eer": verification["eer"],
            "threshold": threshold,
            "tar_at_far_1e-3": verification["tar_at_far"]["0.001"]["tar"],
        }
    identification = _identification(vectors, labels, held, split)
    for key, value in identification.items():
        if "top1" in value:
            summary["ident_top1"] = value["top1"]
        elif "accuracy" in value:
            summary[f"{key}_acc"] = value["accuracy"]
    shown = torch.arange(len(data)) if split is None or not len(split.held) else held
    shown = shown if len(shown) <= 2000 else shown[torch.randperm(len(shown))[:2000]]
    plot_embedding_2d(vectors[shown], labels[shown], data.classes, plots / Plot.EMBEDDING_2D)
    pairs = hardest_pairs(vectors[held], labels[held], k=3) if people >= 2 else []
    if pairs:
        inputs = torch.stack([embedder.to_input(data.images[i].permute(1, 2, 0).numpy()) for i in held.tolist()])
        pixels = data.images[held].permute(0, 2, 3, 1).numpy()
        plot_hardest_pairs(embedder.model, inputs, pixels, pairs, plots / Plot.HARDEST_PAIRS, threshold=threshold)
    payload = {
        "task": "embed",
        "title": title,
        "images": len(data),
        "embedder": embedder.name,
        "verification_people": people if verification else 0,
        "verification_images": len(held) if verification else 0,
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
    _print(console, title, verification, identification, people, len(held))
    console.print(f"Plots in {plots}")
    return Scored(summary, threshold)


def _verification(
    vectors: torch.Tensor, labels: torch.Tensor, stored: float, rule: str | None, plots: Path
) -> tuple[dict[str, Any], float]:
    """The verification report over every pair, with the threshold chosen by ``rule`` (or ``stored``) and how it
    does here; draws the ROC and the distance histograms into ``plots``."""
    distances, same = pair_distances(vectors, labels)
    curve = roc(distances, same)
    report = verification_report(distances, same)
    threshold = choose_threshold(curve, rule) if rule else stored
    far, tar = curve.rates_at(threshold)
    report["threshold"] = {
        "value": threshold,
        "chosen": f"{rule} on these people" if rule else "stored with the model",
        "tar": tar,
        "far": far,
        "accuracy": curve.accuracy_at(threshold),
    }
    title = f"Verification ROC: {len(torch.unique(labels))} people, {curve.genuine:,} same pairs"
    plot_roc(curve, plots / Plot.ROC, threshold=threshold, title=title)
    plot_distance_histograms(distances, same, plots / Plot.DISTANCES, threshold=threshold)
    return report, threshold


def _identification(
    vectors: torch.Tensor, labels: torch.Tensor, held: torch.Tensor, split: PeopleSplit | None
) -> dict[str, Any]:
    """Top-1/top-5 of the training people's held-out images against their training images, and one-shot /
    five-shot identification of the verification people."""
    found: dict[str, Any] = {}
    if split is not None and len(split.probe):
        gallery, probes = split.train, split.probe
        known = len(torch.unique(labels[gallery]))
        found["training_people"] = {
            "gallery": len(gallery),
            "probes": len(probes),
            "people": known,
            **{
                f"top{k}": identification_accuracy(
                    vectors[gallery], labels[gallery], vectors[probes], labels[probes], k
                )
                for k in (1, 5)
                if k <= known
            },
        }
    if len(torch.unique(labels[held])) >= 2:
        for shots in sorted({1, ENROLMENT_SHOTS}):
            try:
                found[f"new_people_{shots}_shot"] = one_shot_accuracy(vectors[held], labels[held], shots=shots)
            except DataError as exc:  # too few images per person: reported, not fatal
                found[f"new_people_{shots}_shot"] = {"skipped": str(exc)}
    return found


def _print(
    console: Console,
    title: str,
    verification: dict[str, Any] | None,
    identification: dict[str, Any],
    people: int,
    images: int,
) -> None:
    if verification is not None:
        chosen = verification["threshold"]
        console.print(
            f"{title}: verification on {people} people ({images} images, {verification['pairs']['genuine']:,} same"
            f" / {verification['pairs']['impostor']:,} different pairs): AUC [bold green]{verification['auc']:.4f}"
            f"[/bold green], EER [bold green]{verification['eer']:.2%}[/bold green], TAR@FAR=1e-3 "
            f"{verification['tar_at_far']['0.001']['tar']:.2%}; threshold {chosen['value']:.3f} ({chosen['chosen']}):"
            f" TAR {chosen['tar']:.2%}, FAR {chosen['far']:.2%}"
        )
    else:
        console.print(f"{title}: no held-out people, so no verification score (identification only)")
    if verification is not None and "siamese_head" in verification:
        siamese = verification["siamese_head"]
        console.print(
            f"  siamese head (logistic regression on |f(a) - f(b)|): balanced pair accuracy "
            f"{siamese['balanced_accuracy']:.2%} (the threshold: {siamese['threshold_balanced_accuracy']:.2%})"
        )
    for key, value in identification.items():
        if "skipped" in value:
            console.print(f"  {key.replace('_', ' ')}: skipped ({escape(value['skipped'])})")
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
    channels, side, _ = embedder.input_size  # square: a run trains on side x side
    fit = "pad" if pretrained else embedder.fit  # the pretrained chip pads to a centred square
    faces = (embedder.meta.get("config") or {}).get("embed", {}).get("faces", "auto")  # as the run trained
    people = load_people_folder(data, side, channels, fit, faces)[0]
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
