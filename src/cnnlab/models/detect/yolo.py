"""A YOLO-style single-stage detector on any zoo backbone: a grid of cells per scale, anchor boxes per cell,
and for every anchor of every cell one raw vector ``[t_x, t_y, t_w, t_h, t_o, class logits...]``.

Scales: the backbone's stride-8, 16 and 32 feature maps (the deepest three reductions it has, found with
one forward pass on zeros, or its declared ``feature_layers``), joined top-down as in a feature pyramid
(Lin et al. 2017): 1x1 lateral convs to ``width`` channels, upsample-and-add, one 3x3 conv per level, and a
1x1 head conv with ``anchors x (5 + classes)`` outputs. Boxes decode as in YOLOv5 (Jocher et al. 2020):
centre = ``(2 sigmoid(t_xy) - 0.5 + cell) * stride``, size = ``(2 sigmoid(t_wh))^2 * anchor``,
objectness and classes by sigmoid; the course's YOLOv2 decode (``exp`` sizes) is
:func:`cnnlab.tasks.detect.course.yolo_head`.

>>> net = create_model("yolo_tiny", num_classes=3, width=8)
>>> [tuple(o.shape) for o in net(torch.zeros(1, 3, 64, 96))]
[(1, 3, 8, 12, 8), (1, 3, 4, 6, 8), (1, 3, 2, 3, 8)]
>>> net.decode(net(torch.zeros(1, 3, 64, 96))).shape  # (B, cells x anchors, 4 box + 1 objectness + 3 classes)
torch.Size([1, 378, 8])
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.models.registry import create_model, register_model
from cnnlab.models.weights import WeightSpec, load_weights

PAPER = "Redmon & Farhadi 2017/2018 (YOLOv2/v3: grid + anchors), Lin et al. 2017 (FPN), Jocher et al. 2020 (YOLOv5)"

DEFAULT_ANCHORS: tuple[tuple[float, float], ...] = (
    (10, 13), (16, 30), (33, 23), (30, 61), (62, 45), (59, 119), (116, 90), (156, 198), (373, 326),
)  # fmt: skip
"""YOLOv3's nine COCO anchors (pixels at 416 px), three per scale; a detect run replaces them with k-means
anchors of its own training boxes."""


class _Stop(Exception):
    """Raised by the hook on the deepest tapped layer: nothing after it needs computing."""


def _longest_stack(model: nn.Module) -> tuple[str, int]:
    stacks = [(name, len(m)) for name, m in model.named_modules() if isinstance(m, nn.Sequential | nn.ModuleList)]
    return max(stacks, key=lambda item: item[1], default=("", 0))


def layer_strides(backbone: nn.Module, in_chans: int, probe: int = 256) -> list[tuple[str, int, int]]:
    """``(layer, channels, stride)`` of the backbone's stage ends in forward order: its declared
    ``feature_layers``, else the blocks of its longest ``Sequential``/``ModuleList``; measured on one
    ``probe`` x ``probe`` input of zeros.

    >>> [s for _, _, s in layer_strides(create_model("resnet18"), 3)]
    [4, 8, 16, 32]
    """
    declared = tuple(getattr(backbone, "feature_layers", ()))
    if declared:
        names = list(declared)
    else:
        stack, count = _longest_stack(backbone)
        names = [f"{stack}.{i}" for i in range(count)]
    shapes: dict[str, torch.Size] = {}
    handles = [
        backbone.get_submodule(n).register_forward_hook(lambda m, a, out, n=n: shapes.__setitem__(n, out.shape))
        for n in names
    ]
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            getattr(backbone, "forward_features", backbone)(torch.zeros(1, in_chans, probe, probe))
    finally:
        for handle in handles:
            handle.remove()
        backbone.train(was_training)
    return [(n, shapes[n][1], probe // shapes[n][-1]) for n in names if n in shapes and len(shapes[n]) == 4]


def find_taps(stages: list[tuple[str, int, int]], levels: int = 3) -> list[tuple[str, int, int]]:
    """The feature maps a detector reads: the last layer at each of the deepest ``levels`` strides (>= 4)
    among ``stages`` (:func:`layer_strides`).

    >>> [t[2] for t in find_taps(layer_strides(create_model("efficientnet_lite0"), 3))]
    [8, 16, 32]
    """
    last_at = {stride: (name, channels, stride) for name, channels, stride in stages}
    taps = [last_at[s] for s in sorted(last_at) if s >= 4][-levels:]
    if not taps:
        raise ConfigError(
            "the backbone has no feature maps at stride 4 or more to detect on",
            where="detector backbone",
            fix="pick a zoo backbone with pooling stages (efficientnet_lite0, resnet18, mobilenet_v2, vgg11)",
        )
    return taps


def _conv(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(c_out), nn.SiLU(inplace=True)
    )


class TinyBackbone(nn.Module):
    """A Tiny-YOLO-like backbone to train from scratch: five 3x3 conv + BN + SiLU stages, each halving the
    size (strides 2..32), widths ``width x (1, 2, 4, 8, 16)``."""

    def __init__(self, in_chans: int = 3, width: int = 16) -> None:
        super().__init__()
        widths = [width * 2**i for i in range(5)]
        self.stages = nn.Sequential(*[_conv(c, w, 3, 2) for c, w in zip([in_chans, *widths[:-1]], widths, strict=True)])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)


class YoloDetector(nn.Module):
    """``backbone`` -> pyramid (``lateral``, ``smooth``) -> per-level ``heads``; :meth:`forward` gives raw maps
    ``(B, A, H, W, 5 + K)`` per level, :meth:`decode` boxes in input pixels.

    ``anchors``: ``levels x A`` (width, height) pairs in input pixels, small to large, split evenly over the
    levels (shallowest level: smallest anchors).
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        in_chans: int = 3,
        anchors: Sequence[Sequence[float]] = DEFAULT_ANCHORS,
        width: int = 64,
    ) -> None:
        super().__init__()
        self.stages = layer_strides(backbone, in_chans)  # before the tap hooks: they stop the backbone early
        taps = find_taps(self.stages)
        for name in getattr(backbone, "classifier_layers", ()):  # never run: not kept in the detector's weights
            parent, _, leaf = name.rpartition(".")
            setattr(backbone.get_submodule(parent) if parent else backbone, leaf, nn.Identity())
        self.backbone, self.num_classes = backbone, num_classes
        self.tap_layers = [name for name, _, _ in taps]
        self.strides = [stride for _, _, stride in taps]
        self.first_conv = _first_conv(backbone)
        levels = len(taps)
        table = torch.tensor(anchors, dtype=torch.float32).reshape(-1, 2)
        if len(table) % levels:
            raise ConfigError(
                f"{len(table)} anchors cannot be split evenly over {levels} detection levels",
                where="anchors",
                fix=f"give a multiple of {levels} anchors",
            )
        self.register_buffer("anchors", table.reshape(levels, -1, 2))  # (L, A, 2) pixels
        per_cell = self.anchors.shape[1] * (5 + num_classes)
        self.lateral = nn.ModuleList([_conv(c, width, 1) for _, c, _ in taps])
        self.smooth = nn.ModuleList([_conv(width, width, 3) for _ in taps])
        self.heads = nn.ModuleList([nn.Conv2d(width, per_cell, 1) for _ in taps])
        self._init_head_biases()
        self._maps: dict[nn.Module, torch.Tensor] = {}
        for name in self.tap_layers:
            backbone.get_submodule(name).register_forward_hook(self._capture)

    def freeze_backbone(self, stride: int) -> int:
        """Stop training the backbone's layers up to its last stage end at ``stride`` or less (the stem and the
        high-resolution blocks: the costliest to train, and generic edge and texture filters in a pretrained
        backbone); returns how many parameters were frozen (0 when no stage ends that early).

        >>> create_model("yolo_tiny", num_classes=1, width=4).freeze_backbone(4)  # stem stages at strides 2 and 4
        420
        """
        early = [name for name, _, s in self.stages if s <= stride]
        if not early:
            return 0
        params = list(self.backbone.named_parameters())
        last = max(i for i, (name, _) in enumerate(params) if name.startswith(f"{early[-1]}."))
        for _, p in params[: last + 1]:
            p.requires_grad_(False)
        return sum(p.numel() for _, p in params[: last + 1])

    @property
    def num_anchors(self) -> int:
        return int(self.anchors.shape[1])

    def _init_head_biases(self) -> None:
        """YOLOv5's prior: about 8 objects per 640 px image, classes near-uniform (training starts calm)."""
        for head, stride in zip(self.heads, self.strides, strict=True):
            bias = head.bias.detach().view(self.num_anchors, -1)
            bias[:, 4] = math.log(8 / (640 / stride) ** 2)
            bias[:, 5:] = math.log(0.6 / max(self.num_classes - 0.99, 0.01))
            head.bias = nn.Parameter(bias.reshape(-1))

    def _capture(self, module: nn.Module, args: object, output: torch.Tensor) -> None:
        """Forward hook on every tapped layer (a bound method, so a deep copy, such as the EMA model, hooks
        into its own maps): keeps the map; after the deepest, stops the backbone (not while torch.export or
        torch.compile traces, which cannot follow an exception: they prune the unused layers instead)."""
        self._maps[module] = output
        if module is self.backbone.get_submodule(self.tap_layers[-1]) and not torch.compiler.is_compiling():
            raise _Stop

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The tapped backbone maps for ``x``, shallow to deep."""
        with contextlib.suppress(_Stop):
            getattr(self.backbone, "forward_features", self.backbone)(x)
        return [self._maps.pop(self.backbone.get_submodule(n)) for n in self.tap_layers]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        laterals = [conv(m) for conv, m in zip(self.lateral, self.features(x), strict=True)]
        for i in range(len(laterals) - 2, -1, -1):  # top-down: deep context into the finer maps
            laterals[i] = laterals[i] + F.interpolate(laterals[i + 1], size=laterals[i].shape[-2:], mode="nearest")
        outputs = []
        for smooth, head, m in zip(self.smooth, self.heads, laterals, strict=True):
            out = head(smooth(m))  # (B, A * (5 + K), H, W)
            b, _, h, w = out.shape
            outputs.append(out.view(b, self.num_anchors, 5 + self.num_classes, h, w).permute(0, 1, 3, 4, 2))
        return outputs

    def decode(self, outputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Raw level maps -> ``(B, N, 4 + 1 + K)``: ``xyxy`` boxes in input pixels, objectness and class
        probabilities (sigmoids), every anchor of every cell of every level."""
        decoded = []
        for level, raw in enumerate(outputs):
            b, a, h, w, _ = raw.shape
            stride = self.strides[level]
            p = raw.float().sigmoid()
            ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            cell = torch.stack([xs, ys], -1).to(p)  # (H, W, 2) as (x, y)
            centre = (p[..., :2] * 2 - 0.5 + cell) * stride
            size = (p[..., 2:4] * 2) ** 2 * self.anchors[level].view(1, a, 1, 1, 2)
            boxes = torch.cat([centre - size / 2, centre + size / 2], -1)
            decoded.append(torch.cat([boxes, p[..., 4:]], -1).reshape(b, -1, 5 + self.num_classes))
        return torch.cat(decoded, 1)


