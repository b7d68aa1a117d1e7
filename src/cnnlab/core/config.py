"""Frozen dataclasses for settings, and their YAML form.

Unknown keys are errors (with "did you mean ..."), values are checked against the field types,
and nested dataclasses round-trip.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Opt:
...     lr: float = 0.1
...     name: str = "sgd"
>>> from_dict(Opt, {"lr": 0.5})
Opt(lr=0.5, name='sgd')
>>> to_dict(Opt())
{'lr': 0.1, 'name': 'sgd'}
>>> from_dict(Opt, {"lrr": 1})
Traceback (most recent call last):
...
cnnlab.core.errors.ConfigError: unknown setting 'lrr'; did you mean 'lr'? [Opt]. Fix: known settings: lr, name
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from cnnlab.core.errors import ConfigError
from cnnlab.core.rundir import atomic_write_text

C = TypeVar("C")


def to_dict(config: Any) -> dict[str, Any]:
    """A plain dict (tuples become lists) fit for YAML."""
    return _plain(dataclasses.asdict(config))


def from_dict(cls: type[C], values: dict[str, Any]) -> C:
    """Build ``cls`` from ``values``, checking names and types."""
    if not isinstance(values, dict):
        raise ConfigError(f"expected a mapping of settings for {cls.__name__}, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"unknown setting '{key}'{hint}", where=cls.__name__, fix=f"known settings: {', '.join(sorted(fields))}"
            )
        kwargs[key] = _coerce(value, hints[key], f"{cls.__name__}.{key}")
    return cls(**kwargs)


def replace(config: C, **changes: Any) -> C:
    """A copy of ``config`` with ``changes`` applied and type-checked (``None`` values are ignored)."""
    values = to_dict(config)
    values.update({k: v for k, v in changes.items() if v is not None})
    return from_dict(type(config), values)


def save_yaml(config: Any, path: str | Path) -> None:
    """Write ``config`` as YAML, atomically."""
    atomic_write_text(path, yaml.safe_dump(to_dict(config), sort_keys=False))


def load_yaml(cls: type[C], path: str | Path) -> C:
    """Read a YAML file written by :func:`save_yaml` (or by hand) into ``cls``. A section the file gives in
    part keeps the other values of ``cls()``'s (a run.yaml with ``train: {lr: 0.01}`` keeps its task's epochs
    and monitor, not the plain ``TrainConfig``'s).

    >>> import tempfile
    >>> from dataclasses import field, make_dataclass
    >>> Train = make_dataclass("Train", [("lr", float, field(default=0.1)), ("epochs", int, field(default=10))])
    >>> Run = make_dataclass("Run", [("train", Train, field(default_factory=lambda: Train(epochs=40)))])
    >>> file = Path(tempfile.mkdtemp()) / "run.yaml"
    >>> _ = file.write_text("train:\\n  lr: 0.5\\n")
    >>> load_yaml(Run, file)
    Run(train=Train(lr=0.5, epochs=40))
    """
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError("config file not found", where=str(path), fix="check the path") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config is not valid YAML: {exc}", where=str(path)) from None
    try:
        defaults = to_dict(cls())
    except TypeError:  # a dataclass without defaults for every field: the file must give them all
        defaults = {}
    return from_dict(cls, _over(defaults, values))


def _over(base: Any, values: Any) -> Any:
    """``values`` laid over ``base``, mapping by mapping (anything else in ``values`` replaces ``base``)."""
    if not isinstance(values, dict) or not isinstance(base, dict):
        return values
    return base | {key: _over(base.get(key), value) for key, value in values.items()}


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return from_dict(hint, value)  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(hint):
            try:
                return _coerce(value, option, where)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[-1]
    if hint is type(None):
        if value is None:
            return None
        raise ConfigError(f"expected nothing (null), got {value!r}", where=where)
    if origin is typing.Literal:
        if value in typing.get_args(hint):
            return value
        choices = typing.get_args(hint)
        options = ", ".join(repr(a) for a in choices)
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.5)
        hint_text = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"expected one of {options}, got {value!r}{hint_text}", where=where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"expected a list, got {value!r}", where=where)
        args = typing.get_args(hint)
        item_hints = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
        if len(item_hints) != len(value):
            raise ConfigError(f"expected {len(item_hints)} values, got {value!r}", where=where)
        return tuple(_coerce(v, h, where) for v, h in zip(value, item_hints, strict=True))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is Any or (
        isinstance(hint, type) and isinstance(value, hint) and not (hint is int and isinstance(value, bool))
    ):
        return value
    raise ConfigError(f"expected {getattr(hint, '__name__', hint)}, got {value!r}", where=where)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
