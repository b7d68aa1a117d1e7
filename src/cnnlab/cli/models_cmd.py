"""``cnnlab models``: the model zoo as a table (parameters, MACs at the default input, paper, weights)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class ModelRow:
    """One line of the zoo table."""

    name: str
    task: str
    params: int
    macs: int
    default_input: tuple[int, int, int]
    paper: str
    weights: tuple[str, ...]


def zoo_rows(task: str | None = None) -> list[ModelRow]:
    """Rows for every registered model, measured on the meta device (shapes only, no memory).

    >>> row = next(r for r in zoo_rows("segment") if r.name == "unet")
    >>> row.params, row.default_input
    (31030658, (1, 572, 572))
    """
    import torch

    from cnnlab.layers.summary import summary
    from cnnlab.models import create_model, list_models, model_entry, weight_specs

    rows = []
    for name in list_models(task):  # type: ignore[arg-type]
        entry = model_entry(name)
        with torch.device("meta"):
            model = create_model(name)
        macs = summary(model, entry.default_input).weight_macs  # meta tensors: shapes only, no arithmetic
        params = sum(p.numel() for p in model.parameters())
        specs = tuple(s.name for s in weight_specs(name))
        rows.append(ModelRow(name, entry.task, params, macs, entry.default_input, entry.paper, specs))
    return rows


def _human(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def models(
    task: str = typer.Option(None, "--task", help="Only models of this task: classify or segment."),
    markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table (for docs/models.md)."),
) -> None:
    """List the model zoo: parameters, MACs at the default input, paper and known weights."""
    from rich.console import Console
    from rich.table import Table

    if task is not None:
        from cnnlab.tasks import TASKS

        TASKS.get(task)  # an unknown task: "did you mean ..."
    rows = zoo_rows(task)
    header = ("model", "task", "parameters", "MACs", "input", "paper", "weights")
    cells = [
        (
            r.name,
            r.task,
            f"{r.params:,}",
            _human(r.macs),
            "x".join(map(str, r.default_input)),
            r.paper if markdown else r.paper.split(",")[0],  # the terminal gets "Authors year"
            ", ".join(r.weights if markdown else (w.split(".", 1)[1] for w in r.weights)) or "-",
        )
        for r in rows
    ]
    if markdown:
        typer.echo("| " + " | ".join(header) + " |")
        typer.echo("|" + "---|" * len(header))
        for row in cells:
            typer.echo("| " + " | ".join(row) + " |")
        return
    table = Table(title=f"cnnlab models ({len(rows)})")
    for column in header:
        table.add_column(
            column, justify="right" if column in ("parameters", "MACs") else "left", no_wrap=column != "paper"
        )
    for row in cells:
        table.add_row(*row)
    Console().print(table)
