"""The fast inference path: fp32 is the plain model, bf16 stays close, compile is exact enough, never
recompiles, never serves stale weights, and falls back to eager when compiling fails."""

from __future__ import annotations

import shutil

import pytest
import torch
from torch import nn

import cnnlab.runtime.inference as infer_speed
from cnnlab.core.errors import ConfigError
from cnnlab.runtime.inference import compile_pays, fast_inference

needs_compiler = pytest.mark.skipif(shutil.which("g++") is None, reason="inductor needs a C++ compiler")


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 3 * 3, 5),
    )
    with torch.no_grad():  # non-trivial BN statistics, so eval mode matters
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].running_var.uniform_(0.5, 2.0)
    return net.train()


def _x(n: int = 10) -> torch.Tensor:
    return torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(1))


def test_fp32_is_the_plain_model_exactly_and_the_model_is_left_as_it_was():
    net, x = _net(), _x()
    expected = net.eval()(x).detach()
    net.train()
    with fast_inference(net, precision="fp32", compile="auto", images=len(x)) as run:
        assert not net.training
        out = run(x)
    assert torch.equal(out, expected) and out.dtype == torch.float32
    assert net.training and all(p.is_contiguous() for p in net.parameters())
    info = run.describe()
    assert info["precision"] == "fp32" and not info["channels_last"] and not info["compiled"]
    assert "fp32 asked for" in info["reasons"][-1]


def test_bf16_is_close_to_fp32_and_restores_the_layout():
    net, x = _net().eval(), _x(64)
    expected = net(x).detach()
    with fast_inference(net, precision="bf16", compile="off", batch_size=16) as run:
        assert net[0].weight.is_contiguous(memory_format=torch.channels_last)
        out = run(x)  # 4 chunks of 16
    assert out.dtype == torch.float32 and out.shape == expected.shape
    assert (out.argmax(1) == expected.argmax(1)).float().mean() >= 0.95
    torch.testing.assert_close(out.softmax(1), expected.softmax(1), atol=2e-2, rtol=0)
    assert net[0].weight.is_contiguous() and not net.training
    assert run.describe()["precision"] == "bf16" and run.describe()["channels_last"]


def test_auto_compiles_only_a_job_that_pays_it_back():
    assert not compile_pays(10_000, 14.9e6) and compile_pays(200_000, 14.9e6) and compile_pays(10_000, 555e6)
    assert not compile_pays(256, 1e12, batch_size=256)  # one batch: nothing to win back a compile on
    net, x = _net().eval(), _x(40)
    with fast_inference(net, compile="auto", batch_size=8, images=len(x)) as run:
        run(x)
    assert not run.compiled and "too few to pay a compile back" in run.reasons[-1]
    with fast_inference(net, compile="auto", batch_size=64, images=len(x)) as run:
        run(x)
    assert not run.compiled and "one batch" in run.reasons[-1]


def test_a_failing_compile_warns_and_the_job_goes_on_eager(monkeypatch):
    net, x = _net().eval(), _x(10)
    with fast_inference(net, compile="off", batch_size=4) as run:
        expected = run(x)

    def broken(fn, **kwargs):
        def compiled(x):
            raise RuntimeError("Compiler: g++ not found\nmore lines")

        return compiled

    monkeypatch.setattr(infer_speed, "COMPILE_MIN_MACS", 1.0)  # any job pays: auto decides to compile
    monkeypatch.setattr(torch, "compile", broken)
    with (
        pytest.warns(RuntimeWarning, match=r"torch.compile failed \(RuntimeError: Compiler: g\+\+ not found\)"),
        fast_inference(net, compile="auto", batch_size=4, images=len(x)) as run,
    ):
        out = run(x)
    assert torch.equal(out, expected) and not run.compiled
    assert run.reasons[-2].startswith("compiled:") and run.reasons[-1] == "eager: compiling failed (RuntimeError)"


def test_unknown_choices_are_clear_errors():
    with pytest.raises(ConfigError, match=r"unknown precision 'fp16' \[--precision\]"), fast_inference(_net(), "fp16"):
        pass
    with (
        pytest.raises(ConfigError, match=r"unknown compile 'yes'.*auto, on, off"),
        fast_inference(_net(), "auto", "yes"),
    ):
        pass


@pytest.mark.slow
@needs_compiler
def test_compiled_matches_eager_with_one_graph_for_a_short_last_batch():
    net, x = _net().eval(), _x(10)
    counters = torch._dynamo.utils.counters["stats"]
    graphs = counters["unique_graphs"]
    with fast_inference(net, precision="fp32", compile="on", batch_size=4) as run:
        out = run(x)  # chunks of 4, 4 and 2 (padded to 4)
        again = run(x[:3])
    assert run.compiled and run.compile_seconds is not None
    assert counters["unique_graphs"] - graphs == 1
    torch.testing.assert_close(out, net(x).detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(again, out[:3])


@pytest.mark.slow
@needs_compiler
def test_a_model_changed_since_its_last_compile_is_compiled_again():
    net, x = _net().eval(), _x(8)
    with fast_inference(net, precision="bf16", compile="on", batch_size=8) as run:
        before = run(x)
    with torch.no_grad():
        net[-1].weight.neg_()
        net[-1].bias.neg_()
    with fast_inference(net, precision="bf16", compile="on", batch_size=8) as run:
        after = run(x)
    assert run.compiled
    torch.testing.assert_close(after, -before, atol=5e-2, rtol=2e-2)  # frozen weights of the first compile: +before
