"""Sliding windows and their convolutional implementation (the course, week 3; Sermanet et al. 2014, OverFeat).

The slow way classifies every crop of a big image on its own (:func:`sliding_window_scores`): neighbouring
windows overlap, so the same convolutions are computed again and again. The fast way turns each fully
connected layer into the convolution that computes the same numbers (:func:`to_fully_convolutional`): the
first ``Linear`` over a ``C x h x w`` feature map becomes a ``h x w`` convolution with the same weights, the
later ones ``1 x 1`` convolutions. One pass of that net over the big image then yields one score vector per
window position, shared work computed once, and the windows step by the net's total stride.

:class:`SlidingWindowNet` is the course's example: a 14x14x3 window -> CONV 5x5 (16) -> MAX POOL 2x2 ->
FC 400 -> FC 400 -> FC 4 (softmax). Turned convolutional, a 16x16 image gives a 2x2 map of 4 scores and a
28x28 image an 8x8 map, one per window at stride 2.

>>> net = SlidingWindowNet(num_classes=4).eval()
>>> fcn = to_fully_convolutional(net)
>>> fcn(torch.zeros(1, 3, 16, 16)).shape, fcn(torch.zeros(1, 3, 28, 28)).shape
(torch.Size([1, 4, 2, 2]), torch.Size([1, 4, 8, 8]))
>>> image = torch.randn(3, 20, 24)
>>> torch.allclose(fcn(image[None])[0], sliding_window_scores(net, image, 14, 2), atol=1e-5)
True
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Iterator

import torch
from torch import nn

from cnnlab.core.errors import ConfigError

_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.Sigmoid, nn.Tanh, nn.GELU, nn.SiLU, nn.ELU, nn.Identity)
"""Layers that act on each value alone: after the flatten they work unchanged on a (B, C, H, W) map
(PReLU's per-channel weights sit on axis 1 in both layouts)."""


class SlidingWindowNet(nn.Sequential):
    """The course's sliding-window classifier: ``features`` (conv 5x5, ReLU, max pool 2x2) then ``classifier``
    (flatten, three fully connected layers), for ``window x window`` crops with ``in_chans`` channels.

    ``window`` minus 4 must be even (the 2x2 pool must tile the conv's output); the default 14 gives the
    course's 5x5x16 = 400 features. ``stride`` is the net's total stride (the pool's 2): the step between
    the windows its convolutional form scores.

    >>> net = SlidingWindowNet()
    >>> net(torch.zeros(2, 3, 14, 14)).shape, net.input_size, net.stride
    (torch.Size([2, 4]), (3, 14, 14), 2)
    """

    def __init__(
        self, num_classes: int = 4, in_chans: int = 3, window: int = 14, channels: int = 16, hidden: int = 400
    ) -> None:
        if window < 6 or (window - 4) % 2:
            raise ConfigError(
                f"window must be an even number >= 6 (conv 5x5, then a 2x2 pool). Received: window={window}",
                where="SlidingWindowNet",
                fix="use e.g. window=14 (the course's) or 28",
            )
        side = (window - 4) // 2  # conv 5x5 'valid' then pool 2x2: 14 -> 10 -> 5
        features = nn.Sequential(nn.Conv2d(in_chans, channels, 5), nn.ReLU(), nn.MaxPool2d(2))
        classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * side * side, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )
        super().__init__(OrderedDict(features=features, classifier=classifier))
        self.input_size = (in_chans, window, window)
        self.stride = 2


def _leaves(module: nn.Module) -> Iterator[nn.Module]:
    """The layers of nested ``nn.Sequential`` containers in the order they run."""
    if isinstance(module, nn.Sequential):
        for child in module:
            yield from _leaves(child)
    else:
        yield module


