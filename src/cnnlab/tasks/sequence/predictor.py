"""A trained sequence run as a predictor: the checkpoint's model with the front-end it was trained behind
(how files are read, the audio features, the normalisation), so any file goes in and class scores come out.

``cnnlab predict RUN FILE...`` takes WAV files (audio runs), series files (``.ts``/``.txt``/``.tsv``/``.csv``/
``.npz``: one prediction per row), clips (``.npy`` or a frame folder) and volumes (``.nii.gz``/``.npy``);
``cnnlab serve RUN`` takes the same files as uploads (:meth:`SequenceModel.read_upload`).

>>> import tempfile, torch
>>> from cnnlab.core.rundir import save_checkpoint
>>> from cnnlab.models import create_model
>>> folder = Path(tempfile.mkdtemp())
>>> save_checkpoint(folder / "best.pt", {"model": create_model("fcn", num_classes=2, in_chans=1).state_dict(),
...     "task": "sequence", "kind": "series", "classes": ["a", "b"], "input_size": [1, 24], "model_name": "fcn",
...     "model_options": {}, "normalise": {"mode": "sample"}})
>>> model = SequenceModel.load(folder / "best.pt")
>>> model.predict_proba(torch.randn(3, 1, 24)).shape
torch.Size([3, 2])
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.core.errors import CnnlabError, ConfigError, DataError
from cnnlab.core.rundir import load_checkpoint
from cnnlab.data.audio import AudioSpec
from cnnlab.data.clips import read_clip
from cnnlab.data.series_files import load_series_arrays, load_series_csv, read_ts, read_ucr_text
from cnnlab.data.signals import SignalSet
from cnnlab.data.volumes import VOLUME_SUFFIXES, read_volume
from cnnlab.models import create_model
from cnnlab.tasks.base import checkpoint_of
from cnnlab.tasks.sequence.defaults import normalise

SERIES_FILES = (".ts", ".txt", ".tsv", ".csv", ".npz", ".npy")


@dataclass
class SequenceModel:
    """A trained model and what it needs to read inputs the way it was trained."""

    model: nn.Module
    meta: dict[str, Any]
    source: str

    @classmethod
    def load(cls, target: str | Path) -> SequenceModel:
        """A run folder or checkpoint written by a sequence run."""
        path = checkpoint_of(Path(target))
        state = load_checkpoint(path)
        if not isinstance(state, dict) or state.get("task") != "sequence":
            raise ConfigError("not a sequence checkpoint", where=str(path), fix="pass a run of cnnlab train on series")
        channels = int(state["input_size"][0])
        model = create_model(
            state["model_name"], num_classes=len(state["classes"]), in_chans=channels, **state["model_options"]
        )
        model.load_state_dict(state.get("ema") or state["model"])
        return cls(model.eval(), state, str(path))

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.meta["classes"])

    @property
    def name(self) -> str:
        return str(self.meta["model_name"])

    @property
    def input_size(self) -> tuple[int, ...]:
        """One sample's shape, channels first: ``(C, T)`` or ``(C, D, H, W)``."""
        return tuple(int(n) for n in self.meta["input_size"])

    @property
    def mean(self) -> tuple[float, ...]:
        """0 per channel: the exported graph normalises raw samples itself (see :attr:`export_module`)."""
        return (0.0,) * self.input_size[0]

    @property
    def std(self) -> tuple[float, ...]:
        return (1.0,) * self.input_size[0]

    resize = None  # no image resizing: the model card's field for images

    @property
    def export_module(self) -> nn.Module:
        """The model behind its normalisation, so an exported graph takes samples as they are read."""
        norm = self.meta["normalise"]
        return nn.Sequential(Normaliser(norm["mode"], norm.get("mean"), norm.get("std")), self.model).eval()

    @property
    def kind(self) -> str:
        return str(self.meta["kind"])

    @property
    def audio(self) -> AudioSpec | None:
        spec = self.meta.get("audio")
        return AudioSpec.from_dict(spec) if spec else None

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Raw samples ``(N, C, ...)`` as the model saw them in training (normalised)."""
        norm = self.meta["normalise"]
        return normalise(x.float(), norm["mode"], norm.get("mean"), norm.get("std"))

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor, batch_size: int = 64, prepared: bool = False) -> torch.Tensor:
        """Class probabilities ``(N, K)`` of raw samples (``prepared``: already normalised)."""
        x = x if prepared else self.prepare(x)
        self._check_shape(x)
        return torch.cat([self.model(x[i : i + batch_size]).float().softmax(1) for i in range(0, len(x), batch_size)])

    def read(self, paths: Sequence[Path]) -> tuple[torch.Tensor, list[str]]:
        """Raw samples of ``paths`` and one name per sample (a series file gives one per row)."""
        samples: list[torch.Tensor] = []
        names: list[str] = []
        for path in paths:
            x, labels = self._read_one(Path(path))
            samples.append(x)
            names += labels
        return torch.cat(samples), names

    @property
    def accepts(self) -> tuple[str, ...]:
        """The file suffixes an upload may have: what this model's kind of data is read from."""
        return {"audio": (".wav",), "clip": (".npy",), "volume": VOLUME_SUFFIXES}.get(self.kind, SERIES_FILES)

    def read_upload(self, name: str, data: bytes) -> tuple[torch.Tensor, list[str]]:
        """Raw samples of an uploaded file and one name per sample, read as :meth:`read` reads files; ``name``'s
        suffix says the format. The bytes go to a private temporary folder for the reader and are deleted
        with it; an error names the upload, not that folder.

        >>> import tempfile
        >>> from cnnlab.core.rundir import save_checkpoint
        >>> folder = Path(tempfile.mkdtemp())
        >>> save_checkpoint(folder / "best.pt", {"model": create_model("fcn", num_classes=2, in_chans=1).state_dict(),
        ...     "task": "sequence", "kind": "series", "classes": ["a", "b"], "input_size": [1, 4], "model_name": "fcn",
        ...     "model_options": {}, "normalise": {"mode": "sample"}})
        >>> x, names = SequenceModel.load(folder / "best.pt").read_upload("two.csv", b"a,1,2,3,4\\nb,4,3,2,1\\n")
        >>> x.shape, names
        (torch.Size([2, 1, 4]), ['two:1', 'two:2'])
        """
        if not name.lower().endswith(self.accepts):
            raise DataError(
                f"this {self.kind} model does not read {Path(name).suffix or 'files without a suffix'}",
                where=name,
                fix=f"send a {' / '.join(self.accepts)} file",
            )
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
        with tempfile.TemporaryDirectory(prefix="cnnlab-upload-") as folder:
            path = Path(folder) / safe
            path.write_bytes(data)
            try:
                x, names = self._read_one(path)
            except CnnlabError as exc:  # the reader names the temporary file: name the upload instead
                what = exc.what.replace(str(path), name)
                raise DataError(what, where=name, fix=exc.fix) from None
        stem, safe_stem = Path(name).stem, path.stem  # a series file names its rows <stem>:<row>
        return x, [name if n == str(path) else n.replace(f"{safe_stem}:", f"{stem}:", 1) for n in names]

    def predict_upload(self, name: str, data: bytes, top_k: int) -> dict[str, Any]:
        """The server's ``/predict`` for an uploaded file (:func:`cnnlab.tasks.sequence.uploads.predict_upload`)."""
        from cnnlab.tasks.sequence.uploads import predict_upload

        return predict_upload(self, name, data, top_k)

    def explain_upload(self, name: str, data: bytes) -> tuple[bytes, int, float]:
        """The server's ``/explain`` for an uploaded file (:func:`cnnlab.tasks.sequence.uploads.explain_upload`)."""
        from cnnlab.tasks.sequence.uploads import explain_upload

        return explain_upload(self, name, data)

    def _read_one(self, path: Path) -> tuple[torch.Tensor, list[str]]:
        if not path.exists():
            raise DataError("no such file", where=str(path), fix="check the path")
        kind = self.kind
        if kind == "audio":
            spec = self.audio
            if spec is None:
                raise ConfigError("this audio checkpoint has no front-end settings", where=self.source)
            return spec.load_file(path)[None], [str(path)]
        if kind == "clip":
            _, frames, height, width = self.meta["input_size"]
            clip = read_clip(path, frames=frames, size=(height, width), channels=self.meta["input_size"][0])
            return clip[None], [str(path)]
        if kind == "volume":
            volume, _ = read_volume(path)
            x = torch.from_numpy(volume)[None, None]
            size = tuple(self.meta["input_size"][1:])
            if tuple(x.shape[2:]) != size:
                x = torch.nn.functional.interpolate(x, size=size, mode="trilinear", align_corners=False)
            return x, [str(path)]
        data = _series_file(path)
        length = int(self.meta["input_size"][1])
        return _fit_steps(data.x, length, path), [str(n) for n in data.names]

    def _check_shape(self, x: torch.Tensor) -> None:
        expected = tuple(self.meta["input_size"])
        if tuple(x.shape[1:]) != expected:
            raise DataError(
                f"samples of shape {tuple(x.shape[1:])}; the model was trained on {expected}",
                where=self.source,
                fix="give inputs like the training data (same channels and length)",
            )


