"""Pictures of what a sequence model looks at: signals with their class activation over time, spectrograms
with it under them, and slices of clips and volumes with the 3-D map over them.

>>> import tempfile
>>> signals, cams = np.sin(np.linspace(0, 6, 50))[None, None].repeat(2, 0), np.random.rand(2, 50)
>>> plot_signal_cams(signals, cams, ["a", "b"], Path(tempfile.mkdtemp()) / "cams.png", "Test").name
'cams.png'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cnnlab.report.figures import save_figure, subplots

MAX_SIGNAL_CHANNELS = 6
"""Channels drawn per signal (the rest are left out of the picture, not of the model)."""


def plot_signal_cams(
    signals: np.ndarray,
    cams: np.ndarray,
    captions: Sequence[str],
    path: Path,
    title: str,
    spectrogram: bool = False,
) -> Path:
    """One panel per sample: the signal's channels (or its spectrogram, mel bands up) over time, with the
    Grad-CAM map ``cams`` (n, T) in [0, 1] as a red band behind it (darker: counted more for the class)."""
    n = len(signals)
    fig, axes = subplots(n, 1, figsize=(9, 1.6 * n + 0.6), squeeze=False)
    for ax, signal, cam, caption in zip(axes[:, 0], signals, cams, captions, strict=True):
        steps = signal.shape[-1]
        if spectrogram:
            ax.imshow(signal, aspect="auto", origin="lower", cmap="magma", extent=(0, steps, 0, signal.shape[0]))
            band = max(3.0, signal.shape[0] / 5)  # the map as a strip under the bands, a fifth of their height
            ax.imshow(cam[None], aspect="auto", cmap="Reds", vmin=0, vmax=1, extent=(0, steps, -band, 0))
            ax.set_ylim(-band, signal.shape[0])
        else:
            low, high = float(signal.min()), float(signal.max())
            ax.imshow(cam[None], aspect="auto", cmap="Reds", alpha=0.6, vmin=0, vmax=1, extent=(0, steps, low, high))
            for channel in signal[:MAX_SIGNAL_CHANNELS]:
                ax.plot(np.arange(steps) + 0.5, channel, linewidth=1.0)
            ax.set_ylim(low, high if high > low else low + 1)
        ax.set_xlim(0, steps)
        ax.set_title(caption, fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("time step")
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def plot_volume_cams(
    volumes: np.ndarray, cams: np.ndarray, captions: Sequence[str], path: Path, title: str, clip: bool
) -> Path:
    """One row per sample: five frames spread over a clip (``clip``), or the three middle slices of a volume,
    grey, with the 3-D Grad-CAM map ``cams`` (n, D, H, W) over them."""
    n = len(volumes)
    columns = 5 if clip else 3
    fig, axes = subplots(n, columns, figsize=(1.8 * columns, 1.9 * n + 0.4), squeeze=False)
    for row, (volume, cam, caption) in enumerate(zip(volumes, cams, captions, strict=True)):
        grey = volume.mean(axis=0)  # (D, H, W)
        for column, (picture, heat, label) in enumerate(_views(grey, cam, clip)):
            ax = axes[row, column]
            ax.imshow(picture, cmap="gray")
            ax.imshow(heat, cmap="jet", alpha=0.35, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(label, fontsize=7)
        axes[row, 0].set_ylabel(caption, fontsize=8)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def _views(grey: np.ndarray, cam: np.ndarray, clip: bool) -> list[tuple[np.ndarray, np.ndarray, str]]:
    depth, height, width = grey.shape
    if clip:
        frames = np.linspace(0, depth - 1, 5).round().astype(int)
        return [(grey[t], cam[t], f"frame {t + 1}") for t in frames]
    d, h, w = depth // 2, height // 2, width // 2
    return [
        (grey[d], cam[d], f"slice {d} (axis 0)"),
        (grey[:, h], cam[:, h], f"axis 1: {h}"),
        (grey[:, :, w], cam[:, :, w], f"axis 2: {w}"),
    ]


def plot_signal_samples(
    signals: np.ndarray, captions: Sequence[str], path: Path, title: str, spectrogram: bool
) -> Path:
    """Training samples, one panel each (no map): what the data looks like before the model sees it."""
    return plot_signal_cams(
        signals, np.zeros(signals.shape[:1] + signals.shape[-1:]), captions, path, title, spectrogram
    )
