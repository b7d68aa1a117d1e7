"""Every classifier in the zoo at the input sizes course users feed it: it builds with
``input_options(name, (C, H, W))`` and trains (forward + backward, output ``(2, 3)``), or
``input_options`` refuses the size before anything is built, naming the smallest size that works.

The declared rules (``min_size``, ``small_input_max`` in the registry) are checked against real
forward passes (on the meta device, shapes only, for the nets too big to build quickly): the
smallest size works, one pixel less really fails, and the full-size layout works right above the
small-input threshold. Torch runs on one
thread here (``tests/models/conftest.py`` applies the ``one_thread`` fixture to every test).
"""

from __future__ import annotations

import functools
import inspect
import re

import pytest
import torch

from cnnlab.core.errors import ConfigError
from cnnlab.models import create_model, input_options, list_models, model_entry

CLASSIFIERS = list_models("classify")
SIZES = [(1, 28, 28), (3, 32, 32), (3, 64, 64), (3, 40, 56), (1, 96, 96)]
IMAGENET = (3, 224, 224)
HEAVY = 20_000_000  # parameters: building and back-propagating these takes a second or more per case on one core
# The deep ImageNet ResNets share resnet18's stems and rules; their shape checks cost seconds each.
DEEP = ("resnet50", "resnet101", "resnet152")
RULE_CASES = [pytest.param(n, marks=pytest.mark.slow) if n in DEEP else n for n in CLASSIFIERS]


@functools.cache
def _param_count(name: str) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in create_model(name).parameters())


def _cases() -> list[object]:
    cases = []
    for name in CLASSIFIERS:
        heavy = _param_count(name) > HEAVY
        sizes = [*SIZES, IMAGENET] if model_entry(name).default_input == IMAGENET else SIZES
        for size in sizes:
            slow = heavy or size == IMAGENET
            # a heavy net runs in every CI pass at its own size and the smallest; its other sizes with the matrix
            matrix = heavy and size not in (IMAGENET, SIZES[0])
            marks = [pytest.mark.matrix] if matrix else [pytest.mark.slow] if slow else []
            cases.append(pytest.param(name, size, marks=marks, id=f"{name}-{'x'.join(map(str, size))}"))
    return cases


def _logits_shape(name: str, size: tuple[int, int, int], **options: object) -> tuple[int, ...]:
    """Output shape of a forward pass; meta tensors for heavy nets (shape checks are the same there)."""
    with torch.device("meta" if _param_count(name) > HEAVY else "cpu"), torch.no_grad():
        model = create_model(name, num_classes=3, in_chans=size[0], **options).eval()
        return tuple(model(torch.zeros(2, *size)).shape)


@pytest.mark.parametrize(("name", "size"), _cases())
def test_every_classifier_trains_at_course_sizes(name: str, size: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, in_chans=size[0], **input_options(name, size))
    out = model(torch.randn(2, *size))
    assert out.shape == (2, 3)
    assert torch.isfinite(out).all()
    out.pow(2).mean().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", RULE_CASES)
def test_declared_smallest_size_is_exact(name: str) -> None:
    smallest = model_entry(name).min_size
    for size in ((3, smallest, smallest), (1, 3 * smallest + 7, smallest)):
        assert _logits_shape(name, size, **input_options(name, size)) == (2, 3), size
    if smallest > 1:  # one pixel less is refused, and rightly: the same layout fails there
        too_small = (3, smallest - 1, smallest - 1)
        with pytest.raises(ConfigError, match=rf"at least {smallest}x{smallest} pixels.*--img-size {smallest}"):
            input_options(name, too_small)
        with pytest.raises(RuntimeError, match="too small"):
            _logits_shape(name, too_small, **input_options(name, (3, smallest, smallest)))


@pytest.mark.parametrize("name", RULE_CASES)
def test_small_input_rule_is_declared_for_every_builder_that_has_one(name: str) -> None:
    entry = model_entry(name)
    has_option = "small_input" in inspect.signature(entry.builder).parameters
    assert has_option == (entry.small_input_max is not None)
    if entry.small_input_max is not None:  # right above the threshold the full-size layout takes over, and works
        above = (3, entry.small_input_max + 1, entry.small_input_max + 1)
        assert input_options(name, above) == {}
        assert _logits_shape(name, above) == (2, 3)


