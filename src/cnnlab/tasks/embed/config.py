"""The settings of an embedding (face recognition) run (``task: embed`` in ``config.yaml``).

>>> c = EmbedRunConfig()
>>> c.model.name, c.embed.dim, c.embed.mining, c.data.val_fraction
('auto', 128, 'batch_hard', 0.25)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cnnlab.core.errors import ConfigError
from cnnlab.tasks.config import DataConfig, ModelConfig
from cnnlab.train.config import TrainConfig

DEFAULT_SIDE = 64
"""The input side when the images are at least this large: ORL's 112 x 92 faces at 64 x 64 train an embedder in
under 2 minutes on 2 cores; 96 px measured no better (docs/faces.md)."""


SCRATCH_LR = 3e-3
"""The peak learning rate of a backbone trained from scratch (``train.lr``'s default)."""
FINE_TUNE_LR = 1e-5
"""The peak learning rate of a pretrained embedder, unless ``--lr`` says otherwise: 1e-4 collapsed dlib's
embedding on ORL within 2 epochs (every distance near 0), 1e-5 improved it (docs/faces.md)."""


@dataclass(frozen=True)
class EmbedConfig:
    """What makes an embedding run different from a classification run.

    ``data.val_fraction`` is the share of *people* held out (never trained on): verification is scored on
    them and the threshold is chosen there. ``probe_fraction`` of each training person's images is held out
    for identification (the gallery is the rest).
    """

    dim: int = 128  # embedding size (FaceNet, dlib, the course: 128)
    mining: Literal["batch_hard", "batch_hard_soft", "semi_hard", "contrastive"] = "batch_hard"
    margin: float = 0.2  # the course's alpha: batch_hard, semi_hard, contrastive (batch_hard_soft has none)
    people_per_batch: int = 10  # P
    images_per_person: int = 4  # K
    probe_fraction: float = 0.5  # of each training person's images, held out for identification
    threshold_rule: str = "eer"  # eer | accuracy | far=1e-3: how the stored verification threshold is chosen
    dropout: float = 0.0
    faces: Literal["auto", "detect", "none"] = "auto"  # photos through the face front-end (tasks.embed.face_folder)

    def __post_init__(self) -> None:
        if not 0 <= self.probe_fraction < 1:
            raise ConfigError(
                f"probe_fraction must be in [0, 1). Received: {self.probe_fraction}",
                where="embed.probe_fraction",
                fix="try 0.5 (half of each person's images test identification)",
            )
        if self.margin <= 0:
            raise ConfigError(f"margin must be > 0. Received: {self.margin}", where="--margin", fix="try 0.2")


def _default_data() -> DataConfig:
    return DataConfig(source="", aug="auto", val_fraction=0.25)


def _default_train() -> TrainConfig:
    """``monitor: last``: the held-out people are the test, so they do not pick the checkpoint (best = last)."""
    return TrainConfig(epochs=None, batch_size=None, eval_batch_size=256, lr=SCRATCH_LR, monitor="last")


@dataclass(frozen=True)
class EmbedRunConfig:
    """Everything an embedding run is made of (``--config run.yaml`` holds the same, with ``task: embed``)."""

    task: Literal["embed"] = "embed"
    name: str | None = None
    data: DataConfig = field(default_factory=_default_data)
    model: ModelConfig = field(default_factory=lambda: ModelConfig(name="auto"))  # see pipeline.choose_model
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    train: TrainConfig = field(default_factory=_default_train)
