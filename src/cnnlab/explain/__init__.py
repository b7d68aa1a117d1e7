"""Grad-CAM and friends, feature maps, filters; works on any nn.Module; targets are classes or any score
function of the output (a box, an embedding's similarity: :func:`similarity_to`).

>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
>>> with GradCAM(net) as cam:
...     cam(torch.rand(1, 3, 16, 16)).shape
torch.Size([1, 16, 16])
"""

from cnnlab.explain.cam import (
    METHODS,
    Explanation,
    GradCAM,
    GradCAMPlusPlus,
    explain,
    feature_maps,
    first_layer_filters,
    saliency,
    similarity_to,
)
from cnnlab.explain.field import LayerField, layer_field, layer_fields, linearised, receptive_boxes
from cnnlab.explain.hooks import HookSet, default_target_layer, eval_mode, record_output, resolve_layer
from cnnlab.explain.maximise import maximise_units, unit_activation
from cnnlab.explain.units import LayerPatches, Patch, UnitPatches, default_layers, top_patches
from cnnlab.explain.visual import overlay, plot_cam, plot_feature_maps, plot_filters

__all__ = [
    "METHODS",
    "Explanation",
    "GradCAM",
    "GradCAMPlusPlus",
    "HookSet",
    "LayerField",
    "LayerPatches",
    "Patch",
    "UnitPatches",
    "default_layers",
    "default_target_layer",
    "eval_mode",
    "explain",
    "feature_maps",
    "first_layer_filters",
    "layer_field",
    "layer_fields",
    "linearised",
    "maximise_units",
    "overlay",
    "plot_cam",
    "plot_feature_maps",
    "plot_filters",
    "receptive_boxes",
    "record_output",
    "resolve_layer",
    "saliency",
    "similarity_to",
    "top_patches",
    "unit_activation",
]
