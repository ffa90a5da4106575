"""In-memory ``DocStore`` over ``MemoryStore``, for unit tests.

It shares the ``MemoryStore`` documents and lock, so intake, the dispatcher and
the follow-up services of one test see the same data.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from lib.adapters.memory_store import ConflictError, MemoryStore
from lib.services.docstore import DocReader, DocStore, DocumentExistsError, Filter, T
from lib.services.writes import Write

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "in": lambda value, options: value in options,
}


def _field(doc: dict, path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _matches(doc: dict, condition: Filter) -> bool:
    field, op, expected = condition
    value = _field(doc, field)
    # Like Firestore, a range filter skips documents whose field is missing or of another type.
    if value is None or (op != "in" and op != "==" and type(value) is not type(expected)):
        return False
    try:
        return _OPERATORS[op](value, expected)
    except TypeError:
        return False


class _Reader:
    def __init__(self, store: MemoryDocStore):
        self._store = store

    def get_all(self, paths: Sequence[str]) -> dict[str, dict | None]:
        found = {path: copy.deepcopy(self._store.memory._docs.get(path)) for path in dict.fromkeys(paths)}
        # Firestore bills a get of a missing document as one read, so every path counts.
        self._store.reads += len(found)
        return found


class MemoryDocStore(DocStore):
    """``DocStore`` whose transactions hold the ``MemoryStore`` lock from read to apply."""

    def __init__(self, memory: MemoryStore | None = None):
        self.memory = memory or MemoryStore()
        self.reads = 0

    def transact(self, body: Callable[[DocReader], tuple[T, Sequence[Write]]], what: str) -> T:
        # NOTE: uses MemoryStore internals because both adapters must share one lock.
        with self.memory._lock:
            result, writes = body(_Reader(self))
            try:
                self.memory._apply(writes)
            except ConflictError as exc:
                raise DocumentExistsError(f"{what}: {exc}") from exc
        return result

    def query(self, collection: str, filters: Sequence[Filter], order_by: str | None = None,
              limit: int | None = None) -> Iterator[tuple[str, dict]]:
        rows = [(doc_id, doc) for doc_id, doc in self.memory.docs(collection).items()
                if all(_matches(doc, condition) for condition in filters)]
        if order_by:
            rows.sort(key=lambda row: _field(row[1], order_by))
        rows = rows[:limit] if limit is not None else rows
        self.reads += len(rows)
        yield from rows

    def write_batch(self, writes: Sequence[Write]) -> None:
        with self.memory._lock:
            try:
                self.memory._apply(writes)
            except ConflictError as exc:
                raise DocumentExistsError(str(exc)) from exc
