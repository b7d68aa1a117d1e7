"""Anchor shapes: shape IoU by hand and against box IoU, k-means finding known shape clusters, determinism,
and the fit summary against a brute-force count."""

from __future__ import annotations

import pytest
import torch

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.tasks.detect.anchors import anchor_fit, describe_anchor_fit, kmeans_anchors, shape_iou
from cnnlab.tasks.detect.boxes import box_iou

CENTRES = torch.tensor([[12.0, 10.0], [60.0, 18.0], [25.0, 90.0]])  # small square, wide, tall


def _clustered_shapes(seed: int, per_cluster: int = 200, spread: float = 0.08) -> torch.Tensor:
    """Box shapes scattered +-8 % (multiplicatively) around three well-separated centres."""
    g = torch.Generator().manual_seed(seed)
    noise = 1 + spread * (2 * torch.rand(3, per_cluster, 2, generator=g) - 1)
    return (CENTRES[:, None, :] * noise).reshape(-1, 2)


def test_shape_iou_by_hand_and_equal_to_box_iou_of_centred_boxes():
    # 4 x 2 and 2 x 3: overlap 2 x 2 = 4, union 8 + 6 - 4 = 10
    assert shape_iou(torch.tensor([[4.0, 2.0]]), torch.tensor([[2.0, 3.0]])).item() == pytest.approx(0.4)
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(7, 2, generator=g) * 10 + 0.1, torch.rand(5, 2, generator=g) * 10 + 0.1
    centred = lambda wh: torch.cat([-wh / 2, wh / 2], 1)  # noqa: E731
    torch.testing.assert_close(shape_iou(a, b), box_iou(centred(a), centred(b)))


def test_kmeans_finds_the_three_cluster_centres():
    wh = _clustered_shapes(seed=1)
    anchors = kmeans_anchors(wh, k=3, seed=0)
    expected = CENTRES[CENTRES.prod(1).argsort()]  # sorted by area, as the anchors are
    torch.testing.assert_close(anchors, expected, rtol=0.03, atol=0.0)
    assert anchors.dtype == torch.float32
    assert anchors.prod(1).diff().gt(0).all()


def test_kmeans_anchors_fit_better_than_random_anchors():
    wh = _clustered_shapes(seed=2)
    fitted = anchor_fit(wh, kmeans_anchors(wh, k=3))["mean_best_iou"]
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        random_boxes = anchor_fit(wh, wh[torch.randperm(len(wh), generator=g)[:3]])["mean_best_iou"]
        random_shapes = anchor_fit(wh, torch.rand(3, 2, generator=g) * 100 + 1)["mean_best_iou"]
        assert fitted >= random_boxes and fitted >= random_shapes


def test_kmeans_is_deterministic_under_the_seed():
    g = torch.Generator().manual_seed(4)
    wh = torch.rand(300, 2, generator=g) * 100 + 2  # no clusters: the result depends on the seeding
    assert torch.equal(kmeans_anchors(wh, 5, seed=11), kmeans_anchors(wh, 5, seed=11))
    results = {tuple(kmeans_anchors(wh, 5, seed=s).flatten().tolist()) for s in range(6)}
    assert len(results) > 1  # the seed is really used


def test_anchor_fit_matches_a_brute_force_count():
    g = torch.Generator().manual_seed(5)
    wh, anchors = torch.rand(50, 2, generator=g) * 40 + 1, torch.rand(4, 2, generator=g) * 40 + 1
    best = []
    for w, h in wh.tolist():
        ious = [min(w, aw) * min(h, ah) / (w * h + aw * ah - min(w, aw) * min(h, ah)) for aw, ah in anchors.tolist()]
        best.append((max(ious), ious.index(max(ious))))
    fit = anchor_fit(wh, anchors)
    assert fit["mean_best_iou"] == pytest.approx(sum(b for b, _ in best) / 50, rel=1e-6)
    assert fit["recall_at_0.5"] == pytest.approx(sum(b > 0.5 for b, _ in best) / 50)
    assert fit["recall_at_0.75"] == pytest.approx(sum(b > 0.75 for b, _ in best) / 50)
    assert fit["worst_best_iou"] == pytest.approx(min(b for b, _ in best), rel=1e-6)
    assert fit["anchors_used"] == len({i for _, i in best}) / 4
    assert describe_anchor_fit(fit).startswith(f"anchors cover {fit['recall_at_0.5']:.0%} of boxes at IoU > 0.5")


def test_bad_shapes_and_k_are_refused_with_a_fix():
    with pytest.raises(DataError, match="> 0"):
        kmeans_anchors(torch.tensor([[1.0, 0.0], [2.0, 2.0]]), k=1)
    with pytest.raises(DataError, match=r"\(N, 2\)"):
        anchor_fit(torch.rand(3, 4), torch.rand(2, 2))
    with pytest.raises(ConfigError, match="distinct"):
        kmeans_anchors(torch.tensor([[1.0, 1.0], [1.0, 1.0], [2.0, 3.0]]), k=3)
