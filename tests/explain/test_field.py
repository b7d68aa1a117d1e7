"""Receptive fields from gradient support, against a hand computation, against the arithmetic of
``core.shapes.anchored_fields`` on generated plain chains, and against ``layers.summary``'s longest-branch
field on ResNets (an independent walk of the same network)."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.core.shapes import AnchoredField, anchored_fields
from cnnlab.explain.field import layer_field, layer_fields, linearised, receptive_boxes
from cnnlab.layers.summary import summary
from cnnlab.models import create_model


def test_conv_pool_conv_boxes_equal_the_hand_computation():
    # conv3 p1: output i sees [i-1, i+1]; pool2: [2i-1, 2i+2] (4 pixels); conv3 p1 on the pooled map sees pooled
    # i-1..i+1, so [2(i-1)-1, 2(i+1)+2] = [2i-3, 2i+4]: 8 pixels, 2 apart, output 0 starting at -3.
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.MaxPool2d(2), nn.Conv2d(2, 2, 3, padding=1))
    height, width = 12, 14
    positions = [(i, j) for i in range(height // 2) for j in range(width // 2)]
    boxes = receptive_boxes(net, "2", (1, height, width), positions)
    for (i, j), box in zip(positions, boxes, strict=True):
        assert box == (max(2 * i - 3, 0), max(2 * j - 3, 0), min(2 * i + 5, height), min(2 * j + 5, width))
    assert boxes[0] == (0, 0, 5, 5) and boxes[positions.index((2, 3))] == (1, 3, 9, 11)
    field = layer_field(net, "2", (1, height, width))
    assert field.rows == field.cols == AnchoredField(size=8, jump=2, start=-3)
    assert anchored_fields([(3, 1, 1, 1), (2, 2, 1, 0), (3, 1, 1, 1)])[-1] == field.rows


def _random_chain(rng: random.Random) -> tuple[nn.Sequential, list[tuple[int, int, int, int]], tuple[int, int]]:
    """A plain chain of 2-4 convs and pools (random kernel, stride, padding, dilation, ceil mode) that runs on a
    random image size."""
    while True:
        layers: list[nn.Module] = []
        specs = []
        channels = 1
        for _ in range(rng.randint(2, 4)):
            kind = rng.choice(["conv", "conv", "max", "avg"])
            kernel = rng.choice([1, 2, 3, 5])
            stride = rng.choice([1, 1, 2, 3])
            if kind == "conv":
                dilation = rng.choice([1, 1, 2])
                padding = rng.randint(0, kernel // 2 * dilation)
                layers += [nn.Conv2d(channels, 2, kernel, stride, padding, dilation), nn.ReLU()]
                channels = 2
            else:
                dilation, padding = 1, rng.randint(0, kernel // 2)
                pool = nn.MaxPool2d if kind == "max" else nn.AvgPool2d
                layers.append(pool(kernel, stride, padding, ceil_mode=rng.random() < 0.5))
            specs.append((kernel, stride, dilation, padding))
        size = (rng.randint(17, 29), rng.randint(17, 29))
        try:
            with torch.no_grad():
                nn.Sequential(*layers)(torch.zeros(1, 1, *size))
        except RuntimeError:  # the map shrank to nothing: draw another chain
            continue
        return nn.Sequential(*layers), specs, size


def _has_holes(specs: list[tuple[int, int, int, int]]) -> bool:
    """Whether the field skips pixels: a dilated kernel, or a stride longer than the kernel below a later layer."""
    return any(d > 1 for _, _, d, _ in specs) or any(s > k for k, s, _, _ in specs[:-1])


@pytest.mark.parametrize("seed", range(24))
def test_gradient_support_equals_the_arithmetic_on_plain_chains(seed):
    net, specs, (height, width) = _random_chain(random.Random(seed))
    with torch.no_grad():
        maps = net(torch.zeros(1, 1, height, width))
    h, w = maps.shape[2:]
    positions = [(i, j) for i in range(h) for j in range(w)]
    expected = anchored_fields(specs)[-1]
    boxes = receptive_boxes(net, str(len(net) - 1), (1, height, width), positions)
    for (i, j), box in zip(positions, boxes, strict=True):
        top, bottom = expected.span(i, n=height)
        left, right = expected.span(j, n=width)
        arithmetic = (top, left, bottom + 1, right + 1)
        if not _has_holes(specs):
            assert box == arithmetic, (specs, (i, j))
            continue
        # With holes, a clipped end may fall on a pixel the unit skips: the support's box is then inside the span,
        # and equal to it wherever the span is not clipped.
        assert box[0] >= top and box[1] >= left and box[2] <= bottom + 1 and box[3] <= right + 1, (specs, (i, j))
        unclipped = [expected.span(i)[0] >= 0, expected.span(j)[0] >= 0]
        unclipped += [expected.span(i)[1] < height, expected.span(j)[1] < width]
        assert all(b == a for b, a, keep in zip(box, arithmetic, unclipped, strict=True) if keep), (specs, (i, j))


@pytest.mark.parametrize(
    ("name", "size", "layer", "field"),
    [
        ("resnet20", (3, 32, 32), "layer1", AnchoredField(15, 1, -7)),  # 3x3 stem + 3 blocks of two 3x3
        ("resnet9_w16", (1, 28, 28), "layer1", AnchoredField(14, 2, -6)),
    ],
)
def test_residual_nets_follow_the_longest_branch(name, size, layer, field):
    model = create_model(name, in_chans=size[0])
    geometry = layer_field(model, layer, size)
    assert geometry.rows == geometry.cols == field
    rf = next(row.receptive_field for row in summary(model, size).layers if row.name == layer)
    assert rf == (field.field, field.field)  # summary walks the branches itself and keeps the longest


def test_a_field_larger_than_the_image_is_probed_per_position():
    # By hand: resnet20's layer1 sees 15 pixels from -7 (above); layer2's first conv (3x3, stride 2) makes it 17,
    # 2 apart, from -8, and its five more 3x3 convs add 4 each: 37 from -18. Row i spans 2i-18 .. 2i+18, more
    # than 32 pixels in the middle of the map, so the middle probes are clipped and each position is probed.
    model = create_model("resnet20")
    geometry = layer_field(model, "layer2", (3, 32, 32), [(0, 15), (8, 8)])
    assert geometry.rows is None and geometry.cols is None and geometry.size == (32, 32)
    assert geometry.box((0, 15)) == (0, 12, 19, 32) and geometry.box((8, 8)) == (0, 0, 32, 32)
    with pytest.raises(ConfigError, match="was not measured"):
        geometry.box((1, 1))


def test_several_layers_in_one_pass_equal_one_at_a_time():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(2, 2, 3, padding=1))
    together = layer_fields(net, ["1", "3"], (1, 20, 20))
    assert [together[n].rows for n in ("1", "3")] == [layer_field(net, n, (1, 20, 20)).rows for n in ("1", "3")]


def test_the_linearised_copy_leaves_the_model_alone():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(inplace=True), nn.MaxPool2d(2)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    copy = linearised(model)
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert [type(m) for m in copy] == [nn.Conv2d, nn.Identity, nn.Identity, nn.AvgPool2d]
    assert copy[0].weight.dtype == torch.float64 and not copy.training
