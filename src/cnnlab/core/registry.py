"""A generic name -> object registry with "did you mean ..." answers.

>>> shapes = Registry("shape")
>>> @shapes.register("square")
... def square(n: int) -> int:
...     return n * n
>>> shapes.get("square")(3)
9
>>> shapes.get("sqare")
Traceback (most recent call last):
...
cnnlab.core.errors.RegistryError: unknown shape 'sqare'; did you mean 'square'? [known: square]
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from cnnlab.core.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects; registering a name twice is an error."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers its target under ``name`` and returns it unchanged."""

        def decorator(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorator

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name``; raises :class:`RegistryError` if taken."""
        if name in self._items:
            raise RegistryError(
                f"{self.kind} '{name}' is already registered",
                fix="pick another name or remove the first registration",
            )
        self._items[name] = obj

    def get(self, name: str) -> T:
        """Return the object for ``name`` or raise with the closest known names."""
        try:
            return self._items[name]
        except KeyError:
            raise RegistryError(self._unknown_message(name), where=f"known: {', '.join(self.names())}") from None

    def _unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        message = f"unknown {self.kind} '{name}'"
        if close:
            message += "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
        return message

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
