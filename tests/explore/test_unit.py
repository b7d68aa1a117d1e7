"""A clicked unit's numbers through the HTTP API equal a direct computation: F.conv2d on the input patch that a
hook of the test's own recorded, and the model's own forward value; pools, batch norm and receptive fields too."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from cnnlab.explain import layer_field
from cnnlab.explore import create_app
from tests.explore.conftest import picture


@pytest.fixture(scope="module")
def client(mixed_explorer):
    return TestClient(create_app(mixed_explorer))


@pytest.fixture(scope="module")
def looked(client, mixed_explorer):
    """The image's id, and the model input the explorer made of it."""
    upload = Image.fromarray(picture())
    seen = client.post("/api/images", content=_png(upload), headers={"Content-Type": "image/png"}).json()
    return seen["id"], mixed_explorer._get(seen["id"]).x[None]


def _png(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _taken_and_made(model: nn.Module, name: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The input the layer took and the output it made, recorded by the test's own hooks in a fresh forward pass."""
    module = model.get_submodule(name)
    taken: list[torch.Tensor] = []
    made: list[torch.Tensor] = []
    handles = [
        module.register_forward_pre_hook(lambda m, args: taken.append(args[0].detach().clone())),
        module.register_forward_hook(lambda m, args, out: made.append(out.detach().clone())),  # before in-place ops
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return taken[0], made[0]


def _index(explorer, name: str) -> int:
    return next(layer.index for layer in explorer.layers if layer.name == name)


@pytest.mark.parametrize(
    ("name", "units"),
    [
        ("stem", [(0, 0, 0), (5, 7, 15), (3, 14, 15)]),  # right after the image: corners meet the padding
        ("grouped", [(0, 0, 0), (7, 4, 5), (4, 7, 7)]),  # after BN, ReLU and a max-pool; channel 7 in group 2
        ("dilated", [(2, 0, 0), (6, 3, 6), (1, 7, 7)]),  # 'same' padding, dilation 2, reflect padding, no bias
    ],
)
def test_a_conv_unit_is_the_dot_product_of_its_patch_and_kernel(client, looked, mixed_explorer, name, units):
    image_id, x = looked
    conv = mixed_explorer.subject.model.get_submodule(name)
    taken, made = _taken_and_made(mixed_explorer.subject.model, name, x)
    pads = conv._reversed_padding_repeated_twice if conv.padding_mode != "zeros" else None
    for channel, y, x_ in units:
        unit = client.get(
            f"/api/images/{image_id}/layers/{_index(mixed_explorer, name)}/unit",
            params={"channel": channel, "y": y, "x": x_},
        ).json()
        # The window the API says the kernel covered, cut from the test's own copy of the layer's input.
        if pads is None:
            top, left = -conv.padding[0], -conv.padding[1]
            padded = F.pad(taken, (conv.padding[1],) * 2 + (conv.padding[0],) * 2)
        else:
            top, left = -pads[2], -pads[0]
            padded = F.pad(taken, pads, mode=conv.padding_mode)
        assert unit["rows"][0] == y * conv.stride[0] + top and unit["cols"][0] == x_ * conv.stride[1] + left
        r0, c0 = unit["rows"][0] - top, unit["cols"][0] - left
        extent = conv.dilation[0] * (conv.kernel_size[0] - 1) + 1
        per_group = conv.in_channels // conv.groups
        group = channel // (conv.out_channels // conv.groups)
        patch = padded[:, group * per_group : (group + 1) * per_group, r0 : r0 + extent, c0 : c0 + extent]
        bias = None if conv.bias is None else conv.bias[channel : channel + 1]
        with torch.no_grad():
            direct = F.conv2d(patch, conv.weight[channel : channel + 1], bias, dilation=conv.dilation)  # (1, 1, 1, 1)
        assert unit["kind"] == "conv"
        assert unit["dot"] == pytest.approx(float(direct), abs=1e-5)
        assert unit["value"] == pytest.approx(float(made[0, channel, y, x_]), abs=1e-6)  # the model's own value
        assert unit["value"] == pytest.approx(unit["dot"], abs=1e-5)
        assert unit["dot"] == pytest.approx(
            sum(t["sum"] for t in unit["shown"]) + unit["rest"] + unit["bias"], abs=1e-5
        )
        for term in unit["shown"]:  # the written-out patch is the input there, the kernel the layer's weights
            i = term["channel"] - group * per_group
            dilated = patch[0, i, :: conv.dilation[0], :: conv.dilation[1]]
            assert torch.allclose(torch.tensor(term["patch"]), dilated, atol=1e-5)
            assert torch.allclose(torch.tensor(term["kernel"]), conv.weight[channel, i].detach(), atol=1e-5)


def test_the_first_conv_names_the_colour_channels(client, looked, mixed_explorer):
    image_id, _ = looked
    unit = client.get(
        f"/api/images/{image_id}/layers/{_index(mixed_explorer, 'stem')}/unit", params={"channel": 0, "y": 3, "x": 3}
    ).json()
    assert [t["name"] for t in unit["shown"]] == ["R", "G", "B"] and unit["rest_channels"] == 0


def test_pool_and_batch_norm_units_show_their_arithmetic(client, looked, mixed_explorer):
    image_id, x = looked
    model = mixed_explorer.subject.model
    for name, kind in (("pool", "maxpool"), ("avg", "avgpool"), ("bn", "batchnorm")):
        _, made = _taken_and_made(model, name, x)
        _, channels, height, width = made.shape
        for channel, y, x_ in ((0, 0, 0), (channels - 1, height - 1, width - 1), (1, height // 2, 1)):
            url = f"/api/images/{image_id}/layers/{_index(mixed_explorer, name)}/unit"
            unit = client.get(url, params={"channel": channel, "y": y, "x": x_}).json()
            assert unit["kind"] == kind
            assert unit["value"] == pytest.approx(float(made[0, channel, y, x_]), abs=1e-6)
            assert unit["result"] == pytest.approx(unit["value"], abs=1e-5)


def test_the_receptive_field_is_the_exact_field_of_the_unit(client, looked, mixed_explorer):
    image_id, _ = looked
    model, size = mixed_explorer.subject.model, mixed_explorer.subject.input_size
    for name in ("stem", "pool", "grouped"):
        geometry = layer_field(model, name, size)  # explain.field's probe of the whole layer
        for y, x in ((0, 0), (3, 5), (7, 7)):
            url = f"/api/images/{image_id}/layers/{_index(mixed_explorer, name)}/unit"
            unit = client.get(url, params={"channel": 1, "y": y, "x": x}).json()
            assert tuple(unit["box"]) == geometry.box((y, x)), (name, y, x)
    stem = client.get(
        f"/api/images/{image_id}/layers/{_index(mixed_explorer, 'stem')}/unit", params={"channel": 0, "y": 5, "x": 6}
    ).json()
    assert stem["box"] == [5 * 2 - 2, 6 * 2 - 2, 5 * 2 - 2 + 5, 6 * 2 - 2 + 5]  # 5x5 kernel, stride 2, padding 2


def test_the_second_call_of_a_shared_layer_is_its_own_unit(client, looked, mixed_explorer):
    image_id, x = looked
    calls = [layer for layer in mixed_explorer.layers if layer.name == "relu"]
    assert [layer.label for layer in calls] == ["relu (call 1 of 2)", "relu (call 2 of 2)"]
    grouped = _taken_and_made(mixed_explorer.subject.model, "grouped", x)[1]
    unit = client.get(f"/api/images/{image_id}/layers/{calls[1].index}/unit", params={"channel": 7, "y": 2, "x": 3})
    assert unit.json()["value"] == pytest.approx(max(0.0, float(grouped[0, 7, 2, 3])), abs=1e-6)
    assert unit.json()["kind"] == "activation" and unit.json()["input"] == pytest.approx(float(grouped[0, 7, 2, 3]))


def test_a_unit_outside_the_maps_is_refused(client, looked, mixed_explorer):
    image_id, _ = looked
    url = f"/api/images/{image_id}/layers/{_index(mixed_explorer, 'stem')}/unit"
    answer = client.get(url, params={"channel": 6, "y": 0, "x": 0})
    assert answer.status_code == 422 and "channel 0..5" in answer.json()["detail"]
    assert client.get(url.replace(image_id, "0" * 16), params={"channel": 0, "y": 0, "x": 0}).status_code == 404
