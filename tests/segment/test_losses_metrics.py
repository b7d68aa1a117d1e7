"""Segmentation losses and metrics, checked against scikit-learn and against each other."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import f1_score, jaccard_score

from cnnlab.tasks.segment.losses import LOSSES, cross_entropy, dice_loss, focal_loss
from cnnlab.tasks.segment.metrics import confusion, per_image_scores, scores_from_confusion


def test_scores_match_sklearn_per_class_and_mean():
    generator = torch.Generator().manual_seed(0)
    truth = torch.randint(0, 3, (4, 16, 16), generator=generator)
    preds = torch.where(torch.rand(4, 16, 16, generator=generator) < 0.7, truth, torch.randint(0, 3, (4, 16, 16)))
    scores = scores_from_confusion(confusion(preds, truth, 3), ["a", "b", "c"])
    t, p = truth.reshape(-1).numpy(), preds.reshape(-1).numpy()
    iou = jaccard_score(t, p, average=None)
    dice = f1_score(t, p, average=None)  # Dice is F1 on pixels
    for k, name in enumerate("abc"):
        assert scores[f"iou_{name}"] == pytest.approx(iou[k])
        assert scores[f"dice_{name}"] == pytest.approx(dice[k])
    assert scores["iou"] == pytest.approx(iou.mean())
    assert scores["dice"] == pytest.approx(dice.mean())
    assert scores["acc"] == pytest.approx((t == p).mean())


def test_per_image_scores_score_each_image_alone():
    truth = torch.zeros(2, 4, 4, dtype=torch.long)
    truth[0, :2] = 1
    preds = truth.clone()
    preds[1, 0, 0] = 1  # one wrong pixel in the second image only
    rows = per_image_scores(truth, preds, ["bg", "fg"], ["a", "b"])
    assert rows[0]["acc"] == 1.0 and rows[0]["dice_fg"] == 1.0
    assert rows[1]["acc"] == pytest.approx(15 / 16) and rows[1]["dice_fg"] == 0.0


def test_every_loss_is_registered_and_differentiable():
    assert sorted(LOSSES.names()) == ["bce", "bce_dice", "ce", "dice", "focal"]
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    targets = torch.randint(0, 3, (2, 8, 8))
    for name in LOSSES.names():
        loss = LOSSES.get(name)(logits, targets)
        (grad,) = torch.autograd.grad(loss, logits)
        assert loss.ndim == 0 and torch.isfinite(loss) and grad.abs().sum() > 0, name


def test_focal_down_weights_easy_pixels_and_dice_is_zero_when_perfect():
    targets = torch.zeros(1, 8, 8, dtype=torch.long)
    targets[:, :, 4:] = 1
    one_hot = torch.nn.functional.one_hot(targets, 2).permute(0, 3, 1, 2).float()  # (1, 2, 8, 8)
    confident = 12 * one_hot - 6  # +6 for the true class, -6 for the other
    assert focal_loss(confident, targets) < 0.01 * cross_entropy(confident, targets)
    assert dice_loss(confident, targets) < 0.01
    assert dice_loss(-confident, targets) > 0.95  # all wrong: only the smoothing term is left
