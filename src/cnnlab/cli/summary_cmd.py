"""``cnnlab summary MODEL_NAME --input 3x224x224``: the per-layer table of a registered model."""

from __future__ import annotations

import json

import typer

from cnnlab.core.errors import ConfigError


def parse_dims(text: str, option: str, example: str) -> tuple[int, ...]:
    """``'3x224x224'`` -> ``(3, 224, 224)``; anything else is a :class:`ConfigError` naming the option.

    >>> parse_dims("39x39x3", "--input", "39x39x3")
    (39, 39, 3)
    """
    parts = text.lower().replace("×", "x").split("x")
    if not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ConfigError(
            f"expected positive sizes joined by 'x'. Received: {text!r}", where=option, fix=f"e.g. {example}"
        )
    return tuple(int(p) for p in parts)


def summary(
    model_name: str = typer.Argument(
        ..., metavar="MODEL_NAME", help="A registered model (see `cnnlab info`) or a model spec .yaml file."
    ),
    input_shape: str = typer.Option(
        None, "--input", help="CxHxW without the batch, e.g. 3x224x224 (default: the paper's or the spec's)."
    ),
    num_classes: int = typer.Option(None, "--num-classes", help="Classifier outputs of a registered model."),
    output: str = typer.Option("table", "--format", help="table (rich), text (plain) or json."),
) -> None:
    """Layer by layer: output shape, parameters, multiply-adds, memory and receptive field."""
    from rich.console import Console

    from cnnlab.layers.summary import summary as summarize

    if output not in ("table", "text", "json"):
        raise ConfigError(f"unknown format {output!r}", where="--format", fix="use table, text or json")
    shape = parse_dims(input_shape, "--input", "3x224x224") if input_shape else None
    if shape is not None and len(shape) != 3:
        raise ConfigError(
            f"--input needs CxHxW (3 sizes). Received: {input_shape!r}", where="--input", fix="e.g. 3x224x224"
        )
    if model_name.endswith((".yaml", ".yml")):
        from cnnlab.sequential import load_model_yaml

        if num_classes is not None:
            raise ConfigError(
                "--num-classes only applies to registered models",
                where="--num-classes",
                fix="set the units of the last Dense layer in the spec",
            )
        model = load_model_yaml(model_name)
        shape = shape or model.input_shape
        if shape is None:
            raise ConfigError(
                "the model spec has no input_shape",
                where=model_name,
                fix="add input_shape: [C, H, W] or pass --input CxHxW",
            )
    else:
        from cnnlab.models import create_model, model_entry

        shape = shape or model_entry(model_name).default_input
        kwargs: dict[str, object] = {"in_chans": shape[0]}
        if num_classes is not None:
            kwargs["num_classes"] = num_classes
        model = create_model(model_name, **kwargs)
    result = summarize(model, shape)
    if output == "json":
        typer.echo(json.dumps(result.to_dict(), indent=2))
    elif output == "text":
        typer.echo(str(result))
    else:
        console = Console()
        if not console.is_terminal:  # piped: do not crop the table to 80 columns
            console = Console(width=200)
        console.print(result.to_rich())
