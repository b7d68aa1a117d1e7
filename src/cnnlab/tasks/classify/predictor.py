"""A trained or pretrained classifier ready for inference: model, classes and preprocessing in one object.

:func:`load_classifier` reads a checkpoint written by ``cnnlab train`` (or a run folder: its
``checkpoints/best.pt``); :func:`load_pretrained` takes a zoo model and a weights file, as
``cnnlab predict`` does. Both give a :class:`Classifier` whose :meth:`~Classifier.preprocess`
turns image files into the batch the model expects.

>>> import tempfile, torch
>>> from cnnlab.core.rundir import save_checkpoint
>>> from cnnlab.models import create_model
>>> path = tempfile.mkdtemp() + "/best.pt"
>>> model = create_model("cnn_small", num_classes=2, in_chans=1)
>>> save_checkpoint(path, {"model": model.state_dict(), "config": {"model": {"name": "cnn_small"}},
...     "classes": ["cat", "dog"], "mean": [0.5], "std": [0.25], "input_size": [1, 28, 28]})
>>> clf = load_classifier(path)
>>> clf.name, clf.classes, clf.input_size, clf.model.training
('cnn_small', ('cat', 'dog'), (1, 28, 28), False)
>>> probs = clf.predict_proba(torch.zeros(3, 1, 28, 28))  # bf16 where the CPU has it natively
>>> probs.shape, torch.allclose(probs.sum(dim=1), torch.ones(3))
(torch.Size([3, 2]), True)
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnlab.core.constants import IMAGENET_MEAN, IMAGENET_STD
from cnnlab.core.errors import ConfigError, WeightsError, with_article
from cnnlab.core.rundir import load_checkpoint
from cnnlab.data.images import Fit, read_image
from cnnlab.data.preprocess import load_image, preprocess_image
from cnnlab.models import create_model, model_entry
from cnnlab.models.weights import resolve_weights
from cnnlab.runtime.inference import fast_inference

_CHECKPOINT_KEYS = ("model", "config", "classes", "mean", "std", "input_size")


@dataclass(frozen=True)
class Classifier:
    """A model in eval mode with what it needs to read images and name its outputs.

    ``resize`` says how :meth:`preprocess` fits an image: a number resizes the shorter side to it and
    crops the centre (the ImageNet recipe that pretrained weights expect); ``None`` decodes it to
    ``input_size`` as ``fit`` says (stretch, centre-crop or pad: what ``cnnlab train --fit`` did).
    """

    model: nn.Module
    name: str
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: tuple[int, int, int]  # (C, H, W)
    resize: int | None = None
    source: str = ""
    fit: Fit = "stretch"
    assumed: bool = False  # preprocessing and class names guessed (weights file of no known spec)

    def preprocess(self, paths: Sequence[str | Path]) -> torch.Tensor:
        """Image files -> normalised batch ``(B, C, H, W)``."""
        channels, height, width = self.input_size
        if self.resize is not None:
            images = [
                preprocess_image(load_image(p, channels), height, self.resize, self.mean, self.std) for p in paths
            ]
            return torch.stack(images)
        arrays = np.stack(
            [read_image(p, channels=channels, size=(height, width), fit=self.fit) for p in paths]
        )  # (B, H, W, C)
        x = torch.from_numpy(arrays).permute(0, 3, 1, 2).float() / 255.0
        return (x - self._stat(self.mean)) / self._stat(self.std)

    def predict_proba(
        self, x: torch.Tensor, precision: str = "auto", compile: str = "auto", batch_size: int = 256
    ) -> torch.Tensor:
        """Class probabilities ``(B, num_classes)`` for a preprocessed batch (no gradients), on this CPU's fast
        path (:func:`cnnlab.runtime.inference.fast_inference`); ``precision="fp32"`` gives the model's exact outputs."""
        with fast_inference(self.model, precision, compile, batch_size, images=len(x)) as run:
            return run(x).softmax(dim=1)

    def to_image(self, x: torch.Tensor) -> np.ndarray:
        """Undo the normalisation of one preprocessed image ``(C, H, W)``: uint8 ``(H, W, C)``, what the model saw."""
        pixels = (x.detach().cpu() * self._stat(self.std)[0] + self._stat(self.mean)[0]) * 255.0
        return pixels.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()

    def class_index(self, name: str | int) -> int:
        """The index of a class given by name (exact, else case-insensitive, else any comma-separated
        synonym as in ImageNet's ``"tabby, tabby cat"``) or by its index.

        >>> Classifier(nn.Identity(), "x", ("tabby, tabby cat", "tiger cat"), (0.0,), (1.0,), (1, 2, 2)).class_index(
        ...     "Tabby Cat")
        0
        """
        if isinstance(name, str) and name in self.classes:  # before indices: class folders may be named "0".."9"
            return self.classes.index(name)
        if isinstance(name, int) or name.isdigit():
            index = int(name)
            if 0 <= index < len(self.classes):
                return index
            raise ConfigError(
                f"class index {index} is out of range", where="class", fix=f"use 0..{len(self.classes) - 1}"
            )
        wanted = name.strip().lower()
        for index, label in enumerate(self.classes):
            if wanted == label.lower() or wanted in (part.strip().lower() for part in label.split(",")):
                return index
        close = difflib.get_close_matches(name, self.classes, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise ConfigError(
            f"'{name}' is not one of the {len(self.classes)} classes of {self.name}",
            where="class",
            fix=f"{hint}pass a class name or index (e.g. {', '.join(self.classes[:3])})",
        )

    def _stat(self, values: tuple[float, ...]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1)  # (1, C, 1, 1)


def load_classifier(path: str | Path) -> Classifier:
    """A classifier from a ``cnnlab train`` checkpoint (``.pt``) or run folder (its ``checkpoints/best.pt``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoints" / "best.pt"
    state = load_checkpoint(path)
    missing = [key for key in _CHECKPOINT_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise WeightsError(
            f"not a cnnlab classifier checkpoint: it lacks {', '.join(missing)}",
            where=str(path),
            fix="pass a run folder or checkpoint written by `cnnlab train` (runs/classify/<name>/checkpoints/best.pt); "
            "a bare weights file goes to `cnnlab predict --model NAME --weights FILE`",
        )
    name = state["config"]["model"]["name"]
    channels, height, width = (int(v) for v in state["input_size"])
    classes = tuple(str(c) for c in state["classes"])
    model = create_model(name, num_classes=len(classes), in_chans=channels, **state.get("model_kwargs", {}))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise WeightsError(
            f"the checkpoint's weights do not fit model '{name}' ({str(exc).splitlines()[0]})",
            where=str(path),
            fix="the checkpoint was made by another version of the model; train again",
        ) from None
    return Classifier(
        model=model.eval(),
        name=name,
        classes=classes,
        mean=tuple(float(v) for v in state["mean"]),
        std=tuple(float(v) for v in state["std"]),
        input_size=(channels, height, width),
        resize=state.get("resize"),
        source=str(path),
        fit=state.get("fit", "stretch"),
    )


def load_pretrained(model_name: str, weights: str | Path) -> Classifier:
    """A zoo classifier with a weights file (a path or spec name); a known file brings its preprocessing
    and class names, any other gets the model's default input, ImageNet mean/std and classes ``"0"``, ``"1"``...
    """
    entry = model_entry(model_name)
    if entry.task != "classify":
        raise ConfigError(
            f"'{model_name}' is {with_article(entry.task)} model", where="--model", fix="pick a classifier"
        )
    path, spec = resolve_weights(weights)
    model = create_model(model_name, weights=path).eval()
    if spec is not None:
        channels, size, _ = spec.input_size
        resize, mean, std, classes = spec.resize, spec.mean, spec.std, spec.classes
    else:
        channels, size, _ = entry.default_input
        resize = round(size / 0.875)  # the usual 224 / 256 crop ratio
        mean, std = IMAGENET_MEAN[:channels], IMAGENET_STD[:channels]
        with torch.no_grad():
            count = model(torch.zeros(1, channels, size, size)).shape[1]
        classes = tuple(str(i) for i in range(count))
    return Classifier(
        model,
        model_name,
        tuple(classes),
        tuple(mean),
        tuple(std),
        (channels, size, size),
        resize,
        str(path),
        assumed=spec is None,
    )
