"""What the server runs: a classifier (onnxruntime or PyTorch), a segmentation model, a detector, an
embedder (face verification) or a sequence model (series, recordings, clips, volumes), behind one object.

:func:`load_served` takes a ``cnnlab train`` checkpoint / run folder, an exported ``.onnx`` with its card,
or a pretrained model's name (``dlib_resnet29``). A classifier checkpoint is served with onnxruntime by
default (exported in memory and verified against PyTorch at start-up, the faster path at batch 1) and keeps
its PyTorch model for Grad-CAM; an ``.onnx`` file alone cannot explain (no gradients). Thread safety:
onnxruntime sessions may run concurrently; every use of the PyTorch model holds one lock, because Grad-CAM
hooks a layer of the shared model and must not see another request's forward pass (and an embedder's face
front-end loads its weights once, under the same lock).

>>> import torch
>>> from cnnlab.export import ModelCard
>>> from cnnlab.models import create_model
>>> card = ModelCard(name="cnn_small", classes=("a", "b"), input_size=(1, 28, 28), mean=(0.5,), std=(0.25,))
>>> served = ServedModel(card, torch_model=create_model("cnn_small", num_classes=2, in_chans=1).eval())
>>> probs = served.predict(torch.zeros(1, 1, 28, 28).numpy())
>>> probs.shape, round(float(probs.sum()), 5), served.runtime, served.can_explain
((1, 2), 1.0, 'torch', True)

An embedder (``cnnlab.tasks.embed.Embedder``) answers ``/verify``: the face of each photo, then its embedding.

>>> from cnnlab.models.embed.head import EmbeddingNet
>>> from cnnlab.tasks.embed import Embedder
>>> net = EmbeddingNet(create_model("lenet5", num_classes=2, in_chans=1), dim=8).eval()
>>> toy = Embedder(net, input_size=(1, 32, 32), mean=(0.5,), std=(0.25,), threshold=0.9, name="toy")
>>> served = ServedModel(replace(card, name="toy", classes=(), task="embed"), embedder=toy)
>>> face = served.face(np.zeros((40, 30, 3), np.uint8), faces="none", name="the photo")
>>> face.note, face.box, tuple(served.embed([face.pixels]).shape), served.can_verify, served.embedding_dim
('the whole picture used as the face (faces: none)', None, (1, 8), True, 8)
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from cnnlab.core.errors import CnnlabError, ConfigError, RunDirError
from cnnlab.export import (
    ExportError,
    ModelCard,
    eager_runner,
    load_card,
    onnx_bytes,
    onnx_session,
    verify,
)

if TYPE_CHECKING:
    from cnnlab.tasks.base import Task

RUNTIMES = ("auto", "onnx", "torch")
CHECKPOINT_FIX = "pass a run folder (runs/<task>/<name>-<n>) or a checkpoint .pt written by `cnnlab train`"
FACES = "each photo's face is found, cropped and aligned first (query faces=auto|detect|none)"
WHOLE = "the whole picture used as the face (faces: none)"


@dataclass(frozen=True)
class Face:
    """The face an embedder sees in a photo: uint8 RGB ``pixels``, what the front-end did (``note``) and the face
    ``box`` (x1, y1, x2, y2) in the photo's pixels (None: the whole picture)."""

    pixels: np.ndarray
    note: str
    box: tuple[float, float, float, float] | None = None


