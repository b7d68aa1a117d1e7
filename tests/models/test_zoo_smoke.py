"""Every registered model, parametrised from the registry: forward and backward on a tiny batch,
and summary() totals equal to ``sum(p.numel())``.

ImageNet-sized classifiers run through their small-input stem on 16x16 images; segmentation nets
use 'same' padding, two levels and width 8; pretrained embedders (fixed output size) run with random
weights at their smallest input. Nets over 100M parameters (the VGGs: their cost is
building and back-propagating the 4096-wide linear layers, whatever the input) run with ``-m slow``.
"""

from __future__ import annotations

import pytest
import torch

from cnnlab.layers.summary import summary
from cnnlab.models import create_model, list_models, model_entry

HEAVY = 100_000_000


def _tiny_case(name: str) -> tuple[dict[str, object], tuple[int, ...]]:
    """Builder options (with the output channels as ``num_classes``) and the input shape without the batch axis
    ((C, H, W), or (C, T) and (C, D, H, W) for sequence nets) for the cheapest real forward pass of a model."""
    entry = model_entry(name)
    if entry.task == "sequence":  # series at their shortest length (16 at least); clips and volumes 4^3 or min_size^3
        channels, *sides = entry.default_input
        small = {"small_input": True} if entry.small_input_max is not None else {}
        side = max(entry.min_size, 16 if len(sides) == 1 else 4)
        return {"num_classes": 3, **small}, (channels, *(side,) * len(sides))
    channels, height, width = entry.default_input
    if entry.task == "segment":
        return {"num_classes": 3, "padding": "same", "depth": 2, "base_width": 8}, (channels, 16, 16)
    if entry.task == "embed":
        return {"num_classes": 128, "pretrained": None}, (channels, entry.min_size, entry.min_size)
    if height > 64:
        return {"num_classes": 3, "small_input": True}, (channels, 16, 16)
    return {"num_classes": 3}, (channels, height, width)


def _param_count(name: str) -> int:
    with torch.device("meta"):  # shapes only: no memory, no init
        return sum(p.numel() for p in create_model(name).parameters())


def _cases() -> list[object]:
    """Every model with one output tensor (detectors give one map per scale: tests/detect covers them)."""
    names = [n for n in list_models() if model_entry(n).task != "detect"]
    return [pytest.param(n, marks=pytest.mark.slow) if _param_count(n) > HEAVY else n for n in names]


@pytest.mark.parametrize("name", _cases())
def test_forward_backward_every_parameter_gets_a_gradient(name: str) -> None:
    torch.manual_seed(0)
    options, shape = _tiny_case(name)
    model = create_model(name, **options)
    out = model(torch.randn(2, *shape))
    assert torch.isfinite(out).all()
    assert out.shape[:2] == (2, options["num_classes"])
    out.pow(2).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"{name}: parameters without a finite gradient: {missing[:5]}"
    zero = [n for n, p in model.named_parameters() if not bool(p.grad.abs().sum() > 0)]
    assert not zero, f"{name}: parameters whose gradient is all zero: {zero[:5]}"
    assert summary(model, shape).total_params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", [n for n in list_models() if model_entry(n).task == "classify"])
def test_classifier_contract(name: str) -> None:
    options, shape = _tiny_case(name)
    with torch.device("meta"):
        model = create_model(name, **options)
        features = model.forward_features(torch.empty(2, *shape))
        assert features.shape[:2] == (2, model.num_features)
        assert model.forward_head(features).shape == (2, 3)
        model.reset_classifier(7)
        assert model(torch.empty(2, *shape)).shape == (2, 7)
    for layer in (model.gradcam_layer, model.first_conv, *model.classifier_layers):
        model.get_submodule(layer)
    assert model.get_submodule(model.first_conv).in_channels == shape[0]
    for layer in model.classifier_layers:  # conv heads (NIN's class maps) count channels, linear ones features
        module = model.get_submodule(layer)
        outputs = module.out_channels if isinstance(module, torch.nn.Conv2d) else module.out_features
        assert outputs == 7, f"{name}: {layer} has {outputs} outputs after reset_classifier(7)"
