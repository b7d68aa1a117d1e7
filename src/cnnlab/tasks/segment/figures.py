"""The held-out picture of a segmentation run: image | truth | prediction | errors, one row per image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from cnnlab.report.figures import save_figure, subplots
from cnnlab.tasks.segment.metrics import per_image_scores


def write_overlay_grid(
    images: torch.Tensor,
    truth: torch.Tensor,
    preds: torch.Tensor,
    path: str | Path,
    class_names: Sequence[str],
    titles: Sequence[str] | None = None,
) -> Path:
    """A PNG with one row per image: image | truth | prediction | error overlay (errors in red).

    ``images`` uint8 ``(N, C, H, W)``; ``truth`` and ``preds`` class indices ``(N, H, W)``. Each row is
    titled with ``titles[i]`` and the image's pixel accuracy and mean Dice.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "grid.png"
    >>> masks = torch.zeros(2, 16, 16, dtype=torch.long); masks[:, 4:12, 4:12] = 1
    >>> write_overlay_grid(torch.zeros(2, 1, 16, 16, dtype=torch.uint8), masks, 1 - masks, out, ["bg", "fg"]).is_file()
    True
    """

    scores = per_image_scores(truth, preds, class_names, titles)
    k = max(len(class_names) - 1, 1)
    fig, axes = subplots(len(images), 4, figsize=(10, 2.7 * len(images)), squeeze=False)
    for row, (image, t, p, score) in enumerate(zip(images, truth, preds, scores, strict=True)):
        gray = image.float().mean(0).numpy() / 255  # (H, W)
        error = np.stack([gray] * 3, axis=-1)
        wrong = (t != p).numpy()
        error[wrong] = 0.4 * error[wrong] + 0.6 * np.array([1.0, 0.0, 0.0])
        panels = [(gray, "gray", 1.0), (t.numpy(), "viridis", k), (p.numpy(), "viridis", k), (error, None, 1.0)]
        for ax, (picture, cmap, top), label in zip(
            axes[row], panels, ("image", "truth", "prediction", "errors (red)"), strict=True
        ):
            ax.imshow(picture, cmap=cmap, vmin=0, vmax=top, interpolation="nearest")
            ax.set_axis_off()
            ax.set_title(label, fontsize=8)
        axes[row][0].set_title(f"{score['image']}  acc {score['acc']:.3f}  Dice {score['dice']:.3f}", fontsize=8)
    return save_figure(fig, path, dpi=90)