class ServedModel:
    """A model ready for requests: ``predict`` (classifiers), ``explain`` (PyTorch classifiers), ``segment``,
    ``detect``, ``face`` and ``embed`` (embedders), ``predict_file`` and ``explain_file`` (sequence models)."""

    def __init__(
        self,
        card: ModelCard,
        *,
        session: Any = None,
        torch_model: nn.Module | None = None,
        segmenter: Any = None,
        detector: Any = None,
        embedder: Any = None,
        sequence: Any = None,
        routes: tuple[str, ...] | None = None,
    ) -> None:
        self.card = card
        self.routes = routes if routes is not None else _task_routes(card.task)  # endpoints its task answers
        self.session = session  # onnxruntime.InferenceSession or None
        self.torch_model = torch_model
        self.segmenter = segmenter  # cnnlab.tasks.segment.SegmentationModel or None
        self.detector = detector  # cnnlab.tasks.detect.Detector or None
        self.embedder = embedder  # cnnlab.tasks.embed.Embedder or None
        self.sequence = sequence  # cnnlab.tasks.sequence.SequenceModel or None: /predict and /explain take files
        self._lock = threading.Lock()

    @property
    def runtime(self) -> str:
        """``onnxruntime`` or ``torch``: what answers ``/predict`` (and ``/segment``)."""
        return "onnxruntime" if self.session is not None else "torch"

    @property
    def can_explain(self) -> bool:
        """Grad-CAM needs the PyTorch classifier (gradients)."""
        return self.torch_model is not None and "explain" in self.routes

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(B, K)`` for a preprocessed float32 batch ``(B, C, H, W)``."""
        if self.session is not None:
            logits = self.session.run(None, {"input": x})[0]  # (B, K)
        else:
            with self._lock, torch.inference_mode():
                logits = self._torch()(torch.from_numpy(x)).numpy()
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def explain(self, x: np.ndarray, target: int | None = None) -> tuple[np.ndarray, int, float]:
        """Grad-CAM of one image ``(1, C, H, W)``: heatmap ``(H, W)`` in [0, 1], class explained, its probability."""
        from cnnlab.explain import explain

        with self._lock:
            result = explain(self._torch(), torch.from_numpy(x), "gradcam", self.card.gradcam_layer, target)
        index = int(result.targets[0])
        probability = float(result.logits.softmax(dim=1)[0, index])
        return result.maps[0].numpy(), index, probability

    def segment(self, pixels: np.ndarray) -> np.ndarray:
        """Class index per pixel, uint8 ``(H, W)``, for one uint8 image ``(H, W, C)`` of any size."""
        images = torch.from_numpy(np.array(pixels, dtype=np.uint8)).permute(2, 0, 1)[None]  # (1, C, H, W)
        with self._lock:
            logits = self.segmenter(images)  # (1, K, H, W)
        return logits[0].argmax(0).numpy().astype(np.uint8)

    def detect(self, pixels: np.ndarray, score_threshold: float) -> dict[str, torch.Tensor]:
        """Boxes (``xyxy`` in the image's pixels), scores and labels for one uint8 image ``(H, W, C)``."""
        with self._lock:
            return self.detector.detect_pixels(pixels, score_threshold)

    def predict_file(self, name: str, data: bytes, top_k: int) -> dict[str, Any]:
        """A sequence model's top classes for an uploaded file (``name``'s suffix says its format)."""
        with self._lock:
            return self.sequence.predict_upload(name, data, top_k)

    def explain_file(self, name: str, data: bytes) -> tuple[bytes, int, float]:
        """A sequence model's Grad-CAM picture (PNG) of an uploaded file, the class explained, its probability."""
        with self._lock:
            return self.sequence.explain_upload(name, data)

    @property
    def can_verify(self) -> bool:
        """``/verify`` and ``/embed`` need an embedder."""
        return self.embedder is not None and "verify" in self.routes

    def face(self, pixels: np.ndarray, faces: str, name: str) -> Face:
        """The face the embedder sees in one uint8 RGB photo ``(H, W, 3)``: found, cropped and aligned by the
        embedder's front-end (``faces`` = ``auto`` / ``detect``; its weights load on the first photo that needs
        them), or the whole picture (``none``). No face found is the front-end's DataError naming ``name``."""
        if faces == "none":
            return Face(pixels, WHOLE)
        with self._lock:
            chip = self.embedder.front_end().chip(pixels, mode=faces, name=name)
        return Face(chip.pixels, chip.note, None if chip.box is None else tuple(float(v) for v in chip.box))

    def embed(self, pictures: list[np.ndarray]) -> torch.Tensor:
        """Embeddings ``(N, D)`` of uint8 pictures (face crops) of any sizes."""
        with self._lock:
            return self.embedder.embed_arrays(pictures)

    @cached_property
    def embedding_dim(self) -> int:
        """The length of the embedder's vectors (one forward pass of a black picture, the first time)."""
        channels, height, width = self.embedder.input_size
        return int(self.embed([np.zeros((height, width, channels), np.uint8)]).shape[1])

    def info(self) -> dict[str, Any]:
        """What ``GET /model`` answers: the card plus how this server runs it (and an embedder's threshold)."""
        info = {
            **self.card.to_dict(),
            "runtime": self.runtime,
            "endpoints": {
                "predict": "predict" in self.routes,
                "explain": self.can_explain,
                "segment": "segment" in self.routes and self.segmenter is not None,
                "detect": "detect" in self.routes and self.detector is not None,
                "verify": self.can_verify,
                "embed": self.can_verify,
            },
        }
        if self.can_verify:
            info |= self._embedder_info(info["preprocessing"])
        if self.sequence is not None:
            info["files"] = {"kind": self.sequence.kind, "suffixes": list(self.sequence.accepts)}
        return info

    def _embedder_info(self, preprocessing: dict[str, Any]) -> dict[str, Any]:
        """What an embedder adds to ``/model``: its name, threshold, output and how a photo becomes its input."""
        embedder = self.embedder
        _, height, width = embedder.input_size
        fit = {"method": embedder.fit, "size": [height, width]}
        if embedder.prepare is not None:  # the model's own preparation (dlib's face chip) replaces fit and mean/std
            preprocessing = {"faces": FACES, "prepare": embedder.prepare.__name__}
        else:
            preprocessing = {"faces": FACES, **preprocessing, "fit": fit}
        return {
            "embedder": embedder.name,
            "threshold": round(embedder.threshold, 6),
            "output": {
                "name": "embedding",
                "shape": ["batch", self.embedding_dim],
                "apply": "Euclidean distance between two photos' embeddings: at most the threshold is the same person",
            },
            "preprocessing": preprocessing,
        }

    def _torch(self) -> nn.Module:
        if self.torch_model is None:
            raise ConfigError("no PyTorch model loaded", where="server", fix="serve the checkpoint, not the .onnx")
        return self.torch_model


def load_served(path: str | Path, runtime: str = "auto") -> ServedModel:
    """Load what ``cnnlab serve`` serves: an exported ``.onnx`` (with its card), a checkpoint / run folder, or a
    pretrained model's name (a task's ``pretrained``, e.g. ``dlib_resnet29``).

    ``runtime`` for a classifier checkpoint: ``onnx`` (export in memory, verify, run with onnxruntime),
    ``torch`` (eager PyTorch), or ``auto`` (``onnx`` when onnxruntime and onnxscript are installed).
    """
    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime '{runtime}'", where="--runtime", fix=f"use one of {', '.join(RUNTIMES)}")
    path = Path(path)
    if path.suffix == ".onnx":
        if runtime == "torch":
            raise ConfigError("an .onnx file runs on onnxruntime", where="--runtime", fix="drop --runtime torch")
        session = onnx_session(path)  # first: a file that is no model is the problem, not its missing card
        card = load_card(path)
        if card.task == "sequence":
            raise ConfigError(
                "an exported sequence model has no file reader (audio features, series formats) in it",
                where=str(path),
                fix="serve the run folder it was exported from: cnnlab serve runs/sequence/<run>",
            )
        return ServedModel(card, session=session)
    task, predictor = load_trained(path)
    if not task.routes:
        raise ConfigError(
            f"the server does not answer for {task.name} models",
            where=str(path),
            fix=f"cnnlab predict {path} FILE... answers for files; cnnlab export {path} writes it for other servers",
        )
    if task.name == "sequence":
        card = replace(ModelCard.from_classifier(predictor), task=task.name)
        return ServedModel(card, torch_model=predictor.model, sequence=predictor, routes=task.routes)
    if task.routes == ("verify",):
        return ServedModel(_embedder_card(predictor, task.name), embedder=predictor, routes=task.routes)
    if task.routes == ("segment",):
        card = ModelCard(
            name=type(predictor.model).__name__,
            classes=tuple(predictor.classes),
            input_size=(predictor.channels, predictor.tile, predictor.tile),
            mean=tuple(predictor.mean),
            std=tuple(predictor.std),
            task=task.name,
        )
        return ServedModel(card, segmenter=predictor, routes=task.routes)
    if task.routes == ("detect",):
        card = replace(ModelCard.from_classifier(predictor), task=task.name)
        return ServedModel(card, detector=predictor, routes=task.routes)
    from cnnlab.explain import default_target_layer

    classifier = predictor
    card = ModelCard.from_classifier(classifier, default_target_layer(classifier.model))
    if runtime == "auto":
        runtime = "onnx" if all(importlib.util.find_spec(m) for m in ("onnxruntime", "onnxscript")) else "torch"
    session = _verified_session(classifier.model, card) if runtime == "onnx" else None
    return ServedModel(card, session=session, torch_model=classifier.model, routes=task.routes)


def load_trained(target: str | Path) -> tuple[Task, Any]:
    """The :class:`cnnlab.tasks.Task` that wrote ``target`` and its loaded predictor (``Task.load``).

    ``target`` is a run folder (its ``checkpoints/best.pt`` is loaded), a checkpoint ``.pt``, or a pretrained
    model's name that is not a path here (a task's ``pretrained``: ``dlib_resnet29``). What
    ``cnnlab serve`` and ``cnnlab export`` load: every way the path can be wrong (missing, a folder without
    ``checkpoints/best.pt``, an empty or damaged file) is one error line naming it, with a fix for them.

    >>> import tempfile
    >>> load_trained(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.ConfigError: not a run folder: it has no checkpoints/best.pt [...]. Fix: pass a run folder ...
    """
    from cnnlab.tasks import TASKS, task_of
    from cnnlab.tasks.base import checkpoint_of

    if not Path(target).exists() and any(str(target) in TASKS.get(name).pretrained for name in TASKS.names()):
        task = task_of(str(target))
        return task, task.load(str(target))
    target = Path(target)
    checkpoint = checkpoint_of(target)
    if target.is_dir() and not checkpoint.is_file():
        raise _no_best(target)
    if not checkpoint.is_file():
        raise RunDirError("checkpoint not found", where=str(target), fix=CHECKPOINT_FIX)
    try:
        task = task_of(target)
        return task, task.load(checkpoint)
    except RunDirError as exc:  # empty, damaged or unsafe: the loader's fix is about resuming a run
        raise RunDirError(exc.what, where=exc.where, fix=CHECKPOINT_FIX) from None


def _no_best(folder: Path) -> CnnlabError:
    """Why a folder has no ``checkpoints/best.pt``: a run that has not finished an epoch, or no run at all."""
    if not (folder / "config.yaml").is_file():
        return ConfigError("not a run folder: it has no checkpoints/best.pt", where=str(folder), fix=CHECKPOINT_FIX)
    last = folder / "checkpoints" / "last.pt"
    fix = (
        f"pass {last} (where training stopped)"
        if last.is_file()
        else "wait for the first epoch to end if it is still training, else train again"
    )
    return RunDirError("the run has no checkpoints/best.pt yet", where=str(folder), fix=fix)


def _embedder_card(embedder: Any, task: str) -> ModelCard:
    """The card of an embedder: its name, input and normalisation; ``classes`` = the people it was trained on
    (none for a pretrained one)."""
    people = embedder.meta.get("classes") or ()
    return ModelCard(
        name=embedder.name,
        classes=tuple(str(person) for person in people),
        input_size=embedder.input_size,
        mean=embedder.mean,
        std=embedder.std,
        task=task,
    )


def _verified_session(model: nn.Module, card: ModelCard) -> Any:
    session = onnx_session(onnx_bytes(model, card.input_size))
    try:
        verify(eager_runner(model), lambda x: session.run(None, {"input": x})[0], card)
    except ExportError as exc:
        raise ExportError(exc.what, where="serve --runtime onnx", fix="serve with --runtime torch") from None
    return session


def _task_routes(task: str) -> tuple[str, ...]:
    """The endpoints a task's models answer (an exported ``.onnx`` names its task in its card)."""
    from cnnlab.tasks import TASKS

    return TASKS.get(task).routes
