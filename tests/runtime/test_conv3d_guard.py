"""3-D convolutions over inputs shallower than their kernels compute in float32 inside CPU bfloat16 autocast:
oneDNN's bfloat16 weight gradient for them was NaN or 1e30 times too large on an AVX512-BF16 CPU."""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.data.loader import TensorLoader
from cnnlab.models import create_model
from cnnlab.runtime.conv3d_guard import GuardedConv3d, guard_shallow_conv3d
from cnnlab.train import TrainConfig, Trainer


def weight_gradient(conv: nn.Conv3d, x: torch.Tensor, upstream: torch.Tensor, bf16: bool) -> torch.Tensor:
    conv.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = conv(x)
    out.float().backward(upstream)
    assert conv.weight.grad is not None
    return conv.weight.grad.clone()


def test_a_shallow_input_gets_the_float32_weight_gradient_under_bf16_autocast() -> None:
    torch.manual_seed(0)
    conv = nn.Conv3d(16, 16, 3, padding=1, bias=False)
    guard_shallow_conv3d(conv)
    for depth in (1, 2):
        x, upstream = torch.randn(4, 16, depth, 6, 6), torch.randn(4, 16, depth, 6, 6)
        torch.testing.assert_close(weight_gradient(conv, x, upstream, True), weight_gradient(conv, x, upstream, False))


def test_deep_inputs_keep_bfloat16() -> None:
    conv = GuardedConv3d(16, 16, 3, padding=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv(torch.randn(1, 16, 4, 6, 6)).dtype == torch.bfloat16


def test_the_trainer_guards_3d_nets_in_bf16_and_a_small_c3d_trains_finite() -> None:
    torch.manual_seed(0)
    model = create_model("c3d_small", num_classes=2, in_chans=1, width=16)
    x, y = torch.randn(32, 1, 8, 16, 16), torch.randint(0, 2, (32,))
    trainer = Trainer(model, TrainConfig(epochs=8, batch_size=8, precision="bf16", lr=1e-3))
    assert any(isinstance(m, GuardedConv3d) for m in model.modules())
    assert any("shallower than their kernels" in reason for reason in trainer.plan.reasons)
    history = trainer.fit(TensorLoader(x, y, 8, True, 0))  # its last block sees 2 frames: NaN within ~10 steps
    assert all(torch.isfinite(torch.tensor(row["loss"])) for row in history)
    plain = create_model("c3d_small", num_classes=2, in_chans=1, width=16)
    Trainer(plain, TrainConfig(precision="fp32"))
    assert not any(isinstance(m, GuardedConv3d) for m in plain.modules())
