"""Per-class metrics, confusion matrix, top-k and calibration checked against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import precision_recall_fscore_support, top_k_accuracy_score

from cnnlab.train.metrics import (
    classification_summary,
    confusion_matrix,
    expected_calibration_error,
    most_confused,
    per_class_scores,
    reliability_bins,
    top_k_accuracy,
)


def _predictions(seed: int, n: int = 500, k: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, k, (n,), generator=generator)
    logits = torch.randn(n, k, generator=generator) * 2
    logits[torch.arange(n), targets] += 1.5  # better than chance, so every cell kind occurs
    return logits.softmax(dim=1), targets


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confusion_and_per_class_scores_equal_sklearn(seed):
    probs, targets = _predictions(seed)
    preds = probs.argmax(1)
    counts = confusion_matrix(targets, preds, 7)
    np.testing.assert_array_equal(counts.numpy(), sk_confusion(targets.numpy(), preds.numpy(), labels=range(7)))
    ours = per_class_scores(counts)
    p, r, f, s = precision_recall_fscore_support(targets.numpy(), preds.numpy(), labels=range(7), zero_division=0.0)
    np.testing.assert_allclose(ours["precision"], p, rtol=1e-12)
    np.testing.assert_allclose(ours["recall"], r, rtol=1e-12)
    np.testing.assert_allclose(ours["f1"], f, rtol=1e-12)
    assert ours["support"] == s.tolist()
    summary = classification_summary(probs, targets, [str(i) for i in range(7)])
    macro = precision_recall_fscore_support(
        targets.numpy(), preds.numpy(), labels=range(7), average="macro", zero_division=0.0
    )
    assert summary["macro"]["precision"] == pytest.approx(macro[0])
    assert summary["macro"]["recall"] == pytest.approx(macro[1])
    # sklearn's macro F1 is the mean of per-class F1 scores, as ours
    assert summary["macro"]["f1"] == pytest.approx(macro[2])


def test_classes_never_predicted_or_absent_score_zero_like_sklearn():
    targets = torch.tensor([0, 0, 1, 1, 1])
    preds = torch.tensor([0, 1, 1, 1, 1])  # class 2 absent and never predicted, class 3 never true but ...
    preds[0] = 3  # ... predicted once
    ours = per_class_scores(confusion_matrix(targets, preds, 4))
    p, r, f, s = precision_recall_fscore_support(targets.numpy(), preds.numpy(), labels=range(4), zero_division=0.0)
    np.testing.assert_allclose(ours["precision"], p)
    np.testing.assert_allclose(ours["recall"], r)
    np.testing.assert_allclose(ours["f1"], f)
    assert ours["support"] == s.tolist()


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_top_k_equals_sklearn(k):
    probs, targets = _predictions(3)
    expected = top_k_accuracy_score(targets.numpy(), probs.numpy(), k=k, labels=range(7))
    assert top_k_accuracy(probs, targets, k) == pytest.approx(expected)


def test_reliability_bins_equal_sklearn_calibration_curve():
    probs, targets = _predictions(4, n=2000)
    bins = reliability_bins(probs, targets, n_bins=10)
    confidence, preds = probs.double().max(1)
    correct = (preds == targets).numpy().astype(int)
    prob_true, prob_pred = calibration_curve(correct, confidence.numpy(), n_bins=10, strategy="uniform")
    filled = [i for i, n in enumerate(bins["count"]) if n > 0]
    np.testing.assert_allclose([bins["accuracy"][i] for i in filled], prob_true, rtol=1e-12)
    np.testing.assert_allclose([bins["confidence"][i] for i in filled], prob_pred, rtol=1e-12)
    assert sum(bins["count"]) == len(targets)


def test_ece_equals_a_direct_numpy_computation():
    probs, targets = _predictions(5, n=3000)
    confidence = probs.double().max(1).values.numpy()
    correct = (probs.argmax(1) == targets).numpy()
    edges = np.linspace(0, 1, 16)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, 14)  # right-closed bins
    expected = sum(
        (index == b).sum() / len(confidence) * abs(correct[index == b].mean() - confidence[index == b].mean())
        for b in range(15)
        if (index == b).any()
    )
    assert expected_calibration_error(probs, targets, 15) == pytest.approx(expected, rel=1e-12)


def test_a_perfectly_calibrated_onehot_model_has_zero_ece():
    targets = torch.tensor([0, 1, 2, 1])
    assert expected_calibration_error(torch.eye(3)[targets], targets) == 0.0


def test_most_confused_pairs_and_worst_mistakes():
    counts = torch.tensor([[9, 0, 3], [5, 7, 0], [0, 1, 8]])
    assert most_confused(counts, n=5) == [(1, 0, 5), (0, 2, 3), (2, 1, 1)]
    probs = torch.tensor([[0.1, 0.9], [0.6, 0.4], [0.45, 0.55], [0.99, 0.01]])
    targets = torch.tensor([0, 0, 0, 1])
    summary = classification_summary(probs, targets, ["a", "b"], worst=2)
    # mistakes by decreasing -log p[true]: p = 0.01, then 0.1
    assert [(w["index"], w["true"], w["predicted"]) for w in summary["worst"]] == [(3, "b", "a"), (0, "a", "b")]
    assert summary["worst"][0]["confidence"] == pytest.approx(0.99)
    assert summary["loss"] == pytest.approx(-np.log([0.1, 0.6, 0.45, 0.01]).mean())
