"""summary() against the real forward pass, sum(p.numel()), torch's FLOP counter and textbook shapes."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnlab.core.errors import ShapeError
from cnnlab.core.shapes import ReceptiveField
from cnnlab.layers.summary import summary


def lenet5_like() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )  # fmt: skip


class ResidualBlock(nn.Module):
    """Two 3x3 convs plus a shortcut (a strided 1x1 conv when the shape changes), merged by x + y."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(y + self.shortcut(x))


class TinyResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block1 = ResidualBlock(8, 8)
        self.block2 = ResidualBlock(8, 16, stride=2)
        self.head = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.block1(self.stem(x)))
        return self.head(x.mean(dim=(2, 3)))


def _real_shapes(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Output shape of every named submodule, recorded by plain forward hooks of this test."""
    seen: dict[str, tuple[int, ...]] = {}

    def record(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: object, out: torch.Tensor) -> None:
            seen.setdefault(name, tuple(out.shape))

        return hook

    handles = [m.register_forward_hook(record(name)) for name, m in model.named_modules()]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return seen


def test_lenet5_like_textbook_shapes_equal_real_outputs() -> None:
    net = lenet5_like()
    s = summary(net, (3, 32, 32))
    rows = s.layers[1:]  # layers[0] is the whole model
    x = torch.zeros(1, 3, 32, 32)
    for layer, row in zip(net, rows, strict=True):
        x = layer(x)
        assert row.output_shapes == (tuple(x.shape),)
    spatial = [r.output_shapes[0][1:] for r in rows if isinstance(net[int(r.name)], (nn.Conv2d, nn.MaxPool2d))]
    assert spatial == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5)]
    assert [r.output_shapes[0][1] for r in rows if r.type in ("Flatten", "Linear")] == [400, 120, 84, 10]
    assert s.total_params == sum(p.numel() for p in net.parameters()) == 62006
    assert [r.receptive_field[0].size for r in rows[:6:1] if r.receptive_field] == [5, 5, 6, 14, 14, 16]


def test_residual_net_with_frozen_params() -> None:
    net = TinyResNet()
    for p in net.block1.parameters():
        p.requires_grad_(False)
    net.train()
    net.block1.eval()  # a frozen block kept in eval mode, as fine-tuning does
    s = summary(net, (3, 16, 16))
    assert [m.training for m in net.modules()] == [m not in set(net.block1.modules()) for m in net.modules()]
    assert s.total_params == sum(p.numel() for p in net.parameters())
    assert s.frozen_params == sum(p.numel() for p in net.block1.parameters())
    assert s.trainable_params == sum(p.numel() for p in net.parameters() if p.requires_grad)
    assert sum(r.trainable + r.frozen for r in s.layers) == s.total_params
    assert s.unused_params == 0
    real = _real_shapes(net, torch.zeros(1, 3, 16, 16))
    for row in s.layers:
        assert row.output_shapes == (real[row.name],), row.name


def test_residual_receptive_field_follows_the_longest_branch() -> None:
    s = summary(TinyResNet(), (3, 16, 16))
    rf = {row.name: row.receptive_field for row in s.layers}
    assert rf["stem"] == (ReceptiveField(3, 1),) * 2
    assert rf["block1"] == (ReceptiveField(7, 1),) * 2  # stem + two 3x3: 3 + 2 + 2; the shortcut sees 3
    assert rf["block2.shortcut"] == (ReceptiveField(7, 2),) * 2  # a 1x1 stride-2 conv adds nothing but the jump
    assert rf["block2"] == (ReceptiveField(13, 2),) * 2  # 7 + 2*1 (stride-2 conv) + 2*2 (next conv at jump 2)
    assert rf["head"] is None  # no spatial axes


def test_macs_equal_torch_flop_counter() -> None:
    net = TinyResNet()
    s = summary(net, (3, 16, 16))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net.eval()(torch.zeros(1, 3, 16, 16))
    counted = sum(r.macs for r in s.layers if r.type in ("Conv2d", "Linear"))
    assert 2 * counted == counter.get_total_flops()  # the counter skips batch norm; two FLOPs per multiply-add


def test_shared_module_counts_its_parameters_once() -> None:
    conv = nn.Conv2d(4, 4, 3, padding=1)
    net = nn.Sequential(conv, nn.ReLU(), conv)
    s = summary(net, (4, 8, 8))
    assert [r.name for r in s.layers] == ["", "0", "1", "0"]
    assert s.total_params == 148 == sum(r.trainable for r in s.layers)
    assert s.layers[3].receptive_field == (ReceptiveField(5, 1),) * 2


def test_unused_module_and_transposed_conv() -> None:
    class Decoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.down = nn.Conv2d(1, 2, 3, stride=2, padding=1)
            self.up = nn.ConvTranspose2d(2, 1, 3, stride=2, padding=1, output_padding=1)
            self.unused = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.up(self.down(x))

    s = summary(Decoder(), (1, 10, 10))
    rows = {r.name: r for r in s.layers}
    assert rows["up"].output_shapes == ((1, 1, 10, 10),)
    assert rows["up"].receptive_field is None  # not a sliding window over the input
    assert rows["up"].macs == 5 * 5 * 2 * 1 * 9  # every input value meets the whole kernel
    assert s.unused_params == 12
    assert "Params of modules not called in forward: 12" in str(s)


def test_renderings() -> None:
    s = summary(lenet5_like(), (3, 32, 32), batch_size=2)
    text = str(s)
    assert "Total params: 62,006 (trainable 62,006, frozen 0)" in text
    assert "2x16x5x5" in text
    data = json.loads(json.dumps(s.to_dict()))
    assert data["totals"]["params"] == 62006
    assert data["layers"][1]["receptive_field"] == [{"size": 5, "jump": 1}] * 2
    assert s.to_rich().row_count == len(s.layers)
    x, expected = torch.zeros(2, 3, 32, 32), 0
    for layer in lenet5_like():
        x = layer(x)
        expected += 4 * x.numel()  # float32 outputs of every leaf layer, whole batch
    assert s.activation_bytes == expected


def test_bad_input_shape() -> None:
    with pytest.raises(ShapeError, match=r"input_shape must be positive sizes without the batch axis"):
        summary(nn.Conv2d(1, 1, 3), (1, 0, 8))


def test_input_a_layer_cannot_take_names_the_layer_and_sizes() -> None:
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 5))
    with pytest.raises(
        ShapeError, match=r"Kernel size can't be greater .* \[summary\(\), layer 1 \(Conv2d\) on input 1x4x2x2\]"
    ):
        summary(net, (1, 4, 4))
    with pytest.raises(
        ShapeError, match=r"expected input\[1, 3, 8, 8\] to have 1 channels.*layer 0 \(Conv2d\) on input 1x3x8x8"
    ):
        summary(net, (3, 8, 8))


class PaddedConv(nn.Conv2d):
    """A Conv2d subclass that pads TF-style 'same' in its own forward (as EfficientNet ports do)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (top, bottom), (left, right) = [(1, 1)] * 2 if self.stride[0] == 1 else [(0, 1)] * 2
        return super().forward(nn.functional.pad(x, (left, right, top, bottom)))


class TinyUNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = PaddedConv(1, 4, 3)
        self.down = PaddedConv(4, 8, 3, stride=2)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.dec = nn.Conv2d(8, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.enc(x)
        return self.dec(torch.cat([skip, self.up(self.down(skip))], dim=1))


def test_conv_subclass_and_upsampling_merge() -> None:
    net = TinyUNet()
    s = summary(net, (1, 8, 8))
    real = _real_shapes(net, torch.zeros(1, 1, 8, 8))
    rows = {row.name: row for row in s.layers}
    assert all(row.output_shapes == (real[name],) for name, row in rows.items())
    assert rows["down"].output_shapes == ((1, 8, 4, 4),)
    assert rows["down"].receptive_field == (ReceptiveField(5, 2),) * 2
    # The concatenation mixes a known field with an upsampled one: unknown, not a guess.
    assert rows["up"].receptive_field is None and rows["dec"].receptive_field is None
    assert s.total_params == sum(p.numel() for p in net.parameters())
