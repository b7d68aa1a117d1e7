"""Grad-CAM for the class the user picks (:func:`cnnlab.explain.explain`), over the picture the model saw,
scaled up for the page.

>>> import torch
>>> from cnnlab.explore.subject import zoo_subject
>>> subject = zoo_subject("cnn_small")
>>> x = torch.zeros(1, 28, 28)
>>> view = cam_view(subject, x, subject.to_image(x), target=3)
>>> view["class"], view["layer"], view["png"][:22]
(3, 'features.4', 'data:image/png;base64,')
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cnnlab.explain import default_target_layer, explain, overlay
from cnnlab.explore.maps import data_url, png_bytes
from cnnlab.explore.subject import Subject

VIEW_SIDE = 320
"""The overlay is scaled up (whole pixels) until its shorter side reaches at least this."""


def cam_view(subject: Subject, x: torch.Tensor, picture: np.ndarray, target: int | None) -> dict[str, Any]:
    """Grad-CAM of class ``target`` (None: the predicted one) at the model's Grad-CAM layer, for input ``x``
    ``(C, H, W)`` whose picture is ``picture`` ``(H, W, C)`` uint8."""
    layer = default_target_layer(subject.model)
    result = explain(subject.model, x[None], "gradcam", layer, target)
    index = int(result.targets[0])
    probability = float(result.logits.softmax(dim=1)[0, index])
    scale = max(1, -(-VIEW_SIDE // min(picture.shape[:2])))
    view = picture.repeat(scale, axis=0).repeat(scale, axis=1)
    image = overlay(view[..., 0] if view.shape[2] == 1 else view, result.maps[0])  # the map is resized to the view
    return {
        "png": data_url(png_bytes(image)),
        "class": index,
        "label": subject.classes[index],
        "probability": probability,
        "layer": layer,
    }
