"""Test-time augmentation, ensembles and the evaluation summary on tiny synthetic models."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.tasks.classify.evaluate import TTA_MODES, evaluate, predict_views, tta_views, write_run_evaluation


def _member(seed: int) -> SimpleNamespace:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    return SimpleNamespace(model=net.eval(), mean=(0.4,), std=(0.3,))


def _data(n: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=generator), torch.arange(n) % 3


def _probs(member: SimpleNamespace, images: torch.Tensor) -> torch.Tensor:
    x = (images.float() / 255 - 0.4) / 0.3
    with torch.no_grad():
        return member.model(x).softmax(1)


def test_views_start_with_the_plain_image_and_are_what_they_say():
    x = torch.randn(2, 3, 10, 12)
    for mode, count in zip(TTA_MODES, [1, 2, 5, 10], strict=True):
        views = tta_views(x, mode)
        assert views.shape == (2, count, 3, 10, 12)
        assert torch.equal(views[:, 0], x)
    assert torch.equal(tta_views(x, "flip")[:, 1], x.flip(-1))
    ten = tta_views(x, "ten_crop")
    assert torch.equal(ten[:, 5], x.flip(-1))  # the mirrored centre crop
    pad = round(10 * 16 / 224)
    padded = torch.nn.functional.pad(x, (pad,) * 4, mode="replicate")
    assert torch.equal(ten[:, 1], padded[..., :10, :12])  # top-left corner crop of the padded image
    with pytest.raises(ConfigError, match="unknown test-time augmentation"):
        tta_views(x, "rotate")


def test_flip_tta_averages_the_two_views():
    member, (images, _) = _member(0), _data(8)
    x = (images.float() / 255 - 0.4) / 0.3
    expected = (_probs(member, images) + _probs(member, images.flip(-1))) / 2
    torch.testing.assert_close(predict_views(member.model, x, "flip"), expected)


def test_ensemble_with_tta_is_the_mean_of_members_and_views_and_metrics_match_sklearn():
    members, (images, targets) = [_member(0), _member(1), _member(2)], _data()
    result = evaluate(
        members, images, targets, ["a", "b", "c"], tta="flip", batch_size=16, top_k=2, worst=4, precision="fp32"
    )
    names = [v["name"] for v in result.variants]
    assert names == ["single model", "single model + flip", "ensemble of 3", "ensemble of 3 + flip"]
    plain = [_probs(m, images) for m in members]
    flipped = [_probs(m, images.flip(-1)) for m in members]
    expected = torch.stack([(p + f) / 2 for p, f in zip(plain, flipped, strict=True)]).mean(0)
    torch.testing.assert_close(result.probs, expected)
    assert result.variants[0]["accuracy"] == pytest.approx(accuracy_score(targets, plain[0].argmax(1)))
    assert result.variants[2]["accuracy"] == pytest.approx(
        accuracy_score(targets, torch.stack(plain).mean(0).argmax(1))
    )
    summary = result.summary
    assert summary["accuracy"] == pytest.approx(accuracy_score(targets, expected.argmax(1)))
    np.testing.assert_array_equal(summary["confusion"], confusion_matrix(targets, expected.argmax(1)))
    assert len(summary["worst"]) == 4 and all(w["true"] != w["predicted"] for w in summary["worst"])
    assert all(v["seconds"] > 0 for v in result.variants)


def test_written_evaluation_has_json_and_figures_with_grad_cam(tmp_path):
    members, (images, targets) = [_member(0)], _data()
    result = evaluate(members, images, targets, ["a", "b", "c"], worst=5)
    path = write_run_evaluation(tmp_path, members, images, result, "Synthetic", {"tta": "none"})
    record = json.loads(path.read_text())
    assert record["accuracy"] == result.summary["accuracy"] and record["tta"] == "none"
    assert record["variants"][0]["name"] == "single model" and "load_average" in record["machine"]
    plots = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert plots == [
        "confusion_matrix.png",
        "confusion_matrix_normalized.png",
        "reliability.png",
        "worst_mistakes.png",
    ]


def test_no_members_is_a_clear_error():
    images, targets = _data(4)
    with pytest.raises(ConfigError, match="no checkpoint"):
        evaluate([], images, targets, ["a", "b", "c"])
