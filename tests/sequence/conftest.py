"""Small sequence data sets written on the fly: a UCR-style folder of sine vs square waves, recordings of
low vs high tones with FSDD names, and clips of a blob moving left or right."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnnlab.data.clips import save_clip_folder
from cnnlab.data.wav import write_wav


def write_ts(path: Path, series: np.ndarray, labels: list[str]) -> Path:
    """A univariate ``.ts`` file (aeon's format) of ``series`` (N, T) with ``labels``."""
    classes = " ".join(sorted(set(labels)))
    lines = ["@problemName Waves", "@timeStamps false", "@univariate true", f"@classLabel true {classes}", "@data"]
    lines += [",".join(f"{v:.5f}" for v in row) + f":{label}" for row, label in zip(series, labels, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def waves(n: int, steps: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Sine or square waves of random phase and period, with noise: class ``sine`` / ``square``."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    rows, labels = [], []
    for i in range(n):
        period, phase = rng.uniform(12, 30), rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * t / period + phase)
        square = i % 2 == 1
        rows.append((np.sign(wave) if square else wave) + rng.normal(0, 0.2, steps))
        labels.append("square" if square else "sine")
    return np.array(rows), labels


@pytest.fixture(scope="session")
def wave_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``Waves/Waves_TRAIN.ts`` (40 series) and ``Waves/Waves_TEST.ts`` (40), 64 steps each."""
    folder = tmp_path_factory.mktemp("ucr") / "Waves"
    folder.mkdir()
    write_ts(folder / "Waves_TRAIN.ts", *waves(40, 64, seed=0))
    write_ts(folder / "Waves_TEST.ts", *waves(40, 64, seed=1))
    return folder


@pytest.fixture(scope="session")
def tone_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<low|high>_<speaker>_<index>.wav``: 220-330 Hz or 1-1.5 kHz tones, 0.25 s at 8 kHz, 3 speakers x 6."""
    folder = tmp_path_factory.mktemp("tones")
    rng = np.random.default_rng(0)
    t = np.arange(2000) / 8000
    for label, (low, high) in (("low", (220, 330)), ("high", (1000, 1500))):
        for speaker in ("ann", "bob", "cy"):
            for index in range(6):
                tone = 0.5 * np.sin(2 * np.pi * rng.uniform(low, high) * t) + rng.normal(0, 0.02, t.size)
                write_wav(folder / f"{label}_{speaker}_{index}.wav", tone.astype(np.float32), 8000)
    return folder


@pytest.fixture(scope="session")
def blob_clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Class folders ``left``/``right`` of 8-frame 16x16 clips: a bright square moving that way."""
    rng = np.random.default_rng(0)
    clips, labels = [], []
    for i in range(48):
        right = i % 2
        clip = np.zeros((8, 16, 16), dtype=np.uint8)
        row, start = rng.integers(2, 10), rng.integers(0, 3)
        for frame in range(8):
            col = start + frame if right else 12 - start - frame
            clip[frame, row : row + 4, col : col + 4] = 255
        clips.append(clip)
        labels.append(right)
    return save_clip_folder(tmp_path_factory.mktemp("clips"), np.stack(clips), np.array(labels), ["left", "right"])
