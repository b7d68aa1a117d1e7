"""``cnnlab models``: the model zoo as a table (parameters, MACs at the default input, paper, weights)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

from cnnlab.core.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

TASKS = ("classify", "segment")


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

    from cnnlab.models import create_model, list_models, model_entry, weight_specs

    rows = []
    for name in list_models(task):  # type: ignore[arg-type]
        entry = model_entry(name)
        with torch.device("meta"):
            model = create_model(name)
        macs = count_macs(model, entry.default_input)  # meta tensors, outside the slower device context
        params = sum(p.numel() for p in model.parameters())
        specs = tuple(s.name for s in weight_specs(name))
        rows.append(ModelRow(name, entry.task, params, macs, entry.default_input, entry.paper, specs))
    return rows


def count_macs(model: nn.Module, input_chw: tuple[int, int, int]) -> int:
    """Multiply-accumulates of one forward pass on one ``(C, H, W)`` input (conv, transposed conv, linear).

    >>> from cnnlab.models import create_model
    >>> count_macs(create_model("lenet5"), (1, 32, 32))  # C1 117,600 + C3 240,000 + 58,920 in the linear layers
    416520
    """
    import torch
    from torch import nn

    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            total += output[0].numel() * per_output
        elif isinstance(module, nn.ConvTranspose2d):
            per_input = module.out_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            total += inputs[0][0].numel() * per_input
        elif isinstance(module, nn.Linear):
            total += output[0].numel() * module.in_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear | nn.ConvTranspose2d)
    ]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.empty(1, *input_chw, device=next(model.parameters()).device))
    finally:
        for handle in handles:
            handle.remove()
    return total


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

    if task is not None and task not in TASKS:
        raise ConfigError(f"unknown task {task!r}", where="--task", fix=f"use one of: {', '.join(TASKS)}")
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
