"""Enrolment and identification: a gallery of known people (one folder each, one photo is enough: one-shot)
as embeddings in one file, and ``identify`` = the nearest people with their distances, or "unknown".

A gallery file (``.npz``, plain arrays, no pickle) holds every enrolled photo's embedding, its person and
path, and the embedder it was made with (a run folder or ``dlib_resnet29``) and that embedder's threshold, so
``cnnlab identify photo.jpg --gallery G`` needs nothing else.

>>> import torch
>>> g = Gallery(torch.tensor([[0.0, 0.0], [0.0, 0.2], [1.0, 0.0]]), ["ann", "ann", "bob"], ["a1", "a2", "b1"],
...             embedder="toy", threshold=0.5)
>>> g.identify(torch.tensor([0.9, 0.1]), k=2)  # bob at 0.1414, ann at 0.9055 (her nearest photo, a2)
[('bob', 0.1414), ('ann', 0.9055)]
>>> g.who(torch.tensor([0.9, 0.1])), g.who(torch.tensor([5.0, 5.0]))
(('bob', 0.1414), (None, 6.4031))
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.core.rundir import atomic_write_text
from cnnlab.data.images import is_image_file
from cnnlab.tasks.embed.embedder import Embedder
from cnnlab.tasks.embed.frontend import FaceMode


@dataclass
class Gallery:
    """Enrolled embeddings ``(N, D)`` with each row's person and photo path; ``embedder`` names the model."""

    vectors: torch.Tensor
    people: list[str]
    paths: list[str]
    embedder: str
    threshold: float

    def identify(self, vector: torch.Tensor, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` nearest people (by their nearest photo) and their distances, nearest first."""
        distances = (self.vectors - vector.flatten()[None]).norm(dim=1)
        best: dict[str, float] = {}
        for person, distance in zip(self.people, distances.tolist(), strict=True):
            best[person] = min(distance, best.get(person, float("inf")))
        ranked = sorted(best.items(), key=lambda item: item[1])[:k]
        return [(person, round(distance, 4)) for person, distance in ranked]

    def who(self, vector: torch.Tensor) -> tuple[str | None, float]:
        """The nearest person, or ``None`` ("unknown") when even they are farther than the threshold."""
        person, distance = self.identify(vector, k=1)[0]
        return (person if distance <= self.threshold else None), distance

    def save(self, path: str | Path) -> Path:
        """Write the gallery as one ``.npz`` (atomically: a half-written gallery never replaces a good one)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial.npz")
        meta = {"embedder": self.embedder, "threshold": self.threshold, "people": self.people, "paths": self.paths}
        np.savez(partial, vectors=self.vectors.numpy(), meta=np.array(json.dumps(meta)))
        partial.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Gallery:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(
                "gallery file not found", where=str(path), fix="make one with cnnlab enrol PEOPLE --out FILE"
            )
        with np.load(path, allow_pickle=False) as archive:
            if "vectors" not in archive or "meta" not in archive:
                raise DataError("not a cnnlab gallery", where=str(path), fix="make one with cnnlab enrol PEOPLE")
            meta = json.loads(str(archive["meta"]))
            vectors = torch.from_numpy(archive["vectors"].copy())
        return cls(vectors, meta["people"], meta["paths"], meta["embedder"], float(meta["threshold"]))


def gallery_photos(folder: str | Path) -> dict[str, list[Path]]:
    """``{person: photos}`` of a gallery folder: one sub-folder per person (one photo is enough), or photos
    directly in ``folder`` named after their person (``ann.jpg``, ``bob.png``). Duplicate names are an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError("gallery folder not found", where=str(folder), fix="pass a folder with one folder per person")
    entries = [e for e in sorted(folder.iterdir()) if not e.name.startswith(".")]
    people: dict[str, list[Path]] = {}
    for entry in (e for e in entries if e.is_dir()):
        photos = sorted(p for p in entry.rglob("*") if p.is_file() and is_image_file(p))
        if photos:
            people[entry.name] = photos
    for entry in (e for e in entries if e.is_file() and is_image_file(e)):
        if entry.stem in people:
            folder_too = people[entry.stem][0].parent != folder
            raise DataError(
                f"{entry.stem!r} is both a photo and a folder"
                if folder_too
                else f"two photos are named {entry.stem!r}",
                where=str(entry),
                fix="give each person one name: rename one, or put a person's photos in a folder of their name",
            )
        people[entry.stem] = [entry]
    if not people:
        raise DataError(
            "no photos found", where=str(folder), fix="put each person's photo(s) in a folder of their name"
        )
    return people


def enrol(
    people: dict[str, list[Path]], embedder: Embedder, embedder_name: str, faces: FaceMode = "auto"
) -> tuple[Gallery, list[str]]:
    """Embed every photo of ``people`` (:func:`gallery_photos` of a folder); returns the gallery and one note
    per photo that was skipped (no face found) or needed a choice (several faces: the largest used)."""
    vectors, names, paths, notes = [], [], [], []
    for person, photos in people.items():
        for found in embedder.embed_files(photos, faces):
            if found.vector is None:
                notes.append(f"{found.path}: skipped: {found.note}")
                continue
            if "largest" in found.note:
                notes.append(f"{found.path}: {found.note}")
            vectors.append(found.vector)
            names.append(person)
            paths.append(found.path)
    if not vectors:
        raise DataError(
            "no face found in any gallery photo",
            where=str(next(iter(people.values()))[0].parent),
            fix="use photos with a visible face",
        )
    return Gallery(torch.stack(vectors), names, paths, embedder_name, embedder.threshold), notes


def predict_embeddings(target: Path, images: Sequence[Path], out: Path) -> list[dict[str, Any]]:
    """``cnnlab predict`` for an embedder: the photos' embeddings in ``out/embeddings.npz`` (``vectors`` and
    ``paths``, photos without a face left out) and one row per photo with the front-end's note."""
    embedder = Embedder.load(target)
    found = embedder.embed_files(images)
    kept = [f for f in found if f.vector is not None]
    out.mkdir(parents=True, exist_ok=True)
    file = out / "embeddings.npz"
    if kept:
        np.savez(file, vectors=torch.stack([f.vector for f in kept]).numpy(), paths=np.array([f.path for f in kept]))
    rows = [{"image": f.path, "embeddings": str(file) if f.vector is not None else None, "face": f.note} for f in found]
    atomic_write_text(out / "embeddings.json", json.dumps(rows, indent=2) + "\n")
    return rows
