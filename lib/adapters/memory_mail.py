"""In-memory adapter of the Gmail sync store, sharing documents with ``MemoryStore``.

Unit tests and local file runs use it, so intake, outbox and mail sync see one
set of documents, as they do in Firestore.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from lib.adapters.memory_store import MemoryStore
from lib.services.mail_store import Delete, MailStore, Outcome, TransactionReader
from lib.services.writes import Write

T = TypeVar("T")


class _MemoryReader(TransactionReader):
    def __init__(self, docs: dict[str, dict]):
        self._docs = docs

    def get(self, paths: Iterable[str]) -> dict[str, dict | None]:
        return {path: copy.deepcopy(self._docs.get(path)) for path in dict.fromkeys(paths)}

    def where(self, collection: str, equals: dict[str, Any], limit: int = 50) -> dict[str, dict]:
        prefix = collection.rstrip("/") + "/"
        found = {}
        for path, doc in sorted(self._docs.items()):
            doc_id = path[len(prefix):]
            if not path.startswith(prefix) or "/" in doc_id:
                continue
            if all(doc.get(field) == value for field, value in equals.items()):
                found[doc_id] = copy.deepcopy(doc)
            if len(found) >= limit:
                break
        return found


class MemoryMailStore(MemoryStore, MailStore):
    """``MemoryStore`` that also implements ``MailStore``; one lock serialises all calls."""

    def transact(self, what: str, body: Callable[[TransactionReader], Outcome[T]]) -> T:
        with self._lock:
            outcome = body(_MemoryReader(self._docs))
            writes = [change for change in outcome.writes if isinstance(change, Write)]
            self._apply(writes)
            for change in outcome.writes:
                if isinstance(change, Delete):
                    self._docs.pop(change.path, None)
            return outcome.result

    def read(self, paths: Iterable[str]) -> dict[str, dict | None]:
        with self._lock:
            return {path: copy.deepcopy(self._docs.get(path)) for path in dict.fromkeys(paths)}