class Normaliser(nn.Module):
    """:func:`~cnnlab.tasks.sequence.defaults.normalise` as a layer (what an exported sequence model starts with)."""

    def __init__(self, mode: str, mean: list[float] | None, std: list[float] | None) -> None:
        super().__init__()
        self.mode, self.mean, self.std = mode, mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return normalise(x, self.mode, self.mean, self.std)


def _series_file(path: Path) -> SignalSet:
    suffix = path.suffix.lower()
    if suffix not in SERIES_FILES:
        raise DataError(
            f"cannot read {suffix or 'this file'} as series",
            where=str(path),
            fix=f"pass {', '.join(SERIES_FILES)} files with one series per row",
        )
    if suffix == ".ts":
        return read_ts(path)
    if suffix in (".txt", ".tsv"):
        return read_ucr_text(path)
    if suffix == ".csv":
        return load_series_csv(path)
    rows = len(np.load(path, mmap_mode="r")) if suffix == ".npy" else None  # a bare array: no labels to read
    sets = list(load_series_arrays(path, labels=np.zeros(rows, dtype=np.int64) if rows else None).values())
    names = [name for part in sets for name in part.names]
    return SignalSet(torch.cat([s.x for s in sets]), torch.cat([s.y for s in sets]), sets[0].classes, names)


