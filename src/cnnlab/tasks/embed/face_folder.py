"""A folder of people as an embedder sees it: photos larger than a face crop go through the face front-end
(detect -> crop -> align, :class:`~cnnlab.tasks.embed.frontend.FaceFrontEnd`) before training and evaluation,
so the embedder learns from the same face chips ``cnnlab verify`` and ``identify`` give it. Face crops (every
picture at most :data:`~cnnlab.tasks.embed.frontend.SMALL_PICTURE` px, as ORL's) are read as they are.

A photo where no face is found is skipped and listed (``strict``: an error naming it).

>>> import tempfile
>>> from PIL import Image
>>> root = Path(tempfile.mkdtemp())
>>> for person in ("ann", "bob"):
...     (root / person).mkdir()
...     Image.new("L", (92, 112)).save(root / person / "1.png")
>>> data, note = load_people_folder(root, 64, None, "stretch", "auto")   # small crops: no front-end
>>> data.images.shape, data.classes, note
(torch.Size([2, 1, 64, 64]), ['ann', 'bob'], None)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.console import Console

from cnnlab.core.errors import DataError
from cnnlab.data.cache import ProblemLog
from cnnlab.data.datasets import Dataset, load_image_folder
from cnnlab.data.image_sizes import header_sizes
from cnnlab.data.images import Fit, list_image_files, read_image, resize_image
from cnnlab.tasks.embed.frontend import FaceFrontEnd, FaceMode, needs_detector

SAMPLED_FILES = 200
"""Files whose headers are read to decide whether a folder holds face crops or photos."""


def needs_front_end(source: Path, mode: FaceMode) -> bool:
    """Whether the pictures of ``source`` go through the front-end in ``mode``: ``detect`` always, ``none``
    never, ``auto`` when any of up to :data:`SAMPLED_FILES` pictures is larger than a face crop."""
    if mode != "auto":
        return mode == "detect"
    return any(needs_detector(size, mode) for size in header_sizes(source, SAMPLED_FILES))


def load_people_folder(
    source: str | Path,
    side: int,
    channels: int | None,
    fit: Fit,
    mode: FaceMode,
    strict: bool = False,
    console: Console | None = None,
) -> tuple[Dataset, str | None]:
    """``source/<person>/<photo>`` decoded at ``side`` x ``side``, and a line for the log saying what the front-end
    did (``None`` when the pictures are face crops read as they are). Photos go through the face front-end (see
    the module). In ``auto`` mode, when faces are found in fewer than half the pictures, the folder is taken
    for face crops larger than :data:`~cnnlab.tasks.embed.frontend.SMALL_PICTURE` (tight crops give the detector
    too little background) and read whole, as ``none`` would. ``channels=None`` keeps grey pictures grey."""
    source = Path(source)
    if not needs_front_end(source, mode):
        return load_image_folder(source, size=side, channels=channels, fit=fit, strict=strict), None
    people = sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = [(person.name, file) for person in people for file in list_image_files(person)]
    if not files:
        raise DataError("no images in the person folders", where=str(source), fix="put photos in source/<person>/")
    (console or Console()).print(f"Finding the face in {len(files)} photos (detect -> crop -> align)...")
    front = FaceFrontEnd.load()
    found: list[tuple[str, str, np.ndarray]] = []
    missed: list[DataError] = []
    for name, file in files:
        try:
            found.append((name, str(file), front.chip(read_image(file, channels=3), mode=mode, name=str(file)).pixels))
        except DataError as exc:  # no face (NoFaceFound), or a file that does not decode
            missed.append(exc)
    if mode == "auto" and len(found) < len(files) / 2:
        data = load_image_folder(source, size=side, channels=channels, fit=fit, strict=strict)
        return data, (
            f"faces found in only {len(found)} of {len(files)} pictures: taken for face crops and read whole "
            "(--faces detect requires a face in each)"
        )
    log = ProblemLog(strict=strict)
    for exc in missed:
        log.report(exc)
    if not found:
        raise DataError("no face found in any photo", where=str(source), fix="--faces none for face crops")
    chips = [chip for _, _, chip in found]
    grey = all(np.array_equal(c[..., 0], c[..., 1]) and np.array_equal(c[..., 1], c[..., 2]) for c in chips)
    channels = channels or (1 if grey else 3)
    images = torch.stack([_resized(chip, side, channels, fit) for chip in chips])
    classes = sorted({name for name, _, _ in found})
    targets = torch.tensor([classes.index(name) for name, _, _ in found])
    dataset = Dataset(images, targets, classes, [path for _, path, _ in found], log.problems)
    return dataset, f"each photo's face found, cropped and aligned (--faces {mode}), as verify and identify do"


def _resized(chip: np.ndarray, side: int, channels: int, fit: Fit) -> torch.Tensor:
    image = resize_image(Image.fromarray(chip).convert("L" if channels == 1 else "RGB"), (side, side), fit)
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).reshape(side, side, channels).permute(2, 0, 1)