@pytest.mark.parametrize(
    ("name", "size", "options"),
    [
        ("lenet5", (1, 28, 28), {"small_input": True}),  # LeCun's 2-pixel padding for MNIST
        ("lenet5", (3, 32, 32), {}),  # the paper's own size: no padding
        ("resnet18", (3, 32, 32), {"small_input": True}),
        ("resnet18", (3, 64, 64), {"small_input": True}),
        ("resnet18", (3, 96, 96), {}),
        ("alexnet", (3, 200, 40), {"small_input": True}),  # the shorter side decides, not the height
        ("resnet20", (3, 32, 32), {}),  # no such option
    ],
)
def test_input_options_picks_the_layout(name: str, size: tuple[int, int, int], options: dict[str, object]) -> None:
    assert input_options(name, size) == options


def test_wide_short_image_gets_the_small_stem_and_runs() -> None:
    # By height alone (200 > 64) AlexNet would get its 11x11/4 stem, and 40 pixels of width end at 0.
    assert _logits_shape("alexnet", (3, 200, 40), **input_options("alexnet", (3, 200, 40))) == (2, 3)
    with pytest.raises(RuntimeError, match="too small"):
        _logits_shape("alexnet", (3, 200, 40))


def test_lenet5_on_colour_32x32_trains(one_thread: None) -> None:
    # The reported crash: `cnnlab train --model lenet5 --img-size 32` on colour images passed small_input=True
    # (padding meant for 28x28), and C5 got 16x6x6 = 576 features instead of 400.
    for options in (input_options("lenet5", (3, 32, 32)), {"small_input": True}):
        model = create_model("lenet5", num_classes=3, in_chans=3, **options)
        out = model(torch.randn(2, 3, 32, 32))
        out.sum().backward()
        assert out.shape == (2, 3)


def test_lenet5_and_fashion_cnn_keep_the_published_layout_at_their_own_size() -> None:
    # The adaptive pool is the identity where the head was drawn for (5x5 maps), so nothing changes there.
    lenet, fashion = create_model("lenet5").eval(), create_model("fashion_cnn").eval()
    maps = torch.randn(2, 16, 5, 5)
    assert torch.equal(lenet.forward_head(maps), lenet.classifier(maps.flatten(1)))
    maps = torch.randn(2, 64, 5, 5)
    assert torch.equal(fashion.forward_head(maps), fashion.classifier(fashion.neck(maps)))
    assert lenet.forward_features(torch.zeros(1, 1, 32, 32)).shape == (1, 16, 5, 5)
    assert sum(p.numel() for p in lenet.parameters()) == 61_706
    assert sum(p.numel() for p in fashion.parameters()) == 891_242


@pytest.mark.parametrize(
    ("name", "size", "smallest"),
    [("resnet9", (1, 6, 6), 8), ("vgg16", (3, 12, 64), 16), ("lenet5", (1, 8, 8), 12), ("alexnet", (3, 14, 14), 15)],
)
def test_too_small_images_are_refused_before_building(name: str, size: tuple[int, int, int], smallest: int) -> None:
    with pytest.raises(ConfigError) as error:
        input_options(name, size)
    message = str(error.value)
    assert f"{name} needs images of at least {smallest}x{smallest} pixels; these are {size[1]}x{size[2]}" in message
    assert f"--img-size {smallest}" in message


@pytest.mark.parametrize("size", [(32, 32), (3, 0, 32), (3, 32, 32.0), (3, True, 32)])
def test_input_options_refuses_a_shape_that_is_not_chw(size: tuple[int, ...]) -> None:
    with pytest.raises(ConfigError, match=r"input_size must be \(channels, height, width\)"):
        input_options("resnet18", size)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_classes": 0}, "num_classes must be a whole number >= 1. Received: num_classes=0"),
        ({"num_classes": -2}, "num_classes=-2"),
        ({"num_classes": 2.5}, "num_classes=2.5"),
        ({"in_chans": 0}, "in_chans must be a whole number >= 1. Received: in_chans=0"),
    ],
)
def test_create_model_refuses_empty_heads_and_inputs(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_model("cnn_small", **options)  # type: ignore[arg-type]
