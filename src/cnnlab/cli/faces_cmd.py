"""``cnnlab faces``: find faces in photos with the pretrained Tiny-YOLOv2 face detector (the course's "use a
pretrained YOLO" exercise, offline), draw them, and print a table."""

from __future__ import annotations

import io
import time
from pathlib import Path

import typer
from PIL import Image
from rich.console import Console
from rich.table import Table

from cnnlab.core.rundir import atomic_write_bytes
from cnnlab.report.boxes_drawing import draw_boxes
from cnnlab.tasks.detect.faces import DEFAULT_INPUT_SIZE, DEFAULT_SCORE_THRESHOLD, FaceDetector, as_rgb_image


def _free_name(folder: Path, stem: str, taken: set[Path]) -> Path:
    """``folder/stem.png``, or ``stem-2.png``, ``stem-3.png``... when an earlier picture of this run has it."""
    path, n = folder / f"{stem}.png", 1
    while path in taken:
        n += 1
        path = folder / f"{stem}-{n}.png"
    taken.add(path)
    return path


def faces(
    images: list[Path] = typer.Argument(..., help="Photos to search (jpg, png, ...)."),
    out: Path = typer.Option(Path("faces-out"), "--out", help="Folder for the pictures with boxes (PNG)."),
    threshold: float = typer.Option(
        DEFAULT_SCORE_THRESHOLD, "--threshold", help="Lowest face score kept (face-api.js' default 0.5)."
    ),
    input_size: int = typer.Option(
        DEFAULT_INPUT_SIZE, "--input-size", help="Network input side, a multiple of 32 (416: a 13 x 13 grid)."
    ),
    weights: Path = typer.Option(
        None,
        "--weights",
        help="tiny_face_detector_yolo5anchors_faceapi.pth (default: found in $CNNLAB_WEIGHTS or "
        "shared/data/face-models via $CNNLAB_SHARED_DATA or ../shared/data).",
    ),
) -> None:
    """Find faces: `cnnlab faces photo.jpg --out faces-out` writes faces-out/photo.png with boxes and scores."""
    detector = FaceDetector.load(weights)
    table = Table("image", "faces", "box x1, y1, x2, y2 (px)", "score", "ms")
    taken: set[Path] = set()
    for path in images:
        picture = as_rgb_image(path)
        start = time.perf_counter()
        found = detector.detect(picture, score_threshold=threshold, input_size=input_size)
        elapsed = f"{(time.perf_counter() - start) * 1000:.0f}"
        drawn = draw_boxes(picture, [f.box for f in found], ["face"] * len(found), [f.score for f in found])
        buffer = io.BytesIO()
        Image.fromarray(drawn).save(buffer, format="PNG")
        atomic_write_bytes(_free_name(out, path.stem, taken), buffer.getvalue())
        rows = [[", ".join(f"{v:.0f}" for v in face.box), f"{face.score:.3f}"] for face in found] or [["-", "-"]]
        for i, row in enumerate(rows):
            first = i == 0
            table.add_row(str(path) if first else "", str(len(found)) if first else "", *row, elapsed if first else "")
    console = Console()
    console.print(table)
    console.print(f"Wrote {len(taken)} picture(s) with boxes to {out}/")
