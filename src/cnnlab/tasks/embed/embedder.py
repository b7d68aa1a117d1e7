"""An embedder ready to use: a trained run's checkpoint or the pretrained dlib model, with its input
preparation, its verification threshold and the face front-end in front of it.

``Embedder.load("runs/embed/dlib_resnet29-1")`` reads a run (the threshold calibrated on its held-out people
comes with it); ``Embedder.load("dlib_resnet29")`` the pretrained dlib ResNet-29 from the face weights folder
(threshold 0.6, dlib's). :meth:`Embedder.embed_files` takes photos: with ``faces="auto"`` (the default of
``cnnlab verify`` / ``identify``) each goes through :class:`~cnnlab.tasks.embed.frontend.FaceFrontEnd` first.

>>> import torch
>>> from cnnlab.models import create_model
>>> from cnnlab.models.embed.head import EmbeddingNet
>>> net = EmbeddingNet(create_model("lenet5", num_classes=2, in_chans=1), dim=8).eval()
>>> e = Embedder(net, input_size=(1, 32, 32), mean=(0.5,), std=(0.25,), threshold=0.9, name="toy")
>>> vectors = e.embed_arrays([np.zeros((40, 30, 3), np.uint8), np.full((20, 20), 255, np.uint8)])
>>> tuple(vectors.shape), e.verify(vectors[0], vectors[0])
((2, 8), (0.0, True))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from cnnlab.core.errors import ConfigError, with_article
from cnnlab.core.rundir import load_checkpoint
from cnnlab.data.images import Fit, read_image, resize_image
from cnnlab.models import create_model, model_entry
from cnnlab.models.embed.dlib_resnet import DLIB_THRESHOLD, dlib_chip, load_dlib_resnet29
from cnnlab.models.embed.head import EmbeddingNet, UnitEmbedding
from cnnlab.tasks.embed.course import COURSE_THRESHOLD
from cnnlab.tasks.embed.frontend import FaceChip, FaceFrontEnd, FaceMode, needs_detector

PRETRAINED = {"dlib_resnet29": "dlib's ResNet-29 face embedder (face-api.js weights, LFW 99.38%)"}
"""Embedders usable without training, by name."""

BATCH = 64


@dataclass
class Embedded:
    """One photo's embedding (``None`` when no face was found) and what the front-end did."""

    path: str
    vector: torch.Tensor | None
    note: str
    box: tuple[float, float, float, float] | None = None


