"""Image classification: class folders (or .npz/.csv/IDX) -> a zoo model -> accuracy, confusion, calibration,
worst mistakes with Grad-CAM; TTA and ensembles; transfer learning; DDP with ``--nproc``.

Files: ``config`` (RunConfig), ``data`` (splits, transforms), ``pipeline`` (the run), ``predictor``
(a checkpoint as a :class:`~cnnlab.tasks.classify.predictor.Classifier`), ``evaluate`` (TTA, ensembles,
metrics), ``heldout`` (what ``cnnlab evaluate`` scores on), ``predict`` (``cnnlab predict``), ``demo``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnlab.tasks.base import PredictOptions, Task
from cnnlab.tasks.classify.config import RunConfig
from cnnlab.tasks.classify.pipeline import run_classification
from cnnlab.tasks.classify.predict import predict_checkpoints
from cnnlab.tasks.classify.predictor import Classifier, load_classifier


def _predict(checkpoint: Path, images: Sequence[Path], options: PredictOptions) -> list[dict[str, Any]]:
    checkpoints = [checkpoint, *options.ensemble]
    return predict_checkpoints(
        checkpoints, list(images), options.top_k, options.tta, options.precision, options.compile
    )


TASK = Task(
    name="classify",
    summary="one label per image (class folders, .npz, .csv, fashion-mnist, mnist)",
    config_type=RunConfig,
    run=run_classification,
    load=load_classifier,
    predict=_predict,
    routes=("predict", "explain"),
    exportable=True,
    distributed=True,
    options={
        "transfer": "transfer.mode",
        "unfreeze": "transfer.unfreeze",
        "num_classes": "transfer.num_classes",
        "tta": "run.tta",
        "sync_bn": "distributed.sync_bn",
    },
)

__all__ = ["TASK", "Classifier", "RunConfig", "load_classifier", "run_classification"]
