"""``keras.saving``: ``load_model`` and ``register_keras_serializable`` for your own layer classes.

A saved model names each custom layer's class (and its registered name); :func:`load_model` finds the
class in ``custom_objects`` or among the classes registered with :func:`register_keras_serializable`,
and rebuilds the layer with ``cls.from_config(config)``, as Keras does.

>>> from cnnlab.keras import layers
>>> @register_keras_serializable(package="MyLayers")
... class Double(layers.Layer):
...     def call(self, inputs):
...         return inputs * 2
>>> get_registered_name(Double), get_registered_object("MyLayers>Double") is Double
('MyLayers>Double', True)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from cnnlab.core.errors import ConfigError

T = TypeVar("T", bound=type)

_REGISTERED: dict[str, type] = {}  # "package>name" -> class


def register_keras_serializable(package: str = "Custom", name: str | None = None) -> Callable[[T], T]:
    """Class decorator: make ``cls`` loadable by :func:`load_model` without ``custom_objects``, under the
    registered name ``"package>name"`` (``name`` defaults to the class name), as Keras' decorator."""
    if ">" in package:
        raise ConfigError(f"register_keras_serializable: package must not contain '>'. Received: {package!r}")

    def decorate(cls: T) -> T:
        key = f"{package}>{name or cls.__name__}"
        if key in _REGISTERED and _REGISTERED[key] is not cls:
            raise ConfigError(f"{key} has already been registered to {_REGISTERED[key]}", fix="pick another name")
        _REGISTERED[key] = cls
        cls._registered_name = key  # type: ignore[attr-defined]
        return cls

    return decorate


def get_registered_name(cls: type) -> str:
    """``"package>name"`` for a registered class, else the class name (what a saved model records)."""
    key = cls.__dict__.get("_registered_name")
    return key if key is not None and _REGISTERED.get(key) is cls else cls.__name__


def get_registered_object(
    name: str, custom_objects: dict[str, Any] | None = None, module_objects: dict[str, Any] | None = None
) -> Any:
    """The class saved as ``name``: from ``custom_objects`` (by registered or class name), then the registry;
    None when neither has it."""
    short = name.split(">")[-1]
    for source in (custom_objects or {}, _REGISTERED, module_objects or {}):
        if name in source:
            return source[name]
        if source is not _REGISTERED and short in source:
            return source[short]
    return None


def load_model(
    filepath: str | Path, custom_objects: dict[str, Any] | None = None, compile: bool = True, safe_mode: bool = True
) -> Any:
    """:func:`cnnlab.keras.models.load_model` (Keras 3 has it here too)."""
    from cnnlab.keras.models import load_model as load

    return load(filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


__all__ = ["get_registered_name", "get_registered_object", "load_model", "register_keras_serializable"]
