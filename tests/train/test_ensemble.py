"""An ensemble held in one model (``fcn_ensemble``) trained with a loss per member: each member ends where it
would have ended trained alone on the same batches, and the loss is each member's own cross-entropy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnlab.data.loader import TensorLoader
from cnnlab.models import create_model
from cnnlab.train.config import TrainConfig
from cnnlab.train.ensemble import EnsembleTrainer, member_cross_entropy

pytestmark = pytest.mark.usefixtures("one_thread")


def member(model: torch.nn.Module, k: int, members: int) -> torch.nn.Module:
    """A one-member ``fcn_ensemble`` holding member ``k``'s slice of every weight and statistic of ``model``."""
    alone = create_model("fcn_ensemble", num_classes=2, members=1, width=0.1)
    state = {}
    for name, value in model.state_dict().items():
        size = value.shape[0] // members if value.dim() else 0
        state[name] = value[k * size : (k + 1) * size].clone() if value.dim() else value.clone()
    alone.load_state_dict(state)
    return alone


def series(n: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(3)
    y = torch.arange(n) % 2
    t = torch.linspace(0, 6.28, 32)
    x = torch.sin(t * (1 + y[:, None])) + 0.3 * torch.randn(n, 32)
    return x[:, None], y


def test_each_member_trains_as_it_would_alone() -> None:
    x, y = series()
    config = TrainConfig(epochs=3, batch_size=6, lr=3e-3, precision="fp32")
    torch.manual_seed(0)
    together = create_model("fcn_ensemble", num_classes=2, members=3, width=0.1)
    alone = [member(together, k, 3) for k in range(3)]  # the same starting weights
    EnsembleTrainer(together, config).fit(TensorLoader(x, y, 6), epochs=3)
    for k, single in enumerate(alone):
        EnsembleTrainer(single, config).fit(TensorLoader(x, y, 6), epochs=3)
        trained_together = member(together, k, 3).train()
        # Adam's steps do not depend on the gradient's scale (the loss averages the members: 1/3 each), so the
        # weights agree to float rounding. Compared with batch statistics: the conv biases before BatchNorm get
        # gradients of rounding noise only (the normalisation cancels them), which Adam scales up to full steps,
        # so they and the running means (which carry them) differ; the function the member computes does not.
        with torch.no_grad():
            assert torch.allclose(trained_together.member_logits(x), single.train().member_logits(x), atol=1e-5)
    assert not torch.allclose(member(together, 0, 3).member_logits(x), member(together, 1, 3).member_logits(x))


def test_the_loss_is_the_members_mean_cross_entropy_for_hard_and_soft_targets() -> None:
    torch.manual_seed(1)
    logits = torch.randn(5, 4, 3)  # 5 samples, 4 members, 3 classes
    hard = torch.tensor([0, 2, 1, 1, 0])
    soft = torch.softmax(torch.randn(5, 3), 1)  # MixUp's targets
    by_member = [F.cross_entropy(logits[:, k], hard) for k in range(4)]
    assert member_cross_entropy(logits, hard).item() == pytest.approx(torch.stack(by_member).mean().item(), abs=1e-6)
    by_hand = -(soft[:, None, :] * logits.log_softmax(-1)).sum(-1).mean()
    assert member_cross_entropy(logits, soft).item() == pytest.approx(by_hand.item(), abs=1e-6)


def test_a_step_reports_the_members_loss_and_evaluation_the_ensembles() -> None:
    x, y = series(12)
    torch.manual_seed(0)
    model = create_model("fcn_ensemble", num_classes=2, members=2, width=0.1)
    trainer = EnsembleTrainer(model, TrainConfig(epochs=1, batch_size=12, precision="fp32"))
    model.train()
    expected = member_cross_entropy(model.member_logits(x), y).item()  # the batch statistics the step will see
    assert trainer.train_step((x, y))["loss"].item() == pytest.approx(expected, abs=1e-5)
    model.eval()
    ensemble_nll = F.nll_loss(torch.log(model.member_logits(x).softmax(-1).mean(1)), y).item()
    assert trainer.evaluate(TensorLoader(x, y, 12))["loss"] == pytest.approx(ensemble_nll, abs=1e-5)


def test_a_model_without_members_is_refused() -> None:
    with pytest.raises(TypeError, match="member_logits"):
        EnsembleTrainer(create_model("fcn", num_classes=2), TrainConfig(epochs=1))
