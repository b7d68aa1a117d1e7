"""What ``cnnlab serve`` answers for a sequence model (series, recordings, clips, volumes): an uploaded file read the
way ``cnnlab predict`` reads files, each sample's top classes, and a picture of where the model looked (Grad-CAM
over time, or over a clip's frames and a volume's slices).

A file the model cannot read (another format, a corrupt WAV, a series longer than the model's input) is an
:class:`~cnnlab.data.uploads.UploadRejected` (400) that names the upload and says what to send.

>>> import torch
>>> from cnnlab.core.rundir import save_checkpoint
>>> from cnnlab.models import create_model
>>> folder = Path(tempfile.mkdtemp())
>>> save_checkpoint(folder / "best.pt", {"model": create_model("fcn", num_classes=2, in_chans=1).state_dict(),
...     "task": "sequence", "kind": "series", "classes": ["a", "b"], "input_size": [1, 8], "model_name": "fcn",
...     "model_options": {}, "normalise": {"mode": "sample"}})
>>> from cnnlab.tasks.sequence.predictor import SequenceModel
>>> model = SequenceModel.load(folder / "best.pt")
>>> answer = predict_upload(model, "rows.csv", b"a,1,2,3,4,5,6,7,8\\nb,8,7,6,5,4,3,2,1\\n", top_k=1)
>>> [sample["name"] for sample in answer["samples"]], answer["top"] == answer["samples"][0]["top"]
(['rows:1', 'rows:2'], True)
>>> predict_upload(model, "rows.xlsx", b"...", top_k=1)
Traceback (most recent call last):
...
cnnlab.data.uploads.UploadRejected: rows.xlsx: this series model does not read .xlsx [upload]. Fix: send a .ts / ...
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from cnnlab.core.errors import DataError
from cnnlab.data.uploads import UploadRejected
from cnnlab.tasks.sequence.evaluate import PICTURED, class_maps
from cnnlab.tasks.sequence.figures import plot_signal_cams, plot_volume_cams
from cnnlab.tasks.sequence.predictor import top_classes

if TYPE_CHECKING:
    from cnnlab.tasks.sequence.predictor import SequenceModel


def read_upload(model: SequenceModel, name: str, data: bytes) -> tuple[torch.Tensor, list[str]]:
    """The upload's raw samples and their names; what the model cannot read is refused (400), naming it."""
    try:
        return model.read_upload(name, data)
    except DataError as exc:
        raise UploadRejected(exc.what if name in exc.what else f"{name}: {exc.what}", fix=exc.fix) from None


def predict_upload(model: SequenceModel, name: str, data: bytes, top_k: int) -> dict[str, Any]:
    """``{"top": the first sample's top classes, "samples": [{"name", "top"}, ...]}`` for one uploaded file (a
    series file holds a sample per row; a recording, clip or volume is one)."""
    x, names = read_upload(model, name, data)
    try:
        rows = top_classes(model.predict_proba(x), model.classes, top_k)
    except DataError as exc:  # samples of another shape than the model's input
        raise UploadRejected(f"{name}: {exc.what}", fix=exc.fix) from None
    return {"top": rows[0], "samples": [{"name": n, "top": t} for n, t in zip(names, rows, strict=True)]}


def explain_upload(model: SequenceModel, name: str, data: bytes) -> tuple[bytes, int, float]:
    """A PNG of the first :data:`~cnnlab.tasks.sequence.evaluate.PICTURED` samples of the upload with the Grad-CAM
    of their predicted class, the first sample's class index and its probability."""
    x, names = read_upload(model, name, data)
    x, names = model.prepare(x[:PICTURED]), names[:PICTURED]
    try:
        probs = model.predict_proba(x, prepared=True)
    except DataError as exc:
        raise UploadRejected(f"{name}: {exc.what}", fix=exc.fix) from None
    predicted = probs.argmax(1)
    maps = class_maps(model, x, predicted).numpy()
    captions = [
        f"{n}: {model.classes[int(c)]} ({float(p[c]):.0%})" for n, c, p in zip(names, predicted, probs, strict=True)
    ]
    heading = f"{name}: where {model.name} looked (Grad-CAM of the predicted class)"
    with tempfile.TemporaryDirectory(prefix="cnnlab-cam-") as folder:
        path = Path(folder) / "cams.png"
        if x.dim() == 3:
            audio = model.audio
            spectrogram = bool(audio and audio.representation == "logmel")
            plot_signal_cams(x.numpy(), maps, captions, path, heading, spectrogram)
        else:
            plot_volume_cams(x.numpy(), maps, captions, path, heading, clip=model.kind == "clip")
        png = path.read_bytes()
    first = int(predicted[0])
    return png, first, float(probs[0, first])
