"""Precise BatchNorm statistics: checked against NumPy's mean and variance of the layer inputs, through the
Trainer (the last epoch's checkpoint carries them) and on a model without BatchNorm."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.data.loader import TensorLoader
from cnnlab.train.config import TrainConfig
from cnnlab.train.precise_bn import recompute_batchnorm
from cnnlab.train.trainer import Callback, Trainer


def features_moments(conv: nn.Module, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and unbiased variance of ``conv(x)`` over samples and time, in NumPy."""
    out = conv(x).detach().numpy().transpose(1, 0, 2).reshape(conv.out_channels, -1)
    return out.mean(axis=1), out.var(axis=1, ddof=1)


def test_one_chunk_gives_the_statistics_of_the_whole_set() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv1d(2, 4, 5), nn.BatchNorm1d(4), nn.ReLU()).eval()
    x = torch.randn(30, 2, 20) * 2 + 0.5
    assert recompute_batchnorm(net, x.split(7), chunk=100) == 1
    mean, var = features_moments(net[0], x)
    np.testing.assert_allclose(net[1].running_mean.numpy(), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net[1].running_var.numpy(), var, rtol=1e-4)
    assert not net.training and net[1].momentum == 0.1  # its mode and momentum as they were


def test_chunks_are_averaged_with_equal_weight() -> None:
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv1d(1, 3, 3), nn.BatchNorm1d(3))
    x = torch.randn(20, 1, 12)
    recompute_batchnorm(net, x.split(3), chunk=10)  # regrouped into two chunks of 10
    moments = [features_moments(net[0], part) for part in x.split(10)]
    np.testing.assert_allclose(net[1].running_mean.numpy(), np.mean([m for m, _ in moments], 0), atol=1e-6)
    np.testing.assert_allclose(net[1].running_var.numpy(), np.mean([v for _, v in moments], 0), rtol=1e-4)


def test_a_model_without_batchnorm_is_left_alone() -> None:
    net = nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU())
    before = [p.clone() for p in net.parameters()]
    assert recompute_batchnorm(net, [torch.randn(4, 1, 8)]) == 0
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


@pytest.mark.parametrize("ema", [None, 0.9])
def test_the_trainer_sets_them_after_the_last_epoch(ema: float | None) -> None:
    """Batches of 4 leave noisy running averages; ``precise_bn`` replaces them in the evaluated model (the EMA copy
    when on) by the training set's statistics under the final weights, before the last epoch ends."""
    torch.manual_seed(0)
    x, y = torch.randn(48, 1, 16) * 3 + 2, torch.randint(0, 2, (48,))
    net = nn.Sequential(nn.Conv1d(1, 4, 3), nn.BatchNorm1d(4), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                        nn.Linear(4, 2))  # fmt: skip
    config = TrainConfig(epochs=3, batch_size=4, precise_bn=True, ema_decay=ema, precision="fp32", monitor="last")
    seen: list[torch.Tensor] = []

    class AtEpochEnd(Callback):  # what a checkpoint written at the end of each epoch would hold
        def on_epoch_end(self, trainer: Trainer, logs: dict) -> None:
            seen.append(trainer.eval_model[1].running_mean.clone())

    trainer = Trainer(net, config, callbacks=[AtEpochEnd()])
    trainer.fit(TensorLoader(x, y, batch_size=4, shuffle=True))
    evaluated = trainer.eval_model
    mean, var = features_moments(evaluated[0], x)
    np.testing.assert_allclose(evaluated[1].running_mean.numpy(), mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(evaluated[1].running_var.numpy(), var, rtol=1e-3)
    assert torch.equal(seen[-1], evaluated[1].running_mean)  # the last epoch's checkpoint has them
    assert not torch.allclose(seen[-2], evaluated[1].running_mean, atol=1e-3)  # earlier epochs: running averages