def _first_conv(backbone: nn.Module) -> str:
    name = getattr(backbone, "first_conv", None)
    if name is None:
        name = next(n for n, m in backbone.named_modules() if isinstance(m, nn.Conv2d))
    return f"backbone.{name}"


def yolo_on(
    backbone: str,
    num_classes: int = 80,
    in_chans: int = 3,
    anchors: Sequence[Sequence[float]] = DEFAULT_ANCHORS,
    width: int = 64,
    backbone_weights: str | Path | WeightSpec | None = None,
) -> YoloDetector:
    """A :class:`YoloDetector` on the zoo classifier ``backbone`` (its classifier head is never run),
    optionally with pretrained ``backbone_weights`` (a spec name such as ``efficientnet_lite0.imagenet``
    or a local file).

    >>> yolo_on("resnet18", num_classes=2, width=16).strides
    [8, 16, 32]
    """
    net = create_model(backbone, in_chans=in_chans)
    if backbone_weights is not None:
        load_weights(net, backbone_weights, model_name=backbone)
    return YoloDetector(net, num_classes, in_chans, anchors, width)


@register_model("yolo", paper=PAPER, default_input=(3, 416, 416), task="detect", min_size=32)
def yolo(
    num_classes: int = 80,
    in_chans: int = 3,
    backbone: str = "efficientnet_lite0",
    anchors: Sequence[Sequence[float]] = DEFAULT_ANCHORS,
    width: int = 64,
    backbone_weights: str | Path | WeightSpec | None = None,
) -> YoloDetector:
    """YOLO-style detector on any zoo ``backbone`` (default EfficientNet-Lite0)."""
    return yolo_on(backbone, num_classes, in_chans, anchors, width, backbone_weights)


