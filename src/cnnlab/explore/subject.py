"""What the explorer looks at: a classifier, how an image becomes its input, and whether it was trained.

A trained run's classifier (``cnnlab.tasks.classify.predictor.Classifier``, or anything with the same fields)
becomes a :class:`Subject` with :func:`subject_of`; a zoo model's name becomes an *untrained* one with
:func:`zoo_subject` (random weights: the page says so).

>>> subject = zoo_subject("cnn_small")
>>> subject.name, subject.input_size, subject.trained, len(subject.classes)
('cnn_small', (1, 28, 28), False, 10)
>>> subject.to_image(torch.zeros(1, 28, 28)).shape       # what the model saw, uint8 (H, W, C)
(28, 28, 1)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.core.constants import IMAGENET_MEAN, IMAGENET_STD
from cnnlab.core.errors import ConfigError, with_article
from cnnlab.models import create_model, model_entry


@dataclass(frozen=True)
class Subject:
    """A classifier in eval mode with its preprocessing: ``resize`` (shorter side, then centre crop) or ``fit``
    (``stretch``/``crop``/``pad`` to ``input_size``) and ``(x - mean) / std``; ``source`` says where it came from."""

    model: nn.Module
    name: str
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: tuple[int, int, int]  # (C, H, W)
    resize: int | None = None
    fit: str = "stretch"
    source: str = ""
    trained: bool = True

    def to_image(self, x: torch.Tensor) -> np.ndarray:
        """Undo the normalisation of one input ``(C, H, W)``: uint8 ``(H, W, C)``, the picture the model saw."""
        mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        pixels = (x.detach().float().cpu() * std + mean) * 255.0
        return pixels.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()

    @property
    def note(self) -> str:
        """One line for the page: where the weights come from."""
        if self.trained:
            return f"trained weights from {self.source}"
        return (
            f"untrained: random weights from create_model('{self.name}'); the maps show what random filters do, "
            "not what a trained network learned (explore a run folder from `cnnlab train` for that)"
        )


def subject_of(classifier: Any) -> Subject:
    """A loaded classifier (``model``, ``name``, ``classes``, ``mean``, ``std``, ``input_size``, ``resize``, ``fit``,
    ``source``: what ``load_classifier`` returns) as a trained :class:`Subject`."""
    return Subject(
        model=classifier.model.eval(),
        name=classifier.name,
        classes=tuple(classifier.classes),
        mean=tuple(classifier.mean),
        std=tuple(classifier.std),
        input_size=tuple(classifier.input_size),  # type: ignore[arg-type]
        resize=getattr(classifier, "resize", None),
        fit=getattr(classifier, "fit", "stretch"),
        source=str(getattr(classifier, "source", "")),
    )


def zoo_subject(name: str) -> Subject:
    """The zoo classifier ``name`` with random weights, at its paper's input size, ImageNet mean and std, and
    classes named ``"0"``, ``"1"``, ... (an unknown name answers "did you mean ...")."""
    entry = model_entry(name)
    if entry.task != "classify":
        raise ConfigError(
            f"'{name}' is {with_article(entry.task)} model; cnnlab explore shows classifiers",
            where="RUN_OR_MODEL",
            fix="pick a classifier from `cnnlab models`, or a run folder of `cnnlab train`",
        )
    if len(entry.default_input) != 3:
        raise ConfigError(
            f"'{name}' takes inputs of shape {entry.default_input}; cnnlab explore shows image models (C, H, W)",
            where="RUN_OR_MODEL",
            fix="pick a Conv2D classifier from `cnnlab models`",
        )
    channels, height, width = entry.default_input
    model = create_model(name).eval()
    with torch.no_grad():
        count = int(model(torch.zeros(1, channels, height, width)).shape[1])
    return Subject(
        model=model,
        name=name,
        classes=tuple(str(i) for i in range(count)),
        mean=tuple(IMAGENET_MEAN[:channels]),
        std=tuple(IMAGENET_STD[:channels]),
        input_size=(channels, height, width),
        source=f"create_model('{name}')",
        trained=False,
    )
