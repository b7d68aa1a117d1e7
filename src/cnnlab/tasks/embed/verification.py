"""Scores of an embedder: verification (ROC, AUC, EER, TAR at a FAR, LFW-style accuracy) and identification.

Verification asks "same person?" for a pair of images and answers yes when the Euclidean distance of their
embeddings is at most a threshold ``t``. Over all pairs of a labelled set, genuine pairs (same person) accepted
give the true accept rate TAR, impostor pairs (different people) accepted the false accept rate FAR, and the
false reject rate is FRR = 1 - TAR. :func:`roc` traces TAR against FAR over every threshold (one point per
distinct distance, ties grouped exactly as scikit-learn's ``roc_curve`` groups equal scores), and
:func:`verification_report` gathers the usual numbers into a JSON-ready dict.

Identification asks "who is it?": a probe embedding takes the label of its nearest gallery embedding
(:func:`identification_accuracy`, :func:`one_shot_accuracy`, :func:`leave_one_out_accuracy`).

Only torch and numpy run here; distances are computed from differences (never ``|a|^2 + |b|^2 - 2ab``), so
two identical embeddings are exactly 0 apart.

>>> import torch
>>> embeddings = torch.tensor([[0.0, 1.0], [0.0, 0.9], [1.0, 0.0], [0.9, 0.1]])
>>> distances, same = pair_distances(embeddings, torch.tensor([0, 0, 1, 1]))
>>> curve = roc(distances, same)
>>> curve.auc, curve.eer, curve.accuracy_at(0.2)
(1.0, 0.0, 1.0)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from cnnlab.core.errors import ConfigError, DataError, ShapeError

PAIRS_PER_BLOCK = 1 << 22
"""Distances computed at once by :func:`pair_distances` and the nearest-neighbour searches (16 MB of float32)."""

RULES = ("eer", "accuracy", "far=<rate>")
"""The threshold rules :func:`choose_threshold` knows (``far=1e-3``: the best TAR with FAR at most 0.1%)."""


@dataclass(frozen=True)
class Roc:
    """TAR against FAR over every distance threshold, and the numbers read off it.

    Point ``k`` accepts the pairs with distance ``<= thresholds[k]``. ``thresholds`` ascend; the first one lies
    just below the smallest distance (nothing accepted: FAR = TAR = 0), each later one is a distinct distance,
    and the last accepts every pair (FAR = TAR = 1). ``accepted_genuine`` / ``accepted_impostor`` count the pairs
    accepted at each point, out of ``genuine`` and ``impostor`` pairs. ``auc`` is the trapezoidal area under TAR
    against FAR (equal to scikit-learn's ``roc_auc_score(same, -distances)``, ties included). ``eer`` is the equal
    error rate, where FAR = FRR: linear interpolation between the last point with FAR < FRR and the next one, and
    ``eer_threshold`` the threshold interpolated with the same weight.
    """

    thresholds: np.ndarray
    far: np.ndarray
    tar: np.ndarray
    accepted_genuine: np.ndarray
    accepted_impostor: np.ndarray
    genuine: int
    impostor: int
    auc: float
    eer: float
    eer_threshold: float

    def rates_at(self, threshold: float) -> tuple[float, float]:
        """``(far, tar)`` when the pairs with distance ``<= threshold`` are accepted.

        >>> curve = roc([0.1, 0.4, 0.3, 0.5], [True, True, False, False])
        >>> curve.rates_at(0.35), curve.rates_at(-1.0), curve.rates_at(9.0)
        ((0.5, 0.5), (0.0, 0.0), (1.0, 1.0))
        """
        k = self._index(threshold)
        return float(self.far[k]), float(self.tar[k])

    def accuracy_at(self, threshold: float) -> float:
        """The share of pairs judged right when the pairs with distance ``<= threshold`` are called "same".

        >>> roc([0.1, 0.4, 0.3, 0.5], [True, True, False, False]).accuracy_at(0.2)  # 0.1 in, 0.3 and 0.5 out
        0.75
        """
        k = self._index(threshold)
        right = self.accepted_genuine[k] + (self.impostor - self.accepted_impostor[k])
        return float(right / (self.genuine + self.impostor))

    def tar_at_far(self, far_target: float) -> tuple[float, float]:
        """``(tar, threshold)``: the highest TAR among the points with FAR ``<= far_target`` (the usual convention:
        no interpolation between points). The threshold is the smallest one reaching that TAR (the lowest FAR).

        >>> roc([0.1, 0.4, 0.3, 0.5], [True, True, False, False]).tar_at_far(0.0)
        (0.5, 0.1)
        """
        if not 0.0 <= far_target <= 1.0:  # NaN fails too
            raise ConfigError(f"a false accept rate of {far_target}", where="far_target", fix="use a rate in [0, 1]")
        k = int(np.searchsorted(self.far, far_target, side="right")) - 1  # far ascends and far[0] = 0
        k = int(np.searchsorted(self.accepted_genuine, self.accepted_genuine[k], side="left"))
        return float(self.tar[k]), float(self.thresholds[k])

    def best_accuracy(self) -> tuple[float, float]:
        """``(accuracy, threshold)`` of the point judging most pairs right (the first such point on a tie). The
        threshold lies halfway between the largest distance accepted there and the next distance: any value in
        between gives the same accuracy, and the middle keeps the widest margin for pairs not seen yet.

        >>> roc([0.1, 0.4, 0.3, 0.5], [True, True, False, False]).best_accuracy()  # halfway from 0.1 to 0.3
        (0.75, 0.2)
        """
        right = self.accepted_genuine + (self.impostor - self.accepted_impostor)
        k = int(np.argmax(right))
        upper = self.thresholds[min(k + 1, len(self.thresholds) - 1)]
        return float(right[k] / (self.genuine + self.impostor)), float((self.thresholds[k] + upper) / 2)

    def _index(self, threshold: float) -> int:
        return max(int(np.searchsorted(self.thresholds, threshold, side="right")) - 1, 0)


@dataclass(frozen=True)
class KFoldAccuracy:
    """LFW-style accuracy: per fold, the threshold of best accuracy on the other folds, scored on this one."""

    mean: float
    std: float
    accuracies: tuple[float, ...]
    thresholds: tuple[float, ...]


def pair_distances(embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean distances of all unordered pairs ``i < j`` (row-major order), and ``same`` (labels equal).

    ``N`` embeddings give ``N (N - 1) / 2`` pairs: the result is that long (N = 4000: 8 million pairs, 32 MB of
    float32 distances plus 8 MB of flags), while the work runs in blocks of rows so that no more than
    :data:`PAIRS_PER_BLOCK` distances are held at once on top of it. Distances keep the embeddings' float dtype.

    >>> import torch
    >>> distances, same = pair_distances(torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]]), torch.tensor([0, 0, 1]))
    >>> distances.tolist(), same.tolist()  # pairs (0, 1), (0, 2), (1, 2)
    ([5.0, 0.0, 5.0], [True, False, False])
    """
    vectors, labels = _embeddings_and_labels(embeddings, labels)
    n = vectors.shape[0]
    block = max(1, PAIRS_PER_BLOCK // max(n, 1))
    columns = torch.arange(n, device=vectors.device)
    distances, same = [], []
    for start in range(0, max(n - 1, 0), block):
        rows = torch.arange(start, min(start + block, n - 1), device=vectors.device)
        upper = columns[None, :] > rows[:, None]  # (B, N): the pairs i < j of these rows
        distances.append(_distances(vectors[rows], vectors)[upper])
        same.append((labels[rows][:, None] == labels[None, :])[upper])
    if not distances:
        return vectors.new_zeros(0), torch.zeros(0, dtype=torch.bool, device=vectors.device)
    return torch.cat(distances), torch.cat(same)


def roc(distances: torch.Tensor | np.ndarray | list[float], same: torch.Tensor | np.ndarray | list[bool]) -> Roc:
    """The ROC of "same person if distance ``<= t``" over every threshold ``t`` (see :class:`Roc`).

    Needs at least one genuine and one impostor pair, so at least 2 people with at least 2 images each.

    >>> curve = roc([0.1, 0.4, 0.3, 0.5], [True, True, False, False])
    >>> curve.far.tolist(), curve.tar.tolist(), curve.auc, curve.eer
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0], 0.75, 0.5)
    """
    values, flags = _pairs(distances, same)
    order = np.argsort(values, kind="stable")
    return _roc_sorted(values[order], flags[order])


def choose_threshold(curve: Roc, rule: str = "eer") -> float:
    """A distance threshold picked on ``curve`` by ``rule``.

    ``"eer"``: the equal-error threshold (interpolated, see :class:`Roc`); ``"far=X"``: the threshold of
    :meth:`Roc.tar_at_far` ``(X)``, the highest TAR with FAR at most ``X``; ``"accuracy"``: the threshold judging
    most pairs right (:meth:`Roc.best_accuracy`, what LFW's protocol fits on its training folds).

    >>> curve = roc([0.1, 0.4, 0.3, 0.5], [True, True, False, False])
    >>> choose_threshold(curve, "far=0.01"), choose_threshold(curve, "accuracy")
    (0.1, 0.2)
    """
    if rule == "eer":
        return curve.eer_threshold
    if rule == "accuracy":
        return curve.best_accuracy()[1]
    if rule.startswith("far="):
        try:
            target = float(rule[4:])
        except ValueError:
            target = math.nan
        if 0.0 <= target <= 1.0:
            return curve.tar_at_far(target)[1]
    raise ConfigError(f"unknown threshold rule '{rule}'", where="rule", fix=f"use one of {RULES}, e.g. 'far=1e-3'")


def kfold_accuracy(
    distances: torch.Tensor | np.ndarray, same: torch.Tensor | np.ndarray, folds: int = 10, seed: int = 0
) -> KFoldAccuracy:
    """LFW's protocol on these pairs: split them into ``folds`` folds (shuffled with ``seed``, genuine and
    impostor pairs spread evenly), fit the best-accuracy threshold on the other folds, score the held-out one.

    ``std`` is the population standard deviation over the folds (as the usual LFW scripts report). The folds
    split pairs, not people: an image may appear in pairs of several folds.

    >>> result = kfold_accuracy([0.1, 0.2, 0.3, 0.8, 0.9, 1.0], [True, True, True, False, False, False], folds=3)
    >>> result.mean, result.std, len(result.accuracies)
    (1.0, 0.0, 3)
    """
    values, flags = _pairs(distances, same)
    if folds < 2:
        raise ConfigError(f"{folds} folds", where="folds", fix="use at least 2 folds (LFW uses 10)")
    if min(int(flags.sum()), int((~flags).sum())) < 2:
        raise DataError(
            "k-fold accuracy needs at least 2 genuine and 2 impostor pairs, so every training part has both",
            where="pairs",
            fix="add images: at least 2 people with at least 2 images each, and more pairs than that",
        )
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(values), dtype=np.int64)
    for kind in (flags, ~flags):
        members = rng.permutation(np.flatnonzero(kind))
        for k, part in enumerate(np.array_split(members, folds)):
            fold_of[part] = k
    order = np.argsort(values, kind="stable")  # sorted once: each training part is a subsequence of it
    values, flags, fold_of = values[order], flags[order], fold_of[order]
    accuracies, thresholds = [], []
    for k in range(folds):
        held = fold_of == k
        if not held.any():
            continue
        threshold = _roc_sorted(values[~held], flags[~held]).best_accuracy()[1]
        accepted = values[held] <= threshold
        accuracies.append(float(np.mean(accepted == flags[held])))
        thresholds.append(threshold)
    return KFoldAccuracy(float(np.mean(accuracies)), float(np.std(accuracies)), tuple(accuracies), tuple(thresholds))


def verification_report(distances: torch.Tensor | np.ndarray, same: torch.Tensor | np.ndarray) -> dict[str, Any]:
    """The verification numbers as a JSON-ready dict: pair counts, AUC, EER and its threshold, TAR at FAR 1e-2 and
    1e-3 with their thresholds, the best accuracy and its threshold, 10-fold LFW-style accuracy (``None`` with
    fewer than 2 pairs of a kind), and the mean / median / std of genuine and impostor distances.

    >>> report = verification_report([0.1, 0.2, 0.3, 0.8, 0.9, 1.0], [True, True, True, False, False, False])
    >>> report["pairs"], report["auc"], report["eer"], report["kfold_accuracy"]["mean"]
    ({'genuine': 3, 'impostor': 3}, 1.0, 0.0, 1.0)
    """
    values, flags = _pairs(distances, same)
    curve = roc(values, flags)
    accuracy, accuracy_threshold = curve.best_accuracy()
    at_far = {}
    for target in (1e-2, 1e-3):
        tar, threshold = curve.tar_at_far(target)
        at_far[f"{target:g}"] = {"tar": tar, "threshold": threshold}
    enough = min(curve.genuine, curve.impostor) >= 2
    return {
        "pairs": {"genuine": curve.genuine, "impostor": curve.impostor},
        "auc": curve.auc,
        "eer": curve.eer,
        "eer_threshold": curve.eer_threshold,
        "tar_at_far": at_far,
        "best_accuracy": {"accuracy": accuracy, "threshold": accuracy_threshold},
        "kfold_accuracy": _kfold_summary(values, flags) if enough else None,
        "distances": {"genuine": _summary(values[flags]), "impostor": _summary(values[~flags])},
    }


def identification_accuracy(
    gallery: torch.Tensor,
    gallery_labels: torch.Tensor,
    probes: torch.Tensor,
    probe_labels: torch.Tensor,
    k: int = 1,
) -> float:
    """The share of probes whose person is among the ``k`` gallery people nearest to it (a person's distance is
    that of their nearest gallery image). ``k = 1`` is nearest-neighbour identification; a probe whose person
    has no gallery image counts as wrong.

    >>> import torch
    >>> gallery, people = torch.tensor([[0.0, 0.0], [0.0, 0.2], [1.0, 0.0]]), torch.tensor([0, 0, 1])
    >>> probes = torch.tensor([[0.1, 0.1], [0.6, 0.0]])
    >>> identification_accuracy(gallery, people, probes, torch.tensor([0, 0])), identification_accuracy(
    ...     gallery, people, probes, torch.tensor([0, 0]), k=2)
    (0.5, 1.0)
    """
    gallery, gallery_labels = _embeddings_and_labels(gallery, gallery_labels, "gallery")
    probes, probe_labels = _embeddings_and_labels(probes, probe_labels, "probes")
    if gallery.shape[1] != probes.shape[1]:
        raise ShapeError(
            f"gallery embeddings have {gallery.shape[1]} dimensions, probes {probes.shape[1]}",
            where="probes",
            fix="embed both with the same model",
        )
    if not len(gallery) or not len(probes):
        raise DataError("identification needs gallery and probe images", where="gallery", fix="pass at least one each")
    people, person_of = torch.unique(gallery_labels, return_inverse=True)
    if not 1 <= k <= len(people):
        raise ConfigError(f"top-{k} of {len(people)} gallery people", where="k", fix=f"use 1..{len(people)}")
    hits = 0
    block = max(1, PAIRS_PER_BLOCK // len(gallery))
    for start in range(0, len(probes), block):
        distances = _distances(probes[start : start + block], gallery)  # (B, G)
        nearest = torch.full((len(distances), len(people)), math.inf, dtype=distances.dtype, device=distances.device)
        nearest.scatter_reduce_(1, person_of.expand_as(distances), distances, reduce="amin")  # (B, people)
        ranked = people[nearest.topk(k, dim=1, largest=False).indices]  # (B, k)
        hits += int((ranked == probe_labels[start : start + block, None]).any(dim=1).sum())
    return hits / len(probes)


def one_shot_accuracy(
    embeddings: torch.Tensor, labels: torch.Tensor, shots: int = 1, seed: int = 0
) -> dict[str, float | int]:
    """Enrol ``shots`` random images of each person (the gallery), identify their other images (the probes) by
    their nearest gallery image. People with ``<= shots`` images are left out (they would have no probe).

    Returns ``accuracy`` and the counts ``people``, ``gallery``, ``probes`` and ``skipped_people``.

    >>> import torch
    >>> embeddings = torch.tensor([[0.0], [0.1], [0.2], [5.0], [5.1], [9.0]])
    >>> one_shot_accuracy(embeddings, torch.tensor([0, 0, 0, 1, 1, 2]))
    {'accuracy': 1.0, 'people': 2, 'gallery': 2, 'probes': 3, 'skipped_people': 1}
    """
    if shots < 1:
        raise ConfigError(f"{shots} shots", where="shots", fix="enrol at least 1 image per person")
    vectors, labels = _embeddings_and_labels(embeddings, labels)
    rng = np.random.default_rng(seed)
    enrolled, probed, skipped = [], [], 0
    for person in torch.unique(labels).tolist():
        images = np.flatnonzero((labels == person).cpu().numpy())
        if len(images) <= shots:
            skipped += 1
            continue
        images = rng.permutation(images)
        enrolled.extend(images[:shots].tolist())
        probed.extend(images[shots:].tolist())
    people = len(torch.unique(labels)) - skipped
    if people < 2:
        raise DataError(
            f"{'one-shot' if shots == 1 else f'{shots}-shot'} identification needs at least 2 people with more than "
            f"{shots} image{'s' if shots > 1 else ''} each, got {people}",
            where="labels",
            fix=f"add people with at least {shots + 1} images each, or lower shots",
        )
    gallery, probes = torch.tensor(enrolled), torch.tensor(probed)
    accuracy = identification_accuracy(vectors[gallery], labels[gallery], vectors[probes], labels[probes])
    return {
        "accuracy": accuracy,
        "people": people,
        "gallery": len(enrolled),
        "probes": len(probed),
        "skipped_people": skipped,
    }


def leave_one_out_accuracy(embeddings: torch.Tensor, labels: torch.Tensor) -> float:
    """The share of images whose nearest other image (1-NN, itself excluded) shows the same person. Every image
    counts, so one whose person has no other image is always wrong.

    >>> import torch
    >>> leave_one_out_accuracy(torch.tensor([[0.0], [0.1], [5.0], [5.2], [0.3]]), torch.tensor([0, 0, 1, 1, 1]))
    0.8
    """
    vectors, labels = _embeddings_and_labels(embeddings, labels)
    n = len(vectors)
    if n < 2:
        raise DataError(f"leave-one-out needs at least 2 images, got {n}", where="embeddings", fix="add images")
    hits = 0
    block = max(1, PAIRS_PER_BLOCK // n)
    for start in range(0, n, block):
        rows = torch.arange(start, min(start + block, n), device=vectors.device)
        distances = _distances(vectors[rows], vectors)
        distances[torch.arange(len(rows)), rows] = math.inf  # not itself
        hits += int((labels[distances.argmin(dim=1)] == labels[rows]).sum())
    return hits / n


def _roc_sorted(values: np.ndarray, flags: np.ndarray) -> Roc:
    """The ROC of distances sorted ascending (``flags``: genuine), one point per distinct distance."""
    genuine, impostor = int(flags.sum()), int(len(flags) - flags.sum())
    if not genuine or not impostor:
        raise DataError(
            f"verification needs at least 2 people with at least 2 images each: got {genuine} genuine pairs "
            f"(same person) and {impostor} impostor pairs (different people)",
            where="pairs",
            fix="add people, or more images per person (at least 2 each)",
        )
    last = np.r_[np.flatnonzero(np.diff(values)), len(values) - 1]  # the last pair of each distinct distance
    true_accepts = np.r_[0, np.cumsum(flags, dtype=np.int64)[last]]
    false_accepts = np.r_[0, last + 1 - true_accepts[1:]]
    thresholds = np.r_[np.nextafter(values[0], -math.inf), values[last]]
    far, tar = false_accepts / impostor, true_accepts / genuine
    auc = float(np.sum(np.diff(far) * (tar[1:] + tar[:-1])) / 2)
    eer, eer_threshold = _equal_error(far, 1.0 - tar, thresholds)
    return Roc(thresholds, far, tar, true_accepts, false_accepts, genuine, impostor, auc, eer, eer_threshold)


def _equal_error(far: np.ndarray, frr: np.ndarray, thresholds: np.ndarray) -> tuple[float, float]:
    """Where FAR - FRR turns from negative to >= 0: linear interpolation between the two points around it."""
    k = int(np.argmax(far >= frr))  # > 0: at the first point FAR = 0 < FRR = 1; the last has FAR = 1 >= FRR = 0
    gap_before, gap_after = far[k - 1] - frr[k - 1], far[k] - frr[k]
    weight = gap_before / (gap_before - gap_after)  # in (0, 1]
    eer = far[k - 1] + weight * (far[k] - far[k - 1])
    threshold = thresholds[k - 1] + weight * (thresholds[k] - thresholds[k - 1])
    return float(eer), float(threshold)


def _pairs(distances: Any, same: Any) -> tuple[np.ndarray, np.ndarray]:
    """Distances as float64 and ``same`` as bool numpy vectors of one length, all distances finite."""
    values = _numpy(distances).astype(np.float64).ravel()
    flags = _numpy(same).astype(bool).ravel()
    if len(values) != len(flags):
        raise ShapeError(
            f"{len(values)} distances but {len(flags)} same-person flags",
            where="same",
            fix="pass the two results of pair_distances together",
        )
    if not np.isfinite(values).all():
        raise DataError(
            f"{int((~np.isfinite(values)).sum())} pair distances are NaN or infinite",
            where="distances",
            fix="check the embeddings for NaN (a diverged model, or an empty image)",
        )
    return values, flags


def _numpy(values: Any) -> np.ndarray:
    return values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)


def _embeddings_and_labels(
    embeddings: Any, labels: Any, where: str = "embeddings"
) -> tuple[torch.Tensor, torch.Tensor]:
    vectors = torch.as_tensor(embeddings)
    if vectors.dim() != 2:
        raise ShapeError(
            f"expected embeddings (N, D), got shape {tuple(vectors.shape)}", where=where, fix="stack one row per image"
        )
    if not vectors.is_floating_point():
        vectors = vectors.float()
    labels = torch.as_tensor(labels, device=vectors.device).ravel()
    if len(labels) != len(vectors):
        raise ShapeError(
            f"{len(vectors)} embeddings but {len(labels)} labels", where=where, fix="pass one label per embedding"
        )
    return vectors.detach(), labels


def _distances(rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """Exact Euclidean distances ``(R, C)`` (from differences: identical vectors give exactly 0)."""
    return torch.cdist(rows, columns, compute_mode="donot_use_mm_for_euclid_dist")


def _kfold_summary(values: np.ndarray, flags: np.ndarray) -> dict[str, Any]:
    result = kfold_accuracy(values, flags)
    return {"folds": len(result.accuracies), **asdict(result)}


def _summary(values: np.ndarray) -> dict[str, float | None]:
    if not len(values):
        return {"mean": None, "median": None, "std": None}
    return {"mean": float(values.mean()), "median": float(np.median(values)), "std": float(values.std())}
