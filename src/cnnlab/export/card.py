"""The model card saved beside every export: labels and preprocessing, so a consumer needs nothing else.

A card is ``<stem>.onnx.json`` next to ``<stem>.onnx`` (likewise ``<stem>.torchscript.json``,
``<stem>.safetensors.json``). It says which classes the outputs are, and how an image becomes the
input tensor: channel order (``RGB`` or ``L``), how it is fitted to ``height x width`` (stretched,
or shorter side resized and centre-cropped), scaled to 0..1, then ``(x - mean) / std`` per channel,
laid out ``NCHW`` float32 with any batch size.

>>> card = ModelCard(name="cnn_small", classes=("cat", "dog"), input_size=(1, 28, 28), mean=(0.5,), std=(0.25,))
>>> card.channel_order, card.to_dict()["input"]["shape"]
('L', ['batch', 1, 28, 28])
>>> from PIL import Image
>>> x = card.preprocess(Image.new("RGB", (40, 20), (255, 255, 255)))
>>> x.shape, x.dtype, float(x.max())  # white: (1 - 0.5) / 0.25
((1, 28, 28), dtype('float32'), 2.0)
>>> ModelCard.from_dict(card.to_dict()) == card
True
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image, ImageOps

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.core.rundir import atomic_write_text
from cnnlab.data.images import to_8bit
from cnnlab.data.preprocess import preprocess_image

CARD_VERSION = 1
Task = str  # a name in cnnlab.tasks.TASKS (the card travels without cnnlab, so it is plain text)


class ClassifierLike(Protocol):
    """What :meth:`ModelCard.from_classifier` reads (``cnnlab.tasks.classify.predictor.Classifier`` has it)."""

    name: str
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: tuple[int, int, int]
    resize: int | None


@dataclass(frozen=True)
class ModelCard:
    """Labels, preprocessing and provenance of one exported model (``to_dict`` is the JSON written)."""

    name: str
    classes: tuple[str, ...]
    input_size: tuple[int, ...]  # (C, H, W); (C, T) or (C, D, H, W) for Conv1D / Conv3D models
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: int | None = None  # None: stretch to (H, W); n: shorter side to n, then centre crop (H, W)
    task: Task = "classify"
    gradcam_layer: str | None = None
    format: str | None = None  # filled in by export: onnx | torchscript | safetensors
    file: str | None = None  # the model file's name, in the card's folder
    verification: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def channel_order(self) -> str:
        """``"RGB"`` for 3 channels, ``"L"`` (grey) for 1."""
        return "RGB" if self.input_size[0] == 3 else "L"

    @classmethod
    def from_classifier(cls, classifier: ClassifierLike, gradcam_layer: str | None = None) -> ModelCard:
        """The card of a loaded classifier (what `cnnlab.tasks.classify.predictor` loads)."""
        return cls(
            name=classifier.name,
            classes=tuple(classifier.classes),
            input_size=tuple(classifier.input_size),  # type: ignore[arg-type]
            mean=tuple(classifier.mean),
            std=tuple(classifier.std),
            resize=classifier.resize,
            gradcam_layer=gradcam_layer,
        )

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """A decoded Pillow image -> the model input for it, float32 ``(C, H, W)`` (add the batch axis yourself)."""
        channels, height, width = self.input_size
        image = to_8bit(ImageOps.exif_transpose(image), channels)  # same conversion as training reads
        if self.resize is not None:
            return preprocess_image(image, height, self.resize, self.mean, self.std).numpy()
        image = image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=3.0)
        pixels = np.asarray(image, dtype=np.float32).reshape(height, width, channels) / 255.0  # (H, W, C)
        mean, std = np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)
        return np.ascontiguousarray(((pixels - mean) / std).transpose(2, 0, 1))  # (C, H, W)

    def to_image(self, x: np.ndarray) -> np.ndarray:
        """Undo :meth:`preprocess`: ``(C, H, W)`` float -> uint8 ``(H, W, C)``, the picture the model saw."""
        mean, std = np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)
        pixels = (np.asarray(x, np.float32).transpose(1, 2, 0) * std + mean) * 255.0
        return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)

    def to_dict(self) -> dict[str, Any]:
        """The JSON layout written to ``<stem>.json`` (input and preprocessing spelled out for other languages)."""
        if len(self.input_size) != 3:
            return self._signal_dict()
        channels, height, width = self.input_size
        fit: dict[str, Any] = (
            {"method": "stretch", "size": [height, width]}
            if self.resize is None
            else {"method": "resize_shorter_then_center_crop", "shorter_side": self.resize, "crop": [height, width]}
        )
        return {
            **self._identity(),
            "input": {
                "name": "input",
                "shape": ["batch", channels, height, width],
                "layout": "NCHW",
                "dtype": "float32",
            },
            "output": {"name": "logits", "shape": ["batch", len(self.classes)], "apply": "softmax over axis 1"},
            "preprocessing": {
                "channel_order": self.channel_order,
                "resample": "bilinear",
                "fit": fit,
                "scale": "divide uint8 pixels by 255",
                "mean": list(self.mean),
                "std": list(self.std),
                "alpha": "composited on white",
                "exif_orientation": "applied",
            },
            "gradcam_layer": self.gradcam_layer,
            "verification": self.verification,
        }

    def _identity(self) -> dict[str, Any]:
        """What every card starts with: its version, the model, its task, file and classes."""
        return {
            "card_version": CARD_VERSION,
            "name": self.name,
            "task": self.task,
            "format": self.format,
            "file": self.file,
            "classes": list(self.classes),
        }

    def _signal_dict(self) -> dict[str, Any]:
        """The card of a Conv1D or Conv3D model: samples ``(C, T)`` or ``(C, D, H, W)`` go in as they are read;
        the graph normalises them itself (sequence models export behind their normalisation)."""
        return {
            **self._identity(),
            "input": {
                "name": "input",
                "shape": ["batch", *self.input_size],
                "layout": "NCT" if len(self.input_size) == 2 else "NCDHW",
                "dtype": "float32",
            },
            "output": {"name": "logits", "shape": ["batch", len(self.classes)], "apply": "softmax over axis 1"},
            "preprocessing": {"normalisation": "inside the graph: pass samples as they are read (audio: the run's "
                              "log-mel or waveform front-end, in its checkpoint)"},
            "gradcam_layer": self.gradcam_layer,
            "verification": self.verification,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "model card") -> ModelCard:
        """Read back :meth:`to_dict` output; a missing key is a :class:`ConfigError` naming it."""
        try:
            common = {
                "name": values["name"],
                "classes": tuple(values["classes"]),
                "task": values.get("task", "classify"),
                "gradcam_layer": values.get("gradcam_layer"),
                "format": values.get("format"),
                "file": values.get("file"),
                "verification": values.get("verification", {}),
            }
            shape = [int(n) for n in values["input"]["shape"][1:]]
            if len(shape) != 3:  # a Conv1D or Conv3D model's card: the graph normalises, no image preprocessing
                return cls(input_size=tuple(shape), mean=(0.0,), std=(1.0,), **common)
            prep = values["preprocessing"]
            fit = prep["fit"]
            return cls(
                input_size=(shape[0], shape[1], shape[2]),
                mean=tuple(float(v) for v in prep["mean"]),
                std=tuple(float(v) for v in prep["std"]),
                resize=None if fit["method"] == "stretch" else int(fit["shorter_side"]),
                **common,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"not a cnnlab model card ({type(exc).__name__}: {exc})",
                where=where,
                fix="use the .json that `cnnlab export` wrote beside the model",
            ) from None

    def with_export(self, fmt: str, file: str, verification: dict[str, Any]) -> ModelCard:
        """A copy naming the exported file and what its verification found."""
        return replace(self, format=fmt, file=file, verification=verification)


def card_path(model_file: str | Path) -> Path:
    """Where the card of ``model_file`` lives: beside it, its name (less a final ``.pt``) plus ``.json``.

    >>> card_path("out/model.onnx").as_posix(), card_path("out/model.torchscript.pt").as_posix()
    ('out/model.onnx.json', 'out/model.torchscript.json')
    """
    path = Path(model_file)
    return path.with_name(f"{path.name.removesuffix('.pt')}.json")


def save_card(card: ModelCard, path: str | Path) -> Path:
    """Write the card as indented JSON (atomically); returns the path."""
    atomic_write_text(path, json.dumps(card.to_dict(), indent=2) + "\n")
    return Path(path)


def load_card(model_file: str | Path) -> ModelCard:
    """The card saved beside ``model_file`` by ``cnnlab export``."""
    path = card_path(model_file)
    if not path.is_file():
        raise DataError(
            f"no model card beside {Path(model_file).name} (its labels and preprocessing: {path.name})",
            where=str(path),
            fix="export with `cnnlab export CHECKPOINT` (it writes the .json next to the model) and keep them together",
        )
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read the model card ({exc})", where=str(path), fix="export again") from None
    return ModelCard.from_dict(values, where=str(path))
