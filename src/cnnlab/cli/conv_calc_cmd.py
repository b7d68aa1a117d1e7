"""``cnnlab conv-calc --input 39x39x3 --layer conv:f=3,c=10 ...``: walk a layer stack with the formulas shown.

Layer syntax: ``conv:f=F,c=C[,s=S][,p=P][,d=D]``, ``pool:f=F[,s=S][,p=P][,d=D][,type=max|avg]``
(also ``maxpool:`` / ``avgpool:``), ``flatten``, ``fc:n=N``. ``p`` is an int, ``valid`` or
``same`` (TF: output ``ceil(n / s)``). Sizes are written HxWxC, as in the course notes; ``TxC`` is a signal
(Conv1D: T steps of C channels) and ``DxHxWxC`` a clip or volume (Conv3D), as Keras writes their shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import typer

from cnnlab.cli.summary_cmd import parse_dims
from cnnlab.core import shapes
from cnnlab.core.errors import ConfigError, ShapeError

_SYNTAX = "conv:f=3,c=10[,s=1,p=0|same|valid,d=1] | pool:f=2[,s=2,p=0,type=max|avg] | flatten | fc:n=120"
# Which keys each kind takes, and which of them are required.
_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "conv": ({"f", "c", "s", "p", "d"}, {"f", "c"}),
    "pool": ({"f", "s", "p", "d", "type"}, {"f"}),
    "flatten": (set(), set()),
    "fc": ({"n"}, {"n"}),
}


@dataclass(frozen=True)
class Step:
    """One parsed ``--layer`` value."""

    text: str
    kind: str
    options: dict[str, str]

    def int(self, key: str, default: int | None = None) -> int:
        # Required keys (no default) were checked by parse_layer.
        value = self.options[key] if default is None else self.options.get(key, str(default))
        if not value.isdigit():
            raise ConfigError(f"{key} must be a non-negative integer. Received: {key}={value}", where=self.where)
        return int(value)

    @property
    def where(self) -> str:
        return f"--layer {self.text}"


def parse_layer(text: str) -> Step:
    """``'conv:f=3,c=10'`` -> a :class:`Step` (unknown kinds or keys are a :class:`ConfigError`).

    >>> parse_layer("maxpool:f=2").options
    {'type': 'max', 'f': '2'}
    """
    kind, _, rest = text.strip().partition(":")
    kind = kind.lower()
    options: dict[str, str] = {}
    if kind in ("maxpool", "avgpool"):
        kind, options["type"] = "pool", kind.removesuffix("pool")
    if kind not in _KEYS:
        raise ConfigError(f"unknown layer kind {kind!r}", where=f"--layer {text}", fix=f"use {_SYNTAX}")
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key.strip() not in _KEYS[kind][0]:
            allowed = ", ".join(sorted(_KEYS[kind][0])) or "none"
            raise ConfigError(
                f"bad option {item!r} for {kind} (keys: {allowed})", where=f"--layer {text}", fix=f"use {_SYNTAX}"
            )
        options[key.strip()] = value.strip().lower()
    missing = _KEYS[kind][1] - options.keys()
    if missing:
        raise ConfigError(f"{kind} needs {', '.join(sorted(missing))}", where=f"--layer {text}", fix=f"use {_SYNTAX}")
    if options.get("type", "max") not in ("max", "avg"):
        raise ConfigError(f"pool type must be max or avg. Received: {options['type']}", where=f"--layer {text}")
    return Step(text, kind, options)


AXES = {1: ["T"], 2: ["H", "W"], 3: ["D", "H", "W"]}
"""The spatial axes of a TxC signal, an HxWxC image and a DxHxWxC volume."""


def conv_calc(
    input_size: str = typer.Option(
        ..., "--input", help="HxWxC, e.g. 39x39x3; TxC for a signal (Conv1D), DxHxWxC for a clip or volume (Conv3D)."
    ),
    layers: list[str] = typer.Option(..., "--layer", help=f"Repeat, in order: {_SYNTAX}"),
) -> None:
    """Print each layer's output size with the formula floor((n + 2p - f') / s) + 1 filled in (any of 1, 2 or 3
    spatial axes: kernels are f, fxf or fxfxf)."""
    dims = parse_dims(input_size, "--input", "39x39x3")
    if len(dims) not in (2, 3, 4):
        raise ConfigError(
            f"--input needs HxWxC (or TxC, DxHxWxC). Received: {input_size!r}", where="--input", fix="e.g. 39x39x3"
        )
    sizes, c = tuple(dims[:-1]), dims[-1]
    names = AXES[len(sizes)]
    flat: int | None = None  # set once the stack is flattened
    total_params = total_macs = 0
    typer.echo(f"input: {_shape(sizes, c)}")
    for i, step in enumerate(parse_layer(text) for text in layers):
        typer.echo(f"{i + 1}. {step.text}")
        if step.kind in ("conv", "pool") and flat is not None:
            raise ConfigError(f"{step.kind} after flatten/fc has no spatial input", where=step.where)
        if step.kind == "flatten" or (step.kind == "fc" and flat is None):
            if flat is None:
                flat = math.prod(sizes) * c
                typer.echo(f"   flatten: {'*'.join(str(n) for n in (*sizes, c))} = {flat:,}")
            if step.kind == "flatten":
                continue
        if step.kind == "fc":
            n = step.int("n")
            params, macs = shapes.dense_params(flat, n), shapes.dense_macs(flat, n)
            typer.echo(f"   -> {n}   params {flat}*{n} + {n} = {params:,}   mult-adds {macs:,}")
            flat, total_params, total_macs = n, total_params + params, total_macs + macs
            continue
        f, d = step.int("f"), step.int("d", 1)
        s = step.int("s", 1 if step.kind == "conv" else f)
        pads = _padding(step, sizes, f, s, d)
        try:
            sizes = _walk_axes(step, sizes, names, f, s, pads, d)
        except ShapeError as err:
            raise ShapeError(err.what, where=step.where, fix=err.fix) from err
        if step.kind == "conv":
            c_out = step.int("c")
            kernel = (f,) * len(sizes)
            params = shapes.conv_params(c, c_out, kernel)
            macs = shapes.conv_macs(c, c_out, kernel, sizes)
            window = "*".join([str(f)] * len(sizes))
            out = "*".join(str(n) for n in sizes)
            detail = f"params {c_out}*({window}*{c} + 1) = {params:,}   mult-adds {out}*{c_out}*{window}*{c} = {macs:,}"
            c, total_params, total_macs = c_out, total_params + params, total_macs + macs
        else:
            detail = f"{step.options.get('type', 'max')} pool, no parameters"
        typer.echo(f"   -> {_shape(sizes, c)}   {detail}")
    if flat is None:
        flat = math.prod(sizes) * c
        typer.echo(f"flatten: {'*'.join(str(n) for n in (*sizes, c))} = {flat:,}")
    typer.echo(f"total: {total_params:,} parameters, {total_macs:,} mult-adds ({total_macs / 1e6:.1f}M)")


def _shape(sizes: tuple[int, ...], channels: int) -> str:
    return "x".join(str(n) for n in (*sizes, channels))


def _padding(step: Step, sizes: tuple[int, ...], f: int, s: int, d: int) -> list[tuple[int, int]]:
    p = step.options.get("p", "0")
    if p == "same":
        return [shapes.same_padding(n, f, s, d) for n in sizes]
    return [(0, 0)] * len(sizes) if p == "valid" else [shapes.axis_padding(step.int("p", 0))] * len(sizes)


def _walk_axes(
    step: Step, sizes: tuple[int, ...], names: list[str], f: int, s: int, pads: list[tuple[int, int]], d: int
) -> tuple[int, ...]:
    """Every output size; the formula is printed once when all axes work out the same."""
    size = shapes.pool_output_size if step.kind == "pool" else shapes.conv_output_size
    out = tuple(size(n, f, s, p, d) for n, p in zip(sizes, pads, strict=True))
    same = len(set(sizes)) == 1 and len(set(pads)) == 1 and len(sizes) > 1
    rows = [(", ".join(names), sizes[0], pads[0])] if same else list(zip(names, sizes, pads, strict=True))
    for axis, n, p in rows:
        typer.echo(f"   {axis}: {shapes.conv_output_formula(n, f, s, p, d)}")
    return out
