"""A guard against a bfloat16 bug of the CPU: oneDNN's backward of a 3-D convolution whose input is shallower
than its kernel (2 frames under a 3-deep kernel, 2-4 under a 5-deep one, 1 under a 2-deep one) returns wrong
weight gradients in bfloat16 autocast: NaN, or values 1e30 times too large, on every draw (torch 2.13 on an
AVX512-BF16 CPU, any channel count from 16; deeper inputs and 1x1x1 kernels are right, within bfloat16's 0.5%).
A small C3D on 8-frame clips meets it in its last block (2 frames deep) and its loss turns NaN within a few
epochs. :class:`GuardedConv3d` runs exactly those convolutions in float32 inside the autocast region; every
other one keeps bfloat16's speed. The trainer swaps its model's ``nn.Conv3d`` layers when it trains in bfloat16
on the CPU (docs/sequence.md, "Measured").
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GuardedConv3d", "guard_shallow_conv3d"]


class GuardedConv3d(nn.Conv3d):
    """``nn.Conv3d`` (same arguments, parameters and state dict) that computes in float32 under CPU autocast when
    its input is shallower than its kernel.

    >>> conv = GuardedConv3d(16, 16, 3, padding=1)
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     conv(torch.randn(1, 16, 2, 4, 4)).dtype, conv(torch.randn(1, 16, 4, 4, 4)).dtype
    (torch.float32, torch.bfloat16)
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting() or x.shape[2] >= self.kernel_size[0]:
            return super().forward(x)
        return self._float32(x)

    @torch.jit.unused
    def _float32(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_autocast_enabled("cpu"):
            return super().forward(x)
        with torch.autocast("cpu", enabled=False):
            return super().forward(x.float())


def guard_shallow_conv3d(model: nn.Module) -> int:
    """Make every plain ``nn.Conv3d`` in ``model`` a :class:`GuardedConv3d` in place (the same parameters, so an
    optimiser built on them still holds them); returns how many.

    >>> net = nn.Sequential(nn.Conv3d(1, 4, 3), nn.ReLU())
    >>> weight = net[0].weight
    >>> guard_shallow_conv3d(net), type(net[0]).__name__, net[0].weight is weight
    (1, 'GuardedConv3d', True)
    """
    guarded = 0
    for module in model.modules():
        if type(module) is nn.Conv3d:
            module.__class__ = GuardedConv3d
            guarded += 1
    return guarded
