"""The page's layer list and arithmetic are summary()'s numbers; a model the explorer cannot hook is refused
with a message naming the layer types it supports."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from cnnlab.core.errors import ConfigError
from cnnlab.explore import Explorer, Subject, create_app
from cnnlab.layers.summary import summary
from cnnlab.models import create_model
from tests.explore.conftest import mixed_subject


def _last_number(text: str) -> int:
    """The number after the last '=' (the formula's answer), commas removed."""
    return int(re.findall(r"= ([\d,]+)", text)[-1].replace(",", ""))


@pytest.fixture(scope="module", params=["mixed", "resnet18"])
def subject(request) -> Subject:
    if request.param == "mixed":
        return mixed_subject()
    torch.manual_seed(0)  # a residual net with a shared ReLU (two calls) and projection shortcuts, at 32 px
    model = create_model("resnet18", num_classes=5, small_input=True).eval()
    return Subject(model, "resnet18", tuple("abcde"), (0.5,) * 3, (0.25,) * 3, (3, 32, 32), trained=False)


def test_the_layer_list_is_summarys_rows(subject):
    listed = TestClient(create_app(Explorer(subject))).get("/api/model").json()["layers"]
    rows = summary(subject.model, subject.input_size).to_dict()["layers"]
    assert len(listed) == len(rows)
    for layer, row in zip(listed, rows, strict=True):
        assert (layer["name"], layer["type"], layer["depth"]) == (row["name"], row["type"], row["depth"])
        assert layer["output_shapes"] == row["output_shapes"]
        assert layer["params"] == row["trainable"] + row["frozen"]
        assert layer["macs"] == row["macs"]
        field = row["receptive_field"]
        assert layer["receptive_field"] == (None if field is None else [[f["size"], f["jump"]] for f in field])
        assert layer["maps"] == (len(row["output_shapes"]) == 1 and len(row["output_shapes"][0]) == 4)


def test_the_written_arithmetic_gives_summarys_numbers(subject):
    layers = Explorer(subject).layers
    checked = {"shape": 0, "params": 0, "macs": 0}
    for layer in layers:
        text = layer.arithmetic
        if layer.type in ("Conv2d", "MaxPool2d", "AvgPool2d"):
            _, _, height, width = layer.output_shapes[0]
            if text.shape[0].startswith("height and width"):
                assert _last_number(text.shape[0]) == height == width
            else:
                assert [_last_number(line) for line in text.shape] == [height, width]
            assert "floor((n + 2p - d(k - 1) - 1) / s) + 1" in text.shape[0] or "ceil(" in text.shape[0]
            checked["shape"] += 1
        if layer.type in ("Conv2d", "Linear", "BatchNorm2d") and layer.occurrence == 0:
            assert _last_number(text.params) == layer.params
            assert _last_number(text.macs) == layer.macs
            checked["params"] += 1
            checked["macs"] += 1
    assert all(count >= 3 for count in checked.values()), checked


def test_the_conv_formula_has_the_numbers_filled_in():
    layer = next(layer for layer in Explorer(mixed_subject()).layers if layer.name == "stem")
    assert layer.arithmetic.shape == (
        "height: floor((n + 2p - d(k - 1) - 1) / s) + 1 = floor((29 + 2*2 - 1*(5 - 1) - 1) / 2) + 1 = 15",
        "width: floor((n + 2p - d(k - 1) - 1) / s) + 1 = floor((31 + 2*2 - 1*(5 - 1) - 1) / 2) + 1 = 16",
    )
    assert layer.arithmetic.params == "C_out*(C_in/g)*k_h*k_w + bias = 6*3*5*5 + 6 = 456"
    assert layer.arithmetic.macs == "C_out*(C_in/g)*k_h*k_w*H_out*W_out = 6*3*5*5*15*16 = 108,000"


class Functional(nn.Module):
    """All work in forward's function calls: no submodule for a hook to see."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 3, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(F.conv2d(x, self.weight)).mean(dim=(2, 3))


class FlatOnly(nn.Module):
    """Its only submodule returns a vector, never maps."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.max_pool2d(x, 1).flatten(1))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
@pytest.mark.parametrize(
    ("model", "seen"),
    [
        (Functional, "it has no submodules: its forward calls functions"),
        (FlatOnly, "its layers: Linear"),
        (lambda: torch.jit.script(nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU())), "TorchScript"),
    ],
    ids=["functional", "vector-only", "torchscript"],
)
def test_a_model_the_explorer_cannot_hook_is_refused_naming_the_supported_layers(model, seen):
    subject = Subject(model(), "custom", ("a", "b"), (0.5,) * 3, (0.25,) * 3, (3, 8, 8))
    with pytest.raises(ConfigError) as caught:
        Explorer(subject)
    message = str(caught.value)
    assert "cnnlab explore cannot hook" in message and seen in message
    assert "Conv2d" in message and "BatchNorm2d" in message and "MaxPool2d" in message


def test_zoo_models_that_are_not_image_classifiers_are_refused():
    from cnnlab.explore import zoo_subject

    with pytest.raises(ConfigError, match="is a segment model; cnnlab explore shows classifiers"):
        zoo_subject("unet")
