"""Store-neutral descriptions of document writes, applied by a store adapter.

Services decide what to write as plain data; the Firestore adapter applies the
list inside one transaction and the in-memory store applies it to dicts.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal


@dataclasses.dataclass(frozen=True)
class Increment:
    """A numeric field change applied atomically by the store."""

    amount: int | float = 1


@dataclasses.dataclass(frozen=True)
class Write:
    """One document write.

    Attributes:
        path: Document path, e.g. ``"contacts/ct-123"``.
        data: Fields to write; values may be ``Increment``.
        mode: ``create`` fails if the document exists, ``set`` replaces it,
            ``merge`` updates the given fields and creates the document if needed.
    """

    path: str
    data: dict[str, Any]
    mode: Literal["create", "set", "merge", "replace_fields"] = "set"