def _fit_steps(x: torch.Tensor, length: int, path: Path) -> torch.Tensor:
    """Series zero-padded at the end (as in training) or refused when longer than the model's input."""
    steps = x.shape[-1]
    if steps > length:
        raise DataError(
            f"series of {steps} steps; the model was trained on {length}",
            where=str(path),
            fix=f"crop the series to {length} steps",
        )
    return torch.nn.functional.pad(x, (0, length - steps)) if steps < length else x


def predict_files(checkpoint: Path, paths: Sequence[Path], top_k: int = 5) -> list[dict[str, Any]]:
    """``cnnlab predict`` for sequence runs: ``[{"image": name, "top": [{"index", "label", "probability"}]}]``."""
    model = SequenceModel.load(checkpoint)
    x, names = model.read(paths)
    probs = model.predict_proba(x)
    return [
        {"image": name, "top": top, "assumed": False}
        for name, top in zip(names, top_classes(probs, model.classes, top_k), strict=True)
    ]


def top_classes(probs: torch.Tensor, classes: Sequence[str], top_k: int) -> list[list[dict[str, Any]]]:
    """Each row's ``top_k`` classes, most probable first: ``{"index", "label", "probability"}``.

    >>> top_classes(torch.tensor([[0.25, 0.75]]), ["a", "b"], 1)
    [[{'index': 1, 'label': 'b', 'probability': 0.75}]]
    """
    values, indices = probs.topk(min(top_k, probs.shape[1]), dim=1)
    return [
        [
            {"index": int(i), "label": classes[int(i)], "probability": round(float(v), 6)}
            for v, i in zip(vs, ix, strict=True)
        ]
        for vs, ix in zip(values, indices, strict=True)
    ]
