"""``cnnlab explore``: a local page that shows what your model does with an image, layer by layer and unit by
unit (FastAPI + uvicorn, as ``cnnlab serve``)."""

from __future__ import annotations

import contextlib
import difflib
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from cnnlab.cli.serve_cmd import is_loopback, listening_socket
from cnnlab.core.errors import ConfigError, with_article
from cnnlab.models import list_models

if TYPE_CHECKING:  # the explorer (and matplotlib) load when the command runs, not with every cnnlab command
    from cnnlab.explore import Subject

RUN_FIX = (
    "pass a run folder (runs/classify/<name>-<n>), a checkpoint .pt from `cnnlab train`, or a zoo classifier's name"
)


def load_subject(target: str) -> Subject:
    """A run folder or checkpoint (trained) or a zoo classifier's name (untrained) as the explorer's subject.

    >>> load_subject("resnet_18")
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.ConfigError: no run folder, checkpoint or zoo model named 'resnet_18' [RUN_OR_MODEL]. Fix: ...
    """
    from cnnlab.explore import subject_of, zoo_subject

    path = Path(target)
    if path.exists() or path.suffix == ".pt" or len(path.parts) > 1:
        from cnnlab.serve.model import load_trained

        task, predictor = load_trained(path)  # a missing or damaged run is one error line naming it
        if task.name != "classify":
            raise ConfigError(
                f"{target} is {with_article(task.name)} run; cnnlab explore shows classifiers",
                where="RUN_OR_MODEL",
                fix="explore a `cnnlab train` classification run, or a zoo classifier's name",
            )
        return subject_of(predictor)
    names = list_models()
    if target not in names:
        close = difflib.get_close_matches(target, names, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(
            f"no run folder, checkpoint or zoo model named '{target}'",
            where="RUN_OR_MODEL",
            fix=f"{hint}{RUN_FIX} (`cnnlab models` lists them)",
        )
    return zoo_subject(target)


def explore(
    target: str = typer.Argument(
        ...,
        metavar="RUN_OR_MODEL",
        help="A run folder or checkpoint (.pt) from `cnnlab train`, or a zoo classifier's name (untrained).",
    ),
    data: Path = typer.Option(
        None, "--data", help="A folder of images: pick from it, and see each unit's top-9 patches in it."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback: this machine only)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
) -> None:
    """Open a page that shows what your model does: every layer's output maps with its arithmetic (output size
    formula, parameters, multiply-adds, receptive field), a unit's receptive field, kernel and dot product,
    Grad-CAM per class, and a unit's top-9 patches in --data.

    Example: `cnnlab explore runs/classify/cnn_small-1 --data ../shared/data/hymenoptera/val`, or
    `cnnlab explore resnet18`; then open http://127.0.0.1:8000/.
    """
    try:
        import uvicorn

        from cnnlab.data.images import image_files
        from cnnlab.explore import Explorer, create_app
    except ImportError as exc:
        raise ConfigError(
            f"the explorer needs FastAPI and uvicorn ({exc.name} is missing)",
            where="cnnlab explore",
            fix="pip install 'cnnlab[serve]'",
        ) from None
    console = Console(stderr=True, highlight=False)
    subject = load_subject(target)
    if data is not None:
        image_files(data)  # a folder without images fails here, before the port is taken
    with listening_socket(host, port) as sock:
        if not is_loopback(host):
            console.print(f"[yellow]warning:[/yellow] listening on {host}: other machines can reach this page.")
        console.print(f"Recording the layers of {subject.name} ({subject.note})…")
        explorer = Explorer(subject, data)
        url = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
        console.print(f"Exploring {subject.name} ({len(explorer.layers)} layer calls) on {url}")
        config = uvicorn.Config(create_app(explorer), log_level="warning", server_header=False, timeout_keep_alive=5)
        with contextlib.suppress(KeyboardInterrupt):
            uvicorn.Server(config).run(sockets=[sock])
