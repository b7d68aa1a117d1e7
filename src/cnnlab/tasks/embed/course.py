"""The course's face-recognition functions, on any embedder: ``verify`` (is this the person they claim to
be?) and ``who_is_it`` (also named ``identify``: which person in the database, or nobody?), as in the course's
assignment.

A *database* maps a name to that person's encoding(s): one vector (the course's, "one-shot": one photo per
person is enough) or several rows (every enrolled photo; the distance to a person is the smallest). The
course's rule is the L2 distance with threshold ``0.7``; a cnnlab run stores the threshold it calibrated
on held-out people, and the pretrained dlib embedder uses dlib's ``0.6``: pass it as ``threshold``.

>>> database = {"younes": torch.tensor([1.0, 0.0]), "kian": torch.tensor([0.0, 1.0])}
>>> verify(torch.tensor([0.8, 0.3]), "younes", database)  # distance 0.36 < 0.7: welcome
(0.3606, True)
>>> who_is_it(torch.tensor([0.6, 0.7]), database)  # 0.8062 to younes, 0.6708 to kian
(0.6708, 'kian')
>>> who_is_it(torch.tensor([-1.0, -1.0]), database)
(2.2361, None)
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from cnnlab.core.errors import DataError

COURSE_THRESHOLD = 0.7
"""The course's distance threshold for ``verify`` and ``who_is_it``."""

Database = Mapping[str, torch.Tensor]


def distance_to(encoding: torch.Tensor, enrolled: torch.Tensor) -> float:
    """L2 distance from one encoding ``(D,)`` to a person's encoding ``(D,)`` or encodings ``(M, D)`` (nearest).

    >>> distance_to(torch.zeros(2), torch.tensor([[3.0, 4.0], [0.0, 1.0]]))
    1.0
    """
    rows = enrolled.reshape(-1, encoding.numel()).float()
    return float((rows - encoding.flatten().float()).norm(dim=1).min())


def verify(
    encoding: torch.Tensor, identity: str, database: Database, threshold: float = COURSE_THRESHOLD
) -> tuple[float, bool]:
    """The course's ``verify``: ``(distance to identity's encoding, distance <= threshold)``, the distance rounded
    to 4 places (the course writes ``<``; ``<=`` lets the same photo verify even at threshold 0).

    >>> verify(torch.zeros(2), "nobody", {"kian": torch.zeros(2)})
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.DataError: 'nobody' is not in the database [database]. Fix: enrol them, or pick one of: kian
    """
    if identity not in database:
        raise DataError(
            f"{identity!r} is not in the database",
            where="database",
            fix="enrol them, or pick one of: " + ", ".join(sorted(database)),
        )
    distance = distance_to(encoding, database[identity])
    return round(distance, 4), distance <= threshold


def who_is_it(
    encoding: torch.Tensor, database: Database, threshold: float = COURSE_THRESHOLD
) -> tuple[float, str | None]:
    """The course's ``who_is_it``: ``(smallest distance, that person)``, or ``(distance, None)`` when even the
    nearest is at ``threshold`` or farther ("Not in the database").

    >>> who_is_it(torch.zeros(2), {})
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.DataError: the database is empty [database]. Fix: enrol at least one person
    """
    if not database:
        raise DataError("the database is empty", where="database", fix="enrol at least one person")
    distances = {name: distance_to(encoding, enrolled) for name, enrolled in database.items()}
    name = min(distances, key=distances.__getitem__)
    distance = distances[name]
    return round(distance, 4), (name if distance <= threshold else None)


identify = who_is_it
"""``identify`` is the course's ``who_is_it`` under the name ``cnnlab identify`` uses."""
