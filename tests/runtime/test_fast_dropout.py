"""HashDropout: same distribution and semantics as nn.Dropout, masks decided by torch's seed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.runtime.fast_dropout import HashDropout, hash_dropout, keep_mask, use_hash_dropout
from cnnlab.train import TrainConfig, Trainer

N = 1_000_000  # the standard error of a kept fraction is then <= 0.0005


@pytest.mark.parametrize("p", [0.1, 0.25, 0.5, 0.8])
def test_keep_fraction_and_pairs_are_those_of_independent_draws(p: float) -> None:
    torch.manual_seed(0)
    keep = keep_mask(N, p).float()
    q = 1 - p
    assert keep.mean().item() == pytest.approx(q, abs=0.003)
    # draws 2k and 2k+1 come from one hash, 2k+1 and 2k+2 from neighbouring counters: both must look independent
    assert (keep[0::2] * keep[1::2]).mean().item() == pytest.approx(q * q, abs=0.003)
    assert (keep[1:-1:2] * keep[2::2]).mean().item() == pytest.approx(q * q, abs=0.003)
    assert (keep * keep_mask(N, p).float()).mean().item() == pytest.approx(q * q, abs=0.003)  # a second call


def test_masks_follow_torch_manual_seed() -> None:
    torch.manual_seed(7)
    first = keep_mask(1000, 0.5)
    torch.manual_seed(7)
    assert torch.equal(keep_mask(1000, 0.5), first)
    assert not torch.equal(keep_mask(1000, 0.5), first)


def test_scales_kept_values_keeps_layout_and_passes_gradients_through_the_mask() -> None:
    x = torch.full((8, 3, 5, 5), 2.0).contiguous(memory_format=torch.channels_last).requires_grad_()
    y = hash_dropout(x, 0.25)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert torch.isclose(y[y != 0], torch.tensor(2.0 / 0.75)).all()
    y.sum().backward()
    assert torch.allclose(x.grad, (y.detach() != 0).float() / 0.75)


def test_edge_cases_match_torch_dropout() -> None:
    x = torch.randn(6, 4)
    assert hash_dropout(x, 0.0) is x
    assert torch.equal(hash_dropout(x, 1.0), torch.zeros_like(x))
    assert hash_dropout(x, 0.5, training=False) is x
    strided = torch.ones(10, 10)[:, ::2]  # neither contiguous nor channels_last: torch's own dropout
    assert set(hash_dropout(strided, 0.5).unique().tolist()) <= {0.0, 2.0}
    y = torch.ones(100)
    assert hash_dropout(y, 0.5, inplace=True) is y and set(y.unique().tolist()) <= {0.0, 2.0}


def test_swaps_plain_dropout_only_and_keeps_rate_and_mode() -> None:
    net = nn.Sequential(nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.3)), nn.Dropout2d(0.2), nn.Dropout(0.1)).eval()
    assert use_hash_dropout(net) == 2
    assert isinstance(net[0][1], HashDropout) and net[0][1].p == 0.3 and not net[0][1].training
    assert type(net[1]) is nn.Dropout2d
    assert isinstance(net[2], nn.Dropout)  # a subclass: code that looks for nn.Dropout still finds it


def test_trainer_uses_it_by_default_and_says_so() -> None:
    def net() -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(4, 2))

    fast = Trainer(net(), TrainConfig(precision="fp32"))
    assert isinstance(fast.model[1], HashDropout)
    assert any("counter hash" in reason for reason in fast.plan.reasons)
    plain = Trainer(net(), TrainConfig(precision="fp32", fast_dropout=False))
    assert type(plain.model[1]) is nn.Dropout
    assert any("fast_dropout switched off" in reason for reason in plain.plan.reasons)


def test_a_trained_model_can_still_be_scripted_and_traced() -> None:
    net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    use_hash_dropout(net)
    net.eval()
    x = torch.randn(3, 4)
    assert torch.allclose(torch.jit.script(net)(x), net(x))
    assert torch.allclose(torch.jit.trace(net, x)(x), net(x))
    scripted_training = torch.jit.script(net.train())  # torch's dropout inside: masks differ call to call
    assert not torch.equal(scripted_training(torch.ones(1000, 4)), scripted_training(torch.ones(1000, 4)))
