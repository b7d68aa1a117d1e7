"""Verification and identification scores against scikit-learn, brute force and hand computation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import LeaveOneOut, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from cnnlab.core.errors import ConfigError, DataError, ShapeError
from cnnlab.tasks.embed.verification import (
    choose_threshold,
    identification_accuracy,
    kfold_accuracy,
    leave_one_out_accuracy,
    one_shot_accuracy,
    pair_distances,
    roc,
    verification_report,
)


def clusters(people: int, per_person: int, spread: float, dim: int = 8, seed: int = 0):
    """Embeddings around one random unit centre per person, L2-normalised, and their labels."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(people, dim, generator=generator), dim=1)
    labels = torch.arange(people).repeat_interleave(per_person)
    points = centres[labels] + spread * torch.randn(len(labels), dim, generator=generator)
    return torch.nn.functional.normalize(points, dim=1), labels


def tied_pairs(seed: int = 0, size: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Distances on a coarse grid (many ties), genuine pairs a little closer on average."""
    rng = np.random.default_rng(seed)
    same = rng.random(size) < 0.3
    distances = np.round(rng.normal(1.0, 0.3, size) - 0.3 * same, 1)
    return distances, same


def test_pair_distances_match_a_loop_over_pairs():
    embeddings, labels = clusters(3, 3, 0.5)
    distances, same = pair_distances(embeddings, labels)
    expected = [
        (float(torch.linalg.vector_norm(embeddings[i] - embeddings[j])), bool(labels[i] == labels[j]))
        for i in range(9)
        for j in range(i + 1, 9)
    ]
    assert distances.tolist() == pytest.approx([d for d, _ in expected], abs=1e-6)
    assert same.tolist() == [s for _, s in expected]


def test_pair_distances_are_the_same_in_blocks(monkeypatch):
    from cnnlab.tasks.embed import verification

    embeddings, labels = clusters(5, 4, 0.3)
    whole = pair_distances(embeddings, labels)
    monkeypatch.setattr(verification, "PAIRS_PER_BLOCK", 7)  # 1 row a block
    blocked = pair_distances(embeddings, labels)
    assert torch.equal(whole[0], blocked[0]) and torch.equal(whole[1], blocked[1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_and_curve_equal_sklearn_with_ties(seed):
    distances, same = tied_pairs(seed)
    curve = roc(distances, same)
    fpr, tpr, thresholds = roc_curve(same, -distances, drop_intermediate=False)
    assert curve.auc == pytest.approx(roc_auc_score(same, -distances), abs=1e-9)
    np.testing.assert_allclose(curve.far, fpr, atol=1e-12)
    np.testing.assert_allclose(curve.tar, tpr, atol=1e-12)
    np.testing.assert_allclose(curve.thresholds[1:], -thresholds[1:])  # sklearn's first threshold is +inf
    assert curve.thresholds[0] < distances.min() and curve.rates_at(curve.thresholds[0]) == (0.0, 0.0)


def test_auc_equals_sklearn_on_torch_pair_distances():
    embeddings, labels = clusters(6, 5, 0.6)
    distances, same = pair_distances(embeddings, labels)
    expected = roc_auc_score(same.numpy(), -distances.numpy().astype(np.float64))
    assert roc(distances, same).auc == pytest.approx(expected, abs=1e-9)


def test_separable_clusters_give_eer_zero_and_auc_one():
    embeddings, labels = clusters(5, 4, 0.01)
    distances, same = pair_distances(embeddings, labels)
    assert distances[same].max() < distances[~same].min()  # the construction is separable
    curve = roc(distances, same)
    assert curve.auc == 1.0 and curve.eer == 0.0
    assert curve.accuracy_at(curve.eer_threshold) == 1.0
    assert curve.tar_at_far(0.0)[0] == 1.0
    assert kfold_accuracy(distances, same).mean == 1.0


def test_eer_of_a_hand_made_example():
    # genuine: 0.1, 0.3, 0.6; impostor: 0.2, 0.5, 0.7, 0.8. Sorted: 0.1g 0.2i 0.3g 0.5i 0.6g 0.7i 0.8i.
    # At t = 0.3: FAR = 1/4, FRR = 1/3 (FAR - FRR = -1/12); at t = 0.5: FAR = 2/4, FRR = 1/3 (+1/6).
    # The crossing is (1/12) / (1/12 + 1/6) = 1/3 of the way: EER = 1/4 + (1/3)(1/4) = 1/3, t = 0.3 + 0.2/3.
    distances = np.array([0.1, 0.3, 0.6, 0.2, 0.5, 0.7, 0.8])
    same = np.array([True, True, True, False, False, False, False])
    curve = roc(distances, same)
    assert curve.eer == pytest.approx(1 / 3, abs=1e-12)
    assert curve.eer_threshold == pytest.approx(0.3 + 0.2 / 3, abs=1e-12)
    assert choose_threshold(curve, "eer") == curve.eer_threshold
    # 5 of 7 right at best, first reached for t in [0.1, 0.2) (0.1 in; 0.3, 0.6 wrongly out): halfway is 0.15
    assert curve.best_accuracy() == pytest.approx((5 / 7, 0.15))
    assert curve.accuracy_at(0.65) == pytest.approx(5 / 7)  # 0.1, 0.3, 0.6 in; 0.2, 0.5 wrongly in


@pytest.mark.parametrize("target", [0.0, 0.01, 0.05, 0.1, 0.3, 1.0])
def test_tar_at_far_is_the_best_over_all_thresholds(target):
    distances, same = tied_pairs(3)
    best_tar, best_threshold = 0.0, None
    for t in np.unique(distances):
        accepted = distances <= t
        far, tar = accepted[~same].mean(), accepted[same].mean()
        if far <= target and (best_threshold is None or tar > best_tar):
            best_tar, best_threshold = tar, t
    tar, threshold = roc(distances, same).tar_at_far(target)
    assert tar == pytest.approx(best_tar)
    if best_threshold is not None:  # else nothing qualifies: the threshold accepts nothing
        assert threshold == best_threshold
        assert choose_threshold(roc(distances, same), f"far={target}") == best_threshold


def test_best_accuracy_is_the_best_over_all_thresholds():
    distances, same = tied_pairs(4)
    brute = max(((distances <= t) == same).mean() for t in np.r_[-1.0, np.unique(distances)])
    accuracy, threshold = roc(distances, same).best_accuracy()
    assert accuracy == pytest.approx(brute)
    assert ((distances <= threshold) == same).mean() == pytest.approx(brute)
    assert choose_threshold(roc(distances, same), "accuracy") == threshold


def test_identical_embeddings_always_verify_as_same():
    embeddings, labels = clusters(3, 3, 0.4)
    embeddings = torch.cat([embeddings, embeddings[:1]])  # the same image again
    distances, same = pair_distances(embeddings, torch.cat([labels, labels[:1]]))
    duplicate = distances[8]  # pair (0, 9): the 9th pair of row 0
    assert duplicate.item() == 0.0 and same[8]
    curve = roc(distances, same)
    for threshold in (0.0, 1e-9, curve.eer_threshold, float(distances.max())):
        assert (duplicate <= threshold).item()
        assert curve.rates_at(threshold)[1] > 0  # at least that genuine pair is accepted


def test_kfold_accuracy_lies_between_its_folds_and_is_deterministic():
    distances, same = tied_pairs(5, 600)
    result = kfold_accuracy(distances, same, folds=10, seed=0)
    assert len(result.accuracies) == 10
    assert min(result.accuracies) <= result.mean <= max(result.accuracies)
    assert result.std == pytest.approx(np.std(result.accuracies))
    assert kfold_accuracy(distances, same, folds=10, seed=0) == result


def test_report_is_json_ready_and_consistent_with_the_curve():
    embeddings, labels = clusters(6, 5, 0.5)
    distances, same = pair_distances(embeddings, labels)
    report = json.loads(json.dumps(verification_report(distances, same)))
    curve = roc(distances, same)
    assert report["pairs"] == {"genuine": 6 * 10, "impostor": 435 - 60}
    assert report["auc"] == pytest.approx(curve.auc) and report["eer"] == pytest.approx(curve.eer)
    assert report["tar_at_far"]["0.001"]["tar"] == pytest.approx(curve.tar_at_far(1e-3)[0])
    assert report["best_accuracy"]["accuracy"] == pytest.approx(curve.best_accuracy()[0])
    assert report["kfold_accuracy"]["folds"] == 10
    genuine = distances[same].double().numpy()
    assert report["distances"]["genuine"]["median"] == pytest.approx(np.median(genuine))
    assert report["distances"]["impostor"]["mean"] > report["distances"]["genuine"]["mean"]


@pytest.mark.parametrize("labels", [[0, 0, 0, 0], [0, 1, 2, 3]], ids=["one person", "one image each"])
def test_verification_without_both_kinds_of_pair_says_what_to_add(labels):
    distances, same = pair_distances(torch.randn(4, 3), torch.tensor(labels))
    with pytest.raises(DataError, match="at least 2 people with at least 2 images each") as caught:
        roc(distances, same)
    assert "Fix: add people" in str(caught.value)
    with pytest.raises(DataError):
        verification_report(distances, same)


def test_bad_inputs_are_named():
    with pytest.raises(ShapeError, match="3 embeddings but 2 labels"):
        pair_distances(torch.randn(3, 4), torch.tensor([0, 1]))
    with pytest.raises(ShapeError, match="expected embeddings"):
        pair_distances(torch.randn(3), torch.tensor([0, 1, 2]))
    with pytest.raises(DataError, match="NaN"):
        roc([0.1, math.nan], [True, False])
    curve = roc([0.1, 0.2], [True, False])
    for rule in ("far=2", "far=x", "median"):
        with pytest.raises(ConfigError, match="unknown threshold rule"):
            choose_threshold(curve, rule)
    with pytest.raises(DataError, match="2 genuine and 2 impostor"):
        kfold_accuracy([0.1, 0.2, 0.3], [True, False, False])


def test_identification_equals_sklearn_nearest_neighbour():
    gallery, gallery_labels = clusters(8, 3, 0.8, seed=1)
    probes, probe_labels = clusters(8, 4, 0.8, seed=1)
    probes = torch.nn.functional.normalize(probes + 0.3 * torch.randn(probes.shape), dim=1)
    knn = KNeighborsClassifier(n_neighbors=1).fit(gallery.numpy(), gallery_labels.numpy())
    expected = float(np.mean(knn.predict(probes.numpy()) == probe_labels.numpy()))
    assert 0.2 < expected < 1.0  # a test with both hits and misses
    assert identification_accuracy(gallery, gallery_labels, probes, probe_labels) == pytest.approx(expected)


def test_top_k_ranks_people_by_their_nearest_image():
    gallery, gallery_labels = clusters(6, 3, 0.9, seed=2)
    probes, probe_labels = clusters(6, 2, 0.9, seed=3)
    distances = torch.cdist(probes.double(), gallery.double())
    for k in (1, 2, 3):
        hits = 0
        for p in range(len(probes)):
            nearest = {int(person): float(distances[p][gallery_labels == person].min()) for person in range(6)}
            ranked = sorted(nearest, key=nearest.get)[:k]
            hits += int(probe_labels[p]) in ranked
        got = identification_accuracy(gallery, gallery_labels, probes, probe_labels, k=k)
        assert got == pytest.approx(hits / len(probes))
    assert identification_accuracy(gallery, gallery_labels, probes, probe_labels, k=6) == 1.0
    with pytest.raises(ConfigError, match="top-7 of 6"):
        identification_accuracy(gallery, gallery_labels, probes, probe_labels, k=7)


def test_leave_one_out_equals_sklearn():
    embeddings, labels = clusters(5, 4, 0.9, seed=4)
    knn = KNeighborsClassifier(n_neighbors=1)
    expected = cross_val_score(knn, embeddings.numpy(), labels.numpy(), cv=LeaveOneOut()).mean()
    assert leave_one_out_accuracy(embeddings, labels) == pytest.approx(expected)


def test_one_shot_counts_and_accuracy():
    embeddings, labels = clusters(4, 3, 0.9, seed=5)
    embeddings = torch.cat([embeddings, torch.randn(1, 8)])  # a fifth person with one image: skipped
    labels = torch.cat([labels, torch.tensor([4])])
    result = one_shot_accuracy(embeddings, labels, shots=1, seed=0)
    assert {k: result[k] for k in ("people", "gallery", "probes", "skipped_people")} == {
        "people": 4,
        "gallery": 4,
        "probes": 8,
        "skipped_people": 1,
    }
    # the same split by hand: the seed's permutation per person, first image enrolled
    rng = np.random.default_rng(0)
    enrolled, probed = [], []
    for person in range(4):
        order = rng.permutation(np.flatnonzero(labels.numpy() == person))
        enrolled.append(order[0])
        probed.extend(order[1:])
    knn = KNeighborsClassifier(n_neighbors=1).fit(embeddings[enrolled].numpy(), labels[enrolled].numpy())
    assert result["accuracy"] == pytest.approx(
        np.mean(knn.predict(embeddings[probed].numpy()) == labels[probed].numpy())
    )
    assert one_shot_accuracy(embeddings, labels, shots=2)["probes"] == 4
    with pytest.raises(DataError, match="at least 2 people with more than 3 images"):
        one_shot_accuracy(embeddings, labels, shots=3)
