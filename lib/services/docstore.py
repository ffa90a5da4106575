"""Port of the document store that the follow-up, sequence and stale-deal services use.

A service reads documents and returns ``Write`` lists inside ``transact``; the
adapter applies them atomically, so a state change and the outbox intents it
causes commit together. ``reads`` counts documents read, for benchmarks.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from lib.errors import CrmError
from lib.services.writes import Write

T = TypeVar("T")

class DocumentExistsError(CrmError):
    """A ``create`` write named a document that already exists."""


# One query condition: (field path, operator, value). Operators: ==, <, <=, >, >=, in.
Filter = tuple[str, str, Any]


class DocReader(Protocol):
    def get_all(self, paths: Sequence[str]) -> dict[str, dict | None]:
        """Return each document by path, or None for a missing one."""


class DocStore(abc.ABC):
    reads: int = 0

    @abc.abstractmethod
    def transact(self, body: Callable[[DocReader], tuple[T, Sequence[Write]]], what: str) -> T:
        """Run ``body`` in a transaction, apply its writes and return its result.

        ``body`` may run more than once under contention, so it must not have
        side effects other than its returned writes.

        Raises:
            TransientError: the transaction failed after the adapter's retries.
        """

    @abc.abstractmethod
    def query(self, collection: str, filters: Sequence[Filter], order_by: str | None = None,
              limit: int | None = None) -> Iterator[tuple[str, dict]]:
        """Yield ``(document id, fields)`` of the documents in ``collection`` that match every filter."""

    @abc.abstractmethod
    def write_batch(self, writes: Sequence[Write]) -> None:
        """Apply ``writes`` atomically without reads (at most 500 writes).

        Raises:
            DocumentExistsError: a ``create`` write names an existing document.
        """