@register_model("yolo_lite0", paper=PAPER, default_input=(3, 416, 416), task="detect", min_size=32)
def yolo_lite0(
    num_classes: int = 80,
    in_chans: int = 3,
    anchors: Sequence[Sequence[float]] = DEFAULT_ANCHORS,
    width: int = 64,
    backbone_weights: str | Path | WeightSpec | None = None,
) -> YoloDetector:
    """YOLO-style detector on EfficientNet-Lite0 (3.3 M backbone parameters; ImageNet weights:
    ``backbone_weights="efficientnet_lite0.imagenet"``)."""
    return yolo_on("efficientnet_lite0", num_classes, in_chans, anchors, width, backbone_weights)


@register_model("yolo_tiny", paper=PAPER, default_input=(3, 416, 416), task="detect", min_size=32)
def yolo_tiny(
    num_classes: int = 80, in_chans: int = 3, anchors: Sequence[Sequence[float]] = DEFAULT_ANCHORS, width: int = 16
) -> YoloDetector:
    """YOLO-style detector on a small from-scratch backbone (:class:`TinyBackbone`; seconds per epoch on
    small synthetic sets)."""
    return YoloDetector(TinyBackbone(in_chans, width), num_classes, in_chans, anchors, max(width * 2, 16))


class DecodedYolo(nn.Module):
    """A :class:`YoloDetector` whose forward returns decoded candidates ``(B, N, 5 + K)`` (boxes in input pixels,
    objectness, class probabilities): one tensor out, for the fast inference runner and ONNX export (NMS stays
    outside the graph: :func:`cnnlab.tasks.detect.decode.detections`).

    >>> net = DecodedYolo(create_model("yolo_tiny", num_classes=2, width=4))
    >>> net(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 252, 7])
    """

    def __init__(self, detector: YoloDetector) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.detector.decode(self.detector(x))
