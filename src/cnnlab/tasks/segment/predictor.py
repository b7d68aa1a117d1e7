"""A trained segmentation checkpoint as a predictor: masks for image files of any size (``cnnlab predict``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.core.config import from_dict
from cnnlab.core.errors import ConfigError
from cnnlab.core.rundir import atomic_write_bytes, load_checkpoint
from cnnlab.data.images import read_image
from cnnlab.tasks.segment.config import SegmentConfig
from cnnlab.tasks.segment.model import build_model
from cnnlab.tasks.segment.pipeline import eval_transform
from cnnlab.tasks.segment.tiling import predict_tiled


@dataclass
class SegmentationModel:
    """A trained segmentation model and what its checkpoint says about inputs and classes."""

    model: nn.Module
    classes: list[str]
    mean: list[float]
    std: list[float]
    channels: int
    tile: int
    margin: int

    @classmethod
    def load(cls, checkpoint: str | Path) -> SegmentationModel:
        """Rebuild the network from a ``cnnlab train --task segment`` checkpoint (``best.pt``/``last.pt``)."""
        state = load_checkpoint(checkpoint)
        if state.get("task") != "segment":
            raise ConfigError(
                "not a segmentation checkpoint",
                where=str(checkpoint),
                fix="pass checkpoints/best.pt of a `cnnlab train --task segment` run, or use --model/--weights",
            )
        seg = from_dict(SegmentConfig, state["config"]["segment"])
        channels = state["input_size"][0]
        model = build_model(state["model_name"], len(state["classes"]), channels, state["model_options"])
        model.load_state_dict(state["model"])
        return cls(model.eval(), state["classes"], state["mean"], state["std"], channels, seg.tile, seg.margin)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K, H, W)`` for uint8 images ``(B, C, H, W)`` of any size (overlap-tile)."""
        x = eval_transform(self.mean, self.std)(images)
        with torch.inference_mode():
            return predict_tiled(self.model, x, self.tile, self.margin)


def predict_masks(checkpoint: str | Path, images: Sequence[str | Path], out: str | Path) -> list[dict[str, Any]]:
    """Segment image files; writes ``<stem>_mask.png`` and ``<stem>_overlay.png`` into ``out``.

    Binary masks are written as 0/255, others as class indices. Returns per image the mask and
    overlay paths and the share of pixels per class.
    """
    from PIL import Image

    segmenter = SegmentationModel.load(checkpoint)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    colours = np.array([[0, 114, 178], [230, 159, 0], [0, 158, 115], [204, 121, 167], [213, 94, 0], [86, 180, 233]])
    results = []
    for path in map(Path, images):
        pixels = read_image(path, channels=segmenter.channels).copy()  # (H, W, C) uint8, writable for torch
        mask = segmenter(torch.from_numpy(pixels).permute(2, 0, 1)[None])[0].argmax(0).numpy().astype(np.uint8)
        scale = 255 if len(segmenter.classes) == 2 else 1
        mask_path, overlay_path = out / f"{path.stem}_mask.png", out / f"{path.stem}_overlay.png"
        _save_png(Image.fromarray(mask * scale), mask_path)
        rgb = np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels
        tint = colours[mask % len(colours)]  # (H, W, 3)
        _save_png(Image.fromarray((0.6 * rgb + 0.4 * tint).astype(np.uint8)), overlay_path)
        counts = np.bincount(mask.reshape(-1), minlength=len(segmenter.classes)) / mask.size
        shares = {name: round(float(c), 4) for name, c in zip(segmenter.classes, counts, strict=True)}
        results.append({"image": str(path), "mask": str(mask_path), "overlay": str(overlay_path), "shares": shares})
    return results


def _save_png(image: Any, path: Path) -> None:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
