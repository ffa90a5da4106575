"""The store port of Gmail sync: read-then-write transactions over documents.

The sync services decide every change as plain data (``Write`` and ``Delete``)
from what a ``TransactionReader`` returned, so the Firestore adapter and the
in-memory adapter share all the logic.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from lib.services.writes import Write

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Delete:
    """Delete one document; deleting a missing document is not an error."""

    path: str


@dataclasses.dataclass(frozen=True)
class Outcome(Generic[T]):
    """Decision of a transaction body: a result and the changes to commit with it."""

    result: T
    writes: Sequence[Write | Delete] = ()


class TransactionReader(abc.ABC):
    """Reads inside one transaction; every read happens before any write."""

    @abc.abstractmethod
    def get(self, paths: Iterable[str]) -> dict[str, dict | None]:
        """Return each document by path, or None when it does not exist."""

    @abc.abstractmethod
    def where(self, collection: str, equals: dict[str, Any], limit: int = 50) -> dict[str, dict]:
        """Return documents of ``collection`` whose fields equal ``equals``, by document id."""


class MailStore(abc.ABC):
    """Documents that Gmail sync reads and writes atomically."""

    @abc.abstractmethod
    def transact(self, what: str, body: Callable[[TransactionReader], Outcome[T]]) -> T:
        """Run ``body`` in a transaction and commit the changes it returns.

        The store may call ``body`` more than once when the transaction is
        retried; only the last call's changes are committed.

        Raises:
            TransientError: the store stayed unavailable or contended past its retry limit.
        """

    @abc.abstractmethod
    def read(self, paths: Iterable[str]) -> dict[str, dict | None]:
        """Read documents outside a transaction, for decisions a later transaction re-checks."""