@dataclass
class Embedder:
    """``model`` maps prepared inputs ``(N, C, H, W)`` to embeddings; ``input_size`` = (C, H, W); images are
    resized with ``fit`` and normalised with ``mean``/``std`` (on 0..1 pixels); ``prepare`` replaces that
    whole path when set (the dlib model's own chip). ``threshold``: the verification distance (a run too small
    to hold out people stores none: the course's 0.7 then). ``flip``: each embedding is the normalised mean of
    the picture's and its mirror image's (a run trained with mirrored faces: measured on ORL, docs/faces.md)."""

    model: nn.Module
    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    threshold: float
    name: str
    fit: Fit = "stretch"
    prepare: Callable[[np.ndarray], torch.Tensor] | None = None
    flip: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    _front: FaceFrontEnd | None = None

    @classmethod
    def load(cls, target: str | Path) -> Embedder:
        """A run folder, its checkpoint, or a pretrained embedder's name (:data:`PRETRAINED`)."""
        if str(target) in PRETRAINED:
            net = load_dlib_resnet29()
            return cls(net, (3, 150, 150), (0.0,) * 3, (1.0,) * 3, DLIB_THRESHOLD, str(target), prepare=dlib_chip)
        path = Path(target)
        checkpoint = path / "checkpoints" / "best.pt" if path.is_dir() else path
        if not checkpoint.is_file():
            raise ConfigError(
                "no embedding run or pretrained embedder here",
                where=str(target),
                fix="pass a run folder of cnnlab train --task embed, or " + " | ".join(PRETRAINED),
            )
        state = load_checkpoint(checkpoint)
        if state.get("task") != "embed":
            raise ConfigError(
                f"this checkpoint is {with_article(state.get('task') or 'classify')} model, not an embedder",
                where=str(checkpoint),
                fix="pass a run of cnnlab train --task embed, or dlib_resnet29",
            )
        model = build_embedding_net(state)
        model.load_state_dict(state["model"])
        return cls.from_meta(model.eval(), state)

    @classmethod
    def from_meta(cls, model: nn.Module, meta: dict[str, Any]) -> Embedder:
        """An embedder from a model and the entries a run stores with it (input size, normalisation, ...)."""
        channels, height, width = meta["input_size"]
        return cls(
            model,
            (channels, height, width),
            tuple(meta["mean"]),
            tuple(meta["std"]),
            float(meta["threshold"]) if meta.get("threshold") is not None else COURSE_THRESHOLD,
            meta.get("model_name", "embedder"),
            fit=meta.get("fit", "stretch"),
            flip=meta.get("tta") == "flip",
            meta=meta,
        )

    # ----- inputs ---------------------------------------------------------------------------------
    def to_input(self, pixels: np.ndarray) -> torch.Tensor:
        """One uint8 picture ``(H, W)`` or ``(H, W, C)`` -> the model's normalised input ``(C, H, W)``."""
        if self.prepare is not None:
            return self.prepare(pixels)
        channels, height, width = self.input_size
        image = Image.fromarray(pixels.squeeze(-1) if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels)
        image = resize_image(image.convert("L" if channels == 1 else "RGB"), (height, width), self.fit)
        x = torch.from_numpy(np.asarray(image, dtype=np.float32).copy()).reshape(height, width, channels)
        x = x.permute(2, 0, 1) / 255
        return (x - torch.tensor(self.mean)[:, None, None]) / torch.tensor(self.std)[:, None, None]

    def embed_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """Prepared inputs ``(N, C, H, W)`` -> embeddings ``(N, D)`` (float32, in batches, no gradients)."""
        self.model.eval()
        out = []
        with torch.inference_mode():
            for start in range(0, len(inputs), BATCH):
                x = inputs[start : start + BATCH]
                vectors = self.model(x).float()
                out.append(F.normalize(vectors + self.model(x.flip(-1)).float(), dim=1) if self.flip else vectors)
        return torch.cat(out)

    def embed_arrays(self, pictures: Sequence[np.ndarray]) -> torch.Tensor:
        """uint8 pictures (any sizes) -> embeddings ``(N, D)``."""
        return self.embed_inputs(torch.stack([self.to_input(p) for p in pictures]))

    def embed_uint8(self, images: torch.Tensor) -> torch.Tensor:
        """A decoded dataset's ``(N, C, H, W)`` uint8 images -> embeddings ``(N, D)`` (normalised in one go when
        they already have the input size, as a run's own data has)."""
        if self.prepare is None and tuple(images.shape[1:]) == self.input_size:
            mean, std = torch.tensor(self.mean)[:, None, None], torch.tensor(self.std)[:, None, None]
            return self.embed_inputs((images.float() / 255 - mean) / std)
        return self.embed_arrays([image.permute(1, 2, 0).numpy() for image in images])

    # ----- photos -------------------------------------------------------------------------------
    def front_end(self) -> FaceFrontEnd:
        if self._front is None:
            self._front = FaceFrontEnd.load()
        return self._front

    def chip(self, path: str | Path, faces: FaceMode = "auto") -> FaceChip:
        """The face the embedder sees in a photo (the whole picture with ``faces="none"``)."""
        pixels = read_image(path, channels=3)
        front = self.front_end() if needs_detector(pixels.shape, faces) else FaceFrontEnd(detector=None, onet=None)
        return front.chip(pixels, mode=faces)

    def embed_files(self, paths: Sequence[str | Path], faces: FaceMode = "auto") -> list[Embedded]:
        """Each photo's embedding and the front-end's note; a photo with no face gets ``vector=None`` and says so."""
        from cnnlab.tasks.embed.frontend import NoFaceFound

        out = []
        for path in paths:
            try:
                chip = self.chip(path, faces)
            except NoFaceFound as exc:
                out.append(Embedded(str(path), None, str(exc)))
                continue
            out.append(Embedded(str(path), self.embed_arrays([chip.pixels])[0], chip.note, chip.box))
        return out

    def verify(self, first: torch.Tensor, second: torch.Tensor) -> tuple[float, bool]:
        """``(distance, same person?)`` for two embeddings, with this embedder's threshold."""
        distance = float((first - second).norm())
        return round(distance, 4), distance <= self.threshold


def build_embedding_net(state: dict[str, Any]) -> nn.Module:
    """The network a run's checkpoint holds (weights not loaded): the zoo backbone with its options,
    wrapped in :class:`~cnnlab.models.embed.head.EmbeddingNet`, or a fine-tuned pretrained embedder in
    :class:`~cnnlab.models.embed.head.UnitEmbedding`."""
    if model_entry(state["model_name"]).task == "embed":  # a fine-tuned pretrained embedder: its own layout
        return UnitEmbedding(create_model(state["model_name"], pretrained=None))
    options = dict(state.get("model_options") or {})
    dim = int(options.pop("dim", 128))
    dropout = float(options.pop("dropout", 0.0))
    channels = state["input_size"][0]
    backbone = create_model(state["model_name"], num_classes=2, in_chans=channels, **options)
    return EmbeddingNet(backbone, dim=dim, dropout=dropout)
