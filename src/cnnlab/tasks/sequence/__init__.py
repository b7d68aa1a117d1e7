"""Beyond images: time series and audio with Conv1D nets, clips and volumes with Conv3D nets.

Files: ``config`` (SequenceRunConfig), ``sources`` (which data it is, the test split), ``defaults`` (model,
epochs, normalisation and augmentation chosen from the data), ``pipeline`` (the run), ``predictor`` (a checkpoint
with its front-end), ``evaluate`` (scores, confusion, Grad-CAM over time), ``figures``, ``uploads`` (what the
server answers for a file).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnlab.tasks.base import PredictOptions, Task
from cnnlab.tasks.sequence.config import SequenceRunConfig
from cnnlab.tasks.sequence.evaluate import evaluate_run
from cnnlab.tasks.sequence.pipeline import run_sequence
from cnnlab.tasks.sequence.predictor import SequenceModel, predict_files
from cnnlab.tasks.sequence.sources import claims


def _predict(checkpoint: Path, inputs: Sequence[Path], options: PredictOptions) -> list[dict[str, Any]]:
    return predict_files(checkpoint, inputs, options.top_k)


TASK = Task(
    name="sequence",
    summary="one label per series, recording, clip or volume (UCR sets, WAV folders, clip and volume folders)",
    config_type=SequenceRunConfig,
    run=run_sequence,
    load=SequenceModel.load,
    predict=_predict,
    evaluate=evaluate_run,
    exportable=True,
    routes=("predict", "explain"),  # for an uploaded file (uploads)
    options={"split": "sequence.split"},
    claims=claims,
    predicts_images=False,  # a folder is one clip (its frames) or a volume
)

__all__ = ["TASK", "SequenceModel", "SequenceRunConfig", "run_sequence"]