def total_stride(model: nn.Module) -> int:
    """The product of the strides of the convolutions and pools in a sequential ``model``: the step in input
    pixels between neighbouring outputs of its convolutional form (layers after a flatten do not count).

    >>> total_stride(SlidingWindowNet()), total_stride(nn.Sequential(nn.Conv2d(1, 1, 3, stride=2), nn.MaxPool2d(3, 2)))
    (2, 4)
    """
    stride = 1
    for layer in _leaves(model):
        if isinstance(layer, nn.Flatten):
            break
        step = getattr(layer, "stride", 1)
        if isinstance(layer, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
            stride *= step if isinstance(step, int) else step[0]
    return stride


def to_fully_convolutional(model: nn.Module, input_size: tuple[int, int, int] | None = None) -> nn.Sequential:
    """A copy of the sequential classifier ``model`` with every ``Linear`` turned into the equivalent ``Conv2d``.

    ``input_size`` = (C, H, W) of the window the classifier was built for (default: ``model.input_size``).
    The first ``Linear`` after the ``Flatten`` reads a ``C' x h x w`` map in row-major order, so its weight
    ``(out, C'*h*w)`` reshaped to ``(out, C', h, w)`` is a convolution with the same sums; each later
    ``Linear`` ``(out, in)`` is a 1x1 convolution ``(out, in, 1, 1)``. Softmax over the classes moves to the
    channel axis. The original model is not changed. On a window-sized input the result is the model's
    output with two trailing 1x1 axes.

    >>> head = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 2 * 2, 3), nn.Softmax(dim=-1))
    >>> fcn = to_fully_convolutional(head, (1, 4, 4))
    >>> [type(m).__name__ for m in fcn], fcn(torch.zeros(1, 1, 6, 5)).shape
    (['Conv2d', 'Conv2d', 'Softmax'], torch.Size([1, 3, 3, 2]))
    """
    size = input_size or getattr(model, "input_size", None)
    if size is None:
        raise ConfigError(
            "the window size is unknown",
            where="to_fully_convolutional",
            fix="pass input_size=(channels, height, width) of one window",
        )
    layers = [copy.deepcopy(layer) for layer in _leaves(model)]
    flat = [i for i, layer in enumerate(layers) if isinstance(layer, nn.Flatten)]
    if not flat:
        raise ConfigError(
            "the model has no nn.Flatten between its convolutional part and its fully connected layers",
            where=type(model).__name__,
            fix="write the classifier as nn.Sequential(..., nn.Flatten(), nn.Linear(...), ...)",
        )
    convolutional, dense = layers[: flat[0]], layers[flat[0] + 1 :]
    with torch.no_grad():
        _, channels, height, width = nn.Sequential(*convolutional).eval()(torch.zeros(1, *size)).shape
    converted: list[nn.Module] = []
    for layer in dense:
        if isinstance(layer, nn.Linear):
            converted.append(_linear_as_conv(layer, channels, (height, width)))
            channels, height, width = layer.out_features, 1, 1
        elif isinstance(layer, nn.Softmax | nn.LogSoftmax):
            converted.append(type(layer)(dim=1))
        elif isinstance(layer, (nn.Dropout, *_ELEMENTWISE)):
            converted.append(layer)
        else:
            raise ConfigError(
                f"cannot turn a {type(layer).__name__} after the flatten into a convolution",
                where=type(model).__name__,
                fix="keep only Linear, activation, Dropout and Softmax layers after the nn.Flatten",
            )
    return nn.Sequential(*convolutional, *converted).train(model.training)  # the probe left the copies in eval


def _linear_as_conv(linear: nn.Linear, channels: int, kernel: tuple[int, int]) -> nn.Conv2d:
    if linear.in_features != channels * kernel[0] * kernel[1]:
        raise ConfigError(
            f"a Linear layer takes {linear.in_features} features but the map before it has "
            f"{channels}x{kernel[0]}x{kernel[1]} = {channels * kernel[0] * kernel[1]}",
            where="to_fully_convolutional",
            fix="pass the input_size the classifier was built for",
        )
    conv = nn.Conv2d(channels, linear.out_features, kernel, bias=linear.bias is not None)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.reshape(linear.out_features, channels, *kernel))
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv


def window_grid(size: tuple[int, int], window: int | tuple[int, int], stride: int) -> tuple[int, int]:
    """How many window positions fit in an image of ``size`` = (height, width): (rows, columns).

    >>> window_grid((16, 16), 14, 2), window_grid((28, 40), 14, 2)
    ((2, 2), (8, 14))
    """
    win_h, win_w = (window, window) if isinstance(window, int) else window
    rows, cols = (size[0] - win_h) // stride + 1, (size[1] - win_w) // stride + 1
    if rows < 1 or cols < 1:
        raise ConfigError(
            f"the image ({size[0]}x{size[1]}) is smaller than one window ({win_h}x{win_w})",
            where="sliding window",
            fix="pass a larger image or a smaller window",
        )
    return rows, cols


@torch.no_grad()
def sliding_window_scores(
    model: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    window: int | tuple[int, int],
    stride: int,
    batch_size: int = 256,
) -> torch.Tensor:
    """The slow way: crop every ``window`` of ``image`` (C, H, W) at steps of ``stride`` and classify each
    crop with ``model`` on its own (crops go through in batches of ``batch_size``, which changes no number).

    Returns the scores ``(K, rows, cols)``: ``[:, i, j]`` is the model's output for the crop whose top-left
    corner is ``(i * stride, j * stride)``. ``model`` returns ``(B, K)`` or ``(B, K, 1, 1)`` per batch.

    >>> scores = sliding_window_scores(nn.Sequential(nn.Flatten(), nn.Linear(4, 1)), torch.zeros(1, 4, 6), 2, 2)
    >>> scores.shape
    torch.Size([1, 2, 3])
    """
    if image.dim() != 3:
        raise ConfigError(
            f"image must be one (channels, height, width) tensor. Received shape {tuple(image.shape)}",
            where="sliding_window_scores",
            fix="pass image[0] for a batch of one",
        )
    win_h, win_w = (window, window) if isinstance(window, int) else window
    rows, cols = window_grid(tuple(image.shape[1:]), (win_h, win_w), stride)
    corners = [(i * stride, j * stride) for i in range(rows) for j in range(cols)]
    outputs = []
    for start in range(0, len(corners), batch_size):
        crops = torch.stack([image[:, y : y + win_h, x : x + win_w] for y, x in corners[start : start + batch_size]])
        out = model(crops)  # (b, K) or (b, K, 1, 1)
        outputs.append(out.reshape(out.shape[0], -1))
    return torch.cat(outputs).T.reshape(-1, rows, cols)
