"""Face (and any) recognition by metric learning: an embedder trained with triplet loss on a folder of
people, verification with a calibrated threshold, identification against an enrolled gallery, the
course's ``verify`` / ``who_is_it``, and dlib's pretrained face embedder behind a face front-end.

Files: ``losses`` (triplet, batch-hard, semi-hard, contrastive), ``sampler`` (P people x K images),
``people`` (split by person and by image), ``trainer``, ``verification`` (ROC, EER, TAR@FAR, identification),
``figures``, ``evaluate``, ``course`` (the course's functions), ``frontend`` (detect -> crop -> align),
``embedder`` (a run or ``dlib_resnet29`` ready to embed photos), ``gallery`` (enrol / identify),
``config``, ``pipeline`` (the run).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnlab.tasks.base import PredictOptions, Task
from cnnlab.tasks.embed.config import EmbedRunConfig
from cnnlab.tasks.embed.embedder import PRETRAINED, Embedder
from cnnlab.tasks.embed.pipeline import run_embedding


def _predict(checkpoint: Path, images: Sequence[Path], options: PredictOptions) -> list[dict[str, Any]]:
    from cnnlab.tasks.embed.gallery import predict_embeddings

    return predict_embeddings(checkpoint, images, options.out)


def _evaluate(target: Path, data: str | None, split: str | None, out: Path | None) -> dict[str, Any]:
    from cnnlab.tasks.embed.evaluate import evaluate_run

    return evaluate_run(target, data, split, out)


TASK = Task(
    name="embed",
    summary="embeddings for verification and identification (a folder per person), e.g. faces",
    config_type=EmbedRunConfig,
    run=run_embedding,
    load=Embedder.load,
    predict=_predict,
    evaluate=_evaluate,
    routes=("verify",),
    options={"embedding_dim": "embed.dim", "mining": "embed.mining", "margin": "embed.margin", "faces": "embed.faces"},
    pretrained=tuple(PRETRAINED),
)

__all__ = ["TASK", "EmbedRunConfig", "Embedder", "run_embedding"]
