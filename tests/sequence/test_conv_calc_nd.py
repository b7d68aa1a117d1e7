"""``cnnlab conv-calc`` on a signal (TxC) and a volume (DxHxWxC): the sizes it prints are the ones torch's
Conv1d / Conv3d and pools produce, and the parameter counts are the layers' own."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from cnnlab.cli.app import main


@pytest.mark.parametrize(
    ("shape", "conv", "pool"),
    [((150, 1), nn.Conv1d, nn.MaxPool1d), ((9, 20, 17, 2), nn.Conv3d, nn.MaxPool3d)],
)
def test_conv_calc_walks_1d_and_3d_stacks_like_torch(shape, conv, pool, capsys) -> None:
    *sizes, channels = shape
    text = "x".join(str(n) for n in shape)
    assert main(["conv-calc", "--input", text, "--layer", "conv:f=5,c=8,s=2,p=1", "--layer", "maxpool:f=2"]) == 0
    out = capsys.readouterr().out
    layers = nn.Sequential(conv(channels, 8, 5, stride=2, padding=1), pool(2))
    result = layers(torch.zeros(1, channels, *sizes))
    expected = "x".join(str(n) for n in (*result.shape[2:], 8))
    assert re.findall(r"-> (\S+)", out)[-1] == expected
    params = sum(p.numel() for p in layers.parameters())
    assert f"total: {params:,} parameters" in out
