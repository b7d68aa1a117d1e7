"""A trained detection checkpoint as a detector: boxes, scores and labels for images of any size, in their
own pixels (``cnnlab predict``, ``cnnlab evaluate``, the server).

Images are resized to the run's input size (stretched, or letterboxed with ``fit: pad``) as in training,
run through the detector on the CPU's fast path (bf16 + channels_last where native), decoded, and filtered
with class-aware NMS; boxes are mapped back to the original image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from cnnlab.core.errors import ConfigError
from cnnlab.core.rundir import load_checkpoint
from cnnlab.data.boxes import BoxDataset, resize_geometry
from cnnlab.data.images import read_image, resize_image
from cnnlab.models import create_model
from cnnlab.models.detect.yolo import DecodedYolo, YoloDetector
from cnnlab.runtime.inference import fast_inference
from cnnlab.tasks.config import eval_transform
from cnnlab.tasks.detect.decode import detections

PICTURE_SCORE = 0.25
"""Score threshold for pictures and ``cnnlab predict`` (Ultralytics' default); mAP uses 0.001."""


@dataclass
class Detector:
    """A trained detector and what its checkpoint says about inputs, classes and NMS."""

    model: YoloDetector
    classes: list[str]
    mean: list[float]
    std: list[float]
    input_size: tuple[int, int, int]  # (C, H, W)
    fit: str = "stretch"
    iou_threshold: float = 0.6
    max_detections: int = 100
    precision: str = "auto"  # the runtime's fast path: bf16 + channels_last where the CPU has native bf16
    compile: str = "auto"  # compiled when the job pays the compile back (cnnlab.runtime.inference)
    name: str = "detector"
    resize: int | None = None  # as a classifier's model card: stretched to the input size, no centre crop

    @property
    def export_module(self) -> DecodedYolo:
        """What ``cnnlab export`` writes: the network with its decoding, ``(B, N, 4 + 1 + K)`` out (boxes in
        input pixels, objectness, class probabilities); NMS stays outside the graph (:func:`detections`)."""
        return DecodedYolo(self.model).eval()

    @classmethod
    def load(cls, checkpoint: str | Path) -> Detector:
        """Rebuild the detector of a ``cnnlab train --task detect`` checkpoint (``best.pt``/``last.pt``)."""
        state = load_checkpoint(checkpoint)
        if state.get("task") != "detect":
            raise ConfigError(
                "not a detection checkpoint",
                where=str(checkpoint),
                fix="pass a run folder or checkpoints/best.pt of a `cnnlab train --task detect` run",
            )
        channels = state["input_size"][0]
        model = create_model(
            state["model_name"], num_classes=len(state["classes"]), in_chans=channels, **state["model_options"]
        )
        model.load_state_dict(state["model"])
        return cls.from_trained(model, state)

    @classmethod
    def from_trained(cls, model: YoloDetector, meta: dict[str, Any]) -> Detector:
        """A detector from a model in memory and its checkpoint metadata."""
        detect = meta["config"]["detect"]
        return cls(
            model.eval(),
            list(meta["classes"]),
            list(meta["mean"]),
            list(meta["std"]),
            tuple(meta["input_size"]),
            meta.get("fit", "stretch"),
            detect["iou_threshold"],
            detect["max_detections"],
            name=meta["model_name"],
        )

    def detect_batch(
        self, images: torch.Tensor, score_threshold: float = PICTURE_SCORE, batch_size: int = 16
    ) -> list[dict[str, torch.Tensor]]:
        """Detections for uint8 images ``(N, C, H, W)`` already at the input size, in input pixels."""
        x = eval_transform(tuple(self.mean), tuple(self.std))(images)
        with fast_inference(DecodedYolo(self.model), self.precision, self.compile, batch_size, len(images)) as run:
            decoded = run(x)
        return detections(decoded, score_threshold, self.iou_threshold, self.max_detections)

    def detect_dataset(
        self, data: BoxDataset, score_threshold: float = 0.001, batch_size: int = 16
    ) -> list[dict[str, torch.Tensor]]:
        """Detections for every image of ``data``, in each image's own pixels (what mAP is computed on)."""
        images, _ = data.to_tensors(self.input_size[1:], fit=self.fit, channels=self.input_size[0])  # type: ignore[arg-type]
        found = self.detect_batch(images, score_threshold, batch_size)
        return [self._back(d, (r.height, r.width)) for d, r in zip(found, data.records, strict=True)]

    def detect_pixels(self, pixels: np.ndarray, score_threshold: float = PICTURE_SCORE) -> dict[str, torch.Tensor]:
        """Detections for one decoded image (uint8 ``(H, W, C)``, any size), in its own pixels."""
        image = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
        height, width = self.input_size[1:]
        sized = np.asarray(resize_image(image, (height, width), self.fit), dtype=np.uint8).reshape(height, width, -1)
        batch = torch.from_numpy(sized.copy()).permute(2, 0, 1)[None]
        return self._back(self.detect_batch(batch, score_threshold)[0], pixels.shape[:2])

    def draw(
        self, pixels: np.ndarray, found: dict[str, torch.Tensor], score_threshold: float = PICTURE_SCORE
    ) -> np.ndarray:
        """``pixels`` (uint8 ``(H, W, C)``) as RGB with the detections of :meth:`detect_pixels` drawn and labelled."""
        from cnnlab.tasks.detect.pictures import draw_detections

        return draw_detections(pixels, found, self.classes, score=score_threshold)

    def detect_files(
        self, paths: Sequence[str | Path], score_threshold: float = PICTURE_SCORE
    ) -> list[dict[str, torch.Tensor]]:
        """Detections for image files of any size, each in its own pixels."""
        return [self.detect_pixels(read_image(p, channels=self.input_size[0]), score_threshold) for p in paths]

    def _back(self, found: dict[str, torch.Tensor], original: tuple[int, int]) -> dict[str, torch.Tensor]:
        scale_x, scale_y, left, top = resize_geometry(original, self.input_size[1:], self.fit)  # type: ignore[arg-type]
        boxes = (found["boxes"] - torch.tensor([left, top, left, top])) / torch.tensor([scale_x, scale_y] * 2)
        height, width = original
        boxes = boxes.clamp(min=0).minimum(torch.tensor([width, height, width, height], dtype=boxes.dtype))
        return found | {"boxes": boxes}


def predict_boxes(
    checkpoint: str | Path, images: Sequence[str | Path], out: str | Path, score_threshold: float = PICTURE_SCORE
) -> list[dict[str, Any]]:
    """Detect objects in image files; writes ``<stem>_boxes.jpg`` (the picture with labelled boxes) into ``out``
    and returns per image its boxes (``xyxy`` in the image's pixels), labels and scores."""
    from cnnlab.tasks.detect.pictures import write_picture

    detector = Detector.load(checkpoint)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for path, found in zip(images, detector.detect_files(images, score_threshold), strict=True):
        path = Path(path)
        picture = detector.draw(read_image(path, channels=3), found, score_threshold)
        drawn = write_picture(picture, out / f"{path.stem}_boxes.jpg")
        results.append(
            {
                "image": str(path),
                "picture": str(drawn),
                "boxes": [[round(v, 1) for v in box] for box in found["boxes"].tolist()],
                "labels": [detector.classes[i] for i in found["labels"].tolist()],
                "scores": [round(s, 4) for s in found["scores"].tolist()],
            }
        )
    return results
