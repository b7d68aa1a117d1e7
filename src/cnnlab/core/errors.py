"""Error types whose messages say what was wrong, where, and what to do.

Every error cnnlab raises on purpose derives from :class:`CnnlabError`; the CLI prints
them as one line (no traceback unless ``--debug``).

>>> err = DataError("image is truncated", where="cats/01.jpg", fix="re-export the file or delete it")
>>> str(err)
'image is truncated [cats/01.jpg]. Fix: re-export the file or delete it'
"""

from __future__ import annotations


class CnnlabError(Exception):
    """Base error: ``what`` went wrong, ``where`` (file, argument, layer), and a ``fix``."""

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self._format())

    def _format(self) -> str:
        text = self.what
        if self.where:
            text += f" [{self.where}]"
        if self.fix:
            text += f". Fix: {self.fix}"
        return text


class ConfigError(CnnlabError, ValueError):
    """A setting is missing, unknown or out of range."""


class RegistryError(CnnlabError, KeyError):
    """A name is unknown to a registry, or registered twice."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self._format()


class ShapeError(CnnlabError, ValueError):
    """A layer cannot be built for the shape it receives."""


class DataError(CnnlabError, ValueError):
    """A dataset, file or sample cannot be read or is inconsistent."""


class WeightsError(CnnlabError, ValueError):
    """A weights file is missing, corrupt, unsafe or does not fit the model."""


class RunDirError(CnnlabError, OSError):
    """A run folder or checkpoint cannot be created, written or read."""

    def __str__(self) -> str:  # OSError would otherwise format (errno, strerror)
        return self._format()


class TrainingError(CnnlabError, RuntimeError):
    """Training cannot go on (for example the loss became NaN)."""


def with_article(word: str) -> str:
    """``word`` after "a" or "an", for messages that name a task or a type.

    >>> with_article("embed"), with_article("detect")
    ('an embed', 'a detect')
    """
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"
