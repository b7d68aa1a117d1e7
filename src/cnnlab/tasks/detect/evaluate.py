"""``cnnlab evaluate RUN`` for a detection run: its own validation split by default, or any labelled
dataset (``--data``, ``--split``), scored in the three mAP conventions with pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from cnnlab.core.config import from_dict
from cnnlab.core.errors import ConfigError
from cnnlab.core.rundir import load_checkpoint
from cnnlab.data.boxes import read_boxes
from cnnlab.report.html import write_report
from cnnlab.tasks.base import checkpoint_of, run_folder_of
from cnnlab.tasks.detect.config import DetectRunConfig
from cnnlab.tasks.detect.pipeline import load_data
from cnnlab.tasks.detect.predictor import Detector
from cnnlab.tasks.detect.report import write_detection_evaluation


def evaluate_run(
    target: Path, data: str | None = None, split: str | None = None, out: Path | None = None
) -> dict[str, Any]:
    """Score the detector of ``target`` (a run folder or checkpoint) and write ``evaluation.json`` and plots
    into ``out`` (default: the run folder); returns the headline numbers."""
    checkpoint = checkpoint_of(target)
    detector = Detector.load(checkpoint)
    if data is not None:
        dataset, title = read_boxes(data, split=split), f"{data}" + (f" ({split})" if split else "")
    else:
        config = from_dict(DetectRunConfig, load_checkpoint(checkpoint)["config"])
        if split is not None:
            dataset, title = read_boxes(config.data.source, split=split), f"{config.data.source} ({split})"
        else:
            _, held, how = load_data(config)
            if held is None:
                raise ConfigError(
                    "the run kept no validation images", where=str(target), fix="pass --data DATASET or --split test"
                )
            dataset, title = held, f"validation ({how})"
    if dataset.class_names != detector.classes:
        raise ConfigError(
            f"the data's classes {dataset.class_names} differ from the detector's {detector.classes}",
            where=data or str(target),
            fix="evaluate on data labelled with the same classes",
        )
    folder = out or run_folder_of(target) or checkpoint.parent / f"{checkpoint.stem}-evaluation"
    console = Console()
    summary = write_detection_evaluation(folder, detector, dataset, title, console)
    if (folder / "config.yaml").is_file():
        console.print(f"Report: {write_report(folder)}")
    return summary
