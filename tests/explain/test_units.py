"""Top-9 patches per unit, checked on images whose answer is known by construction: a unit whose weights are a
Sobel-x kernel must pick exactly the images with a vertical edge, at the edge, with crops the size of the
receptive field (worked out by hand); a Sobel-y unit the horizontal ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.explain.units import check_layers, default_layers, padded, summary, top_patches, write_page
from cnnlab.models import create_model

SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])  # dark left, bright right: +4
SIZE = 16
VERTICAL = [2, 4, 6, 8, 10, 12, 14, 6, 10]  # column where the bright right half begins (even: see _expected)
HORIZONTAL = [2, 4, 6, 8, 10, 12, 14, 4, 8]  # row where the bright lower half begins
PLAIN = [0.0, 1.0, 0.5, 0.2]


def edge_net() -> nn.Module:
    """conv 3x3 (unit 0: Sobel-x, unit 1: Sobel-y), ReLU, 2x2 max-pool: fields of 4x4 pixels, 2 apart, start 0."""
    net = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.ReLU(), nn.MaxPool2d(2))
    with torch.no_grad():
        net[0].weight.copy_(torch.stack([SOBEL_X, SOBEL_X.T])[:, None])
    return net


def edge_images() -> tuple[torch.Tensor, list[int], list[int]]:
    """Plain images, then vertical-edge images, then horizontal-edge ones, interleaved; their indices."""
    images, vertical, horizontal = [], [], []
    for i in range(max(len(VERTICAL), len(HORIZONTAL), len(PLAIN))):
        if i < len(PLAIN):
            images.append(torch.full((1, SIZE, SIZE), PLAIN[i]))
        if i < len(VERTICAL):
            image = torch.zeros(1, SIZE, SIZE)
            image[:, :, VERTICAL[i] :] = 1.0
            vertical.append(len(images))
            images.append(image)
        if i < len(HORIZONTAL):
            image = torch.zeros(1, SIZE, SIZE)
            image[:, HORIZONTAL[i] :, :] = 1.0
            horizontal.append(len(images))
            images.append(image)
    return torch.stack(images), vertical, horizontal


def _expected(edge: int) -> tuple[int, int]:
    """By hand: Sobel-x gives 4 where the 3x3 window's centre is at column edge-1 or edge, i.e. conv outputs
    edge-2 and edge-1 (output j is centred on j+1); with ``edge`` even both fall in pooled column (edge-2)/2. Every
    row ties, and the first maximum (row 0) is kept. Pooled (0, q) sees rows 0..3, columns 2q..2q+3."""
    return (edge - 2) // 2, edge - 2


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return (x * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def test_a_sobel_unit_picks_exactly_the_vertical_edges_at_the_edge():
    images, vertical, horizontal = edge_images()
    (layer,) = top_patches(edge_net(), images, layers=["2"], units=[0, 1], k=9, batch_size=5, to_image=to_uint8)
    assert layer.field.rows.size == layer.field.cols.size == 4 and layer.field.rows.jump == 2
    sobel_x, sobel_y = layer.units
    assert sorted(p.image for p in sobel_x.patches) == sorted(vertical)
    assert sorted(p.image for p in sobel_y.patches) == sorted(horizontal)
    for patch in sobel_x.patches:
        q, left = _expected(VERTICAL[vertical.index(patch.image)])
        assert patch.value == 4.0 and patch.position == (0, q)
        assert patch.box == (0, left, 4, left + 4)  # the whole 4x4 field: it lies inside the image
        assert patch.pixels[..., 0].tolist() == [[0, 0, 255, 255]] * 4  # the edge, in the middle of the crop
    for patch in sobel_y.patches:
        p, top = _expected(HORIZONTAL[horizontal.index(patch.image)])
        assert patch.position == (p, 0) and patch.box == (top, 0, top + 4, 4)
        assert patch.pixels[..., 0].tolist() == [[0] * 4] * 2 + [[255] * 4] * 2


def test_the_first_strongest_row_is_kept_and_the_crop_is_the_image_there():
    image = torch.zeros(1, 1, SIZE, SIZE)
    image[..., 6:, 8:] = 1.0  # a vertical edge that starts at row 6: full response from window centre row 7 on
    (layer,) = top_patches(edge_net(), image, layers=["2"], units=[0], k=9, to_image=to_uint8)
    (patch,) = layer.units[0].patches  # one image, so one patch
    assert patch.position == (3, 3) and patch.box == (6, 6, 10, 10)  # conv rows 6, 7 -> pooled row 3
    assert np.array_equal(patch.pixels, to_uint8(image[0])[6:10, 6:10])


def test_at_most_one_patch_per_image_and_results_do_not_depend_on_the_batch_size():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 6, 3))
    images = torch.rand(20, 3, 12, 12)
    one = top_patches(net, images, layers=["1", "3"], units=4, k=9, batch_size=1)
    many = top_patches(net, images, layers=["1", "3"], units=4, k=9, batch_size=64)
    for a, b in zip(one, many, strict=True):
        for unit_a, unit_b in zip(a.units, b.units, strict=True):
            assert unit_a.unit == unit_b.unit
            assert [(p.image, p.position, p.box) for p in unit_a.patches] == [
                (p.image, p.position, p.box) for p in unit_b.patches
            ]
            assert len({p.image for p in unit_a.patches}) == 9
            values = [p.value for p in unit_a.patches]
            assert values == sorted(values, reverse=True)
    # Independent: each patch's value is its image's maximum of that channel, and the 9 are the 9 largest.
    with torch.no_grad():
        maps = net[:2](images)  # (20, 6, 12, 12)
    peaks = maps.flatten(2).amax(dim=2)  # (20, 6)
    for unit in one[0].units:
        assert [p.value for p in unit.patches] == pytest.approx(peaks[:, unit.unit].sort(descending=True).values[:9])


def test_a_count_picks_the_units_with_the_strongest_top_activations():
    net = nn.Sequential(nn.Conv2d(1, 4, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([1.0, 3.0, -1.0, 2.0]).view(4, 1, 1, 1))
        net[0].bias.zero_()
    (layer,) = top_patches(net, torch.rand(10, 1, 4, 4), layers=["0"], units=2, k=3)
    assert [u.unit for u in layer.units] == [1, 3]  # listed by index


def test_fewer_images_than_k_give_fewer_patches():
    (layer,) = top_patches(edge_net(), torch.rand(2, 1, 8, 8), layers=["2"], units=[0], k=9)
    assert len(layer.units[0].patches) == 2


def test_clipped_patches_are_padded_to_the_field_where_it_lies_outside():
    net = nn.Sequential(nn.Conv2d(1, 1, 5, padding=2))  # fields 5x5 centred on each pixel
    image = torch.zeros(1, 1, 9, 9)
    image[..., 0, 0] = 1.0  # the strongest response is at the corner
    with torch.no_grad():
        net[0].weight.fill_(0.0)
        net[0].weight[..., 2, 2] = 1.0
        net[0].bias.zero_()
    (layer,) = top_patches(net, image, layers=["0"], units=[0], k=1, to_image=to_uint8)
    (patch,) = layer.units[0].patches
    assert patch.position == (0, 0) and patch.box == (0, 0, 3, 3)  # rows and columns -2..2, clipped to 0..2
    tile = padded(patch, layer.field)[..., 0]
    assert tile.shape == (5, 5) and tile[2, 2] == 255 and set(tile[:2].flatten().tolist()) == {96, 160}


def test_default_layers_end_each_stage():
    assert default_layers(create_model("cnn_small"), (1, 28, 28)) == ["features.1", "features.4"]
    assert default_layers(create_model("resnet20"), (3, 32, 32)) == ["layer1", "layer2", "layer3"]
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 2),
    )  # fmt: skip
    assert default_layers(net, (1, 8, 8)) == ["3", "6"]  # the ReLU after the last conv at 8x8 and at 4x4


def test_a_wrong_layer_names_the_valid_ones():
    with pytest.raises(ConfigError, match=r"no layer 'features\.9'.*did you mean.*features\.0\.0, features\.0\.1"):
        check_layers(create_model("cnn_small"), ["features.9"], (1, 28, 28))
    with pytest.raises(ConfigError, match="has no layer 'classifier' with feature maps"):  # a Linear: no maps
        check_layers(create_model("cnn_small"), ["classifier"], (1, 28, 28))


def test_bad_units_and_no_images_are_clear_errors():
    with pytest.raises(ConfigError, match=r"units 0\.\.1; asked for \[5\]"):
        top_patches(edge_net(), torch.rand(3, 1, 8, 8), layers=["2"], units=[0, 5])
    with pytest.raises(DataError, match="no images"):
        top_patches(edge_net(), torch.rand(0, 1, 8, 8), layers=["2"])
    with pytest.raises(ConfigError, match="no Conv2d layer to pick units from"):
        top_patches(nn.Sequential(nn.AvgPool2d(2)), torch.rand(2, 1, 8, 8))
    shared = nn.ReLU()
    twice = nn.Sequential(nn.Conv2d(1, 1, 3), shared, nn.Conv2d(1, 1, 3), shared)
    with pytest.raises(ConfigError, match="has no layer '1'"):  # runs twice: not offered as a layer
        top_patches(twice, torch.rand(2, 1, 8, 8), layers=["1"])


def test_page_and_summary_hold_every_patch(tmp_path):
    images, vertical, _ = edge_images()
    layers = top_patches(edge_net(), images, layers=["0", "2"], units=[0], k=9, to_image=to_uint8)
    page = write_page(
        tmp_path / "units.html", layers, {"2": torch.rand(1, 1, SIZE, SIZE)}, [f"{i}.png" for i in range(len(images))]
    )
    text = page.read_text()
    assert text.count("<img ") == 2 * 9 + 1 and text.count('class="max"') == 1
    assert "4x4 input pixels, 2 apart" in text and "3x3 input pixels, 1 apart" in text
    rows = summary(layers, [f"{i}.png" for i in range(len(images))])
    assert sorted(p["image"] for p in rows[1]["units"][0]["patches"]) == sorted(f"{i}.png" for i in vertical)
    assert rows[1]["field"]["rows"] == {"size": 4, "jump": 2, "start": 0}
