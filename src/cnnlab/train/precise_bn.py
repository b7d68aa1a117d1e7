"""Precise BatchNorm statistics: the training set's mean and variance under the final weights.

While training, BatchNorm keeps running averages of each batch's statistics (torch: 10% per step). With the small
batches of small sets (5 or 6 series on the UCR sets, the published ``min(N / 10, 16)``) those averages are noisy
and come from the last dozen steps, so the evaluated model depends on which series those batches held. After the
last epoch, :func:`recompute_batchnorm` replaces them by the statistics of the training inputs, fed in chunks of up
to ``chunk`` samples and averaged over the chunks (one chunk: the exact statistics of the whole set): "precise
BN" (Wu & Johnson 2021, *Rethinking "Batch" in BatchNorm*; fvcore's ``update_bn_stats``). The weights do not change.

>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Conv1d(1, 2, 3), nn.BatchNorm1d(2))
>>> x = torch.randn(40, 1, 16) * 3 + 1
>>> recompute_batchnorm(net, [x[:20], x[20:]], chunk=64)
1
>>> expected = net[0](x).detach()
>>> torch.allclose(net[1].running_mean, expected.mean(dim=(0, 2)), atol=1e-5)
True
>>> net.training  # the mode it had
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn


def recompute_batchnorm(
    model: nn.Module,
    inputs: Iterable[torch.Tensor],
    chunk: int = 1024,
    forward: Callable[[nn.Module, torch.Tensor], object] | None = None,
) -> int:
    """Recompute the running statistics of every BatchNorm layer of ``model`` that tracks them from ``inputs``
    (batches, regrouped into chunks of at most ``chunk`` samples); returns how many layers it set (0: none, the
    model unchanged). ``forward(model, x)`` runs the model (default ``model(x)``), e.g. under autocast."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    was_training = model.training
    run = forward or (lambda net, x: net(x))
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average: every chunk counts the same
    model.train()
    try:
        with torch.no_grad():
            for x in _chunks(inputs, chunk):
                run(model, x)
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        model.train(was_training)
    return len(norms)


def _chunks(inputs: Iterable[torch.Tensor], size: int) -> Iterable[torch.Tensor]:
    """``inputs`` regrouped into tensors of ``size`` samples (the last one shorter)."""
    held: list[torch.Tensor] = []
    count = 0
    for x in inputs:
        held.append(x)
        count += len(x)
        while count >= size:
            joined = torch.cat(held)
            yield joined[:size]
            rest = joined[size:]
            held, count = ([rest] if len(rest) else []), len(rest)
    if count:
        yield torch.cat(held)
