"""``cnnlab enrol``, ``cnnlab verify`` and ``cnnlab identify``: face (or any) recognition with a trained
embedder (a run of ``cnnlab train --task embed``) or the pretrained ``dlib_resnet29``, on ordinary photos
(the face front-end finds, crops and aligns the face) or on tight crops (``--faces none``)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cnnlab.core.errors import ConfigError

MODEL_HELP = "An embedding run folder (cnnlab train --task embed) or dlib_resnet29 (pretrained, default)."
GALLERY_HELP = "A folder with one folder per person (one photo is enough), or photos named after their person."
FACES_HELP = (
    "Face front-end: auto (find, crop, align the face; small pictures without a face found are taken whole) | "
    "detect (a face is required) | none (the pictures are face crops already)."
)


def _check_faces(faces: str) -> None:
    from cnnlab.tasks.embed.frontend import MODES

    if faces not in MODES:
        raise ConfigError(f"unknown face mode {faces!r}", where="--faces", fix="use " + " | ".join(MODES))


def verify(
    first: Path = typer.Argument(..., help="A photo."),
    second: Path = typer.Argument(..., help="Another photo (or the enrolled photo of the claimed person)."),
    model: str = typer.Option("dlib_resnet29", "--model", help=MODEL_HELP),
    threshold: float = typer.Option(None, "--threshold", help="Distance threshold (default: the model's own)."),
    faces: str = typer.Option("auto", "--faces", help=FACES_HELP),
) -> None:
    """Same person? `cnnlab verify a.jpg b.jpg` prints the distance, the threshold and the verdict."""
    from cnnlab.tasks.embed.embedder import Embedder

    _check_faces(faces)
    embedder = Embedder.load(model)
    limit = embedder.threshold if threshold is None else threshold
    found = embedder.embed_files([first, second], faces)  # type: ignore[arg-type]
    console = Console()
    for item in found:
        console.print(escape(f"{item.path}: {item.note}"))
    missing = [item.path for item in found if item.vector is None]
    if missing:
        console.print(
            f"[red]No face found in {escape(', '.join(missing))}[/red]: cannot verify (try --faces none for crops)."
        )
        raise typer.Exit(2)
    distance = float((found[0].vector - found[1].vector).norm())
    same = distance <= limit
    verdict = "[bold green]same person[/bold green]" if same else "[bold red]different people[/bold red]"
    console.print(f"distance {distance:.4f}, threshold {limit:.4f} ({embedder.name}): {verdict}")


def enrol(
    gallery: Path = typer.Argument(..., help=GALLERY_HELP),
    out: Path = typer.Option(Path("gallery.npz"), "--out", help="The gallery file to write."),
    model: str = typer.Option("dlib_resnet29", "--model", help=MODEL_HELP),
    faces: str = typer.Option("auto", "--faces", help=FACES_HELP),
) -> None:
    """Enrol people: `cnnlab enrol people/ --out gallery.npz` embeds every photo once (the course's database)."""
    from cnnlab.tasks.embed.embedder import Embedder
    from cnnlab.tasks.embed.gallery import enrol as enrol_people
    from cnnlab.tasks.embed.gallery import gallery_photos

    _check_faces(faces)
    people = gallery_photos(gallery)  # a bad gallery stops here, before any weights are read
    embedder = Embedder.load(model)
    console = Console()
    found, notes = enrol_people(people, embedder, model, faces)  # type: ignore[arg-type]
    for note in notes:
        console.print(escape(note))
    written = found.save(out)
    people = len(set(found.people))
    console.print(
        f"Enrolled {people} people ({len(found.people)} photos) with {model}; threshold {found.threshold:.4f}. "
        f"Gallery: {written}"
    )


def identify(
    images: list[Path] = typer.Argument(..., help="Photos to identify."),
    gallery: Path = typer.Option(Path("gallery.npz"), "--gallery", help="A gallery file from cnnlab enrol."),
    top_k: int = typer.Option(3, "--top-k", min=1, help="Nearest people shown per photo."),
    threshold: float = typer.Option(None, "--threshold", help="Distance threshold (default: the gallery's)."),
    faces: str = typer.Option("auto", "--faces", help=FACES_HELP),
) -> None:
    """Who is it? `cnnlab identify photo.jpg --gallery gallery.npz`: the nearest people with distances, or
    unknown when even the nearest is farther than the threshold (the course's who_is_it)."""
    from cnnlab.tasks.embed.embedder import Embedder
    from cnnlab.tasks.embed.gallery import Gallery

    _check_faces(faces)
    known = Gallery.load(gallery)
    if threshold is not None:
        known.threshold = threshold
    embedder = Embedder.load(known.embedder)
    table = Table("photo", "answer", "distance", f"nearest {top_k}", "face")
    for item in embedder.embed_files(images, faces):  # type: ignore[arg-type]
        if item.vector is None:
            table.add_row(escape(item.path), "[red]no face[/red]", "-", "-", escape(item.note))
            continue
        person, distance = known.who(item.vector)
        nearest = escape(", ".join(f"{p} {d:.3f}" for p, d in known.identify(item.vector, top_k)))
        answer = f"[bold green]{escape(person)}[/bold green]" if person else "[yellow]unknown[/yellow]"
        table.add_row(escape(item.path), answer, f"{distance:.4f}", nearest, escape(item.note))
    console = Console()
    console.print(table)
    console.print(f"threshold {known.threshold:.4f} ({known.embedder}); {len(set(known.people))} people enrolled")
