"""Firestore adapter of the ``DocStore`` port used by follow-ups, sequences and stale checks.

``reads`` counts the documents that queries returned and that gets found, as
Firestore bills them (a get of a missing document also costs one read, which
this counter includes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from lib.adapters.firestore_store import apply_write, run_with_backoff
from lib.services.docstore import DocReader, DocStore, DocumentExistsError, Filter, T
from lib.services.writes import Write


class _Reader:
    def __init__(self, store: FirestoreDocStore, transaction: firestore.Transaction):
        self._store = store
        self._transaction = transaction

    def get_all(self, paths: Sequence[str]) -> dict[str, dict | None]:
        client = self._store.client
        refs = [client.document(path) for path in dict.fromkeys(paths)]
        found: dict[str, dict | None] = {ref.path: None for ref in refs}
        if not refs:
            return found
        for snapshot in self._transaction.get_all(refs):
            found[snapshot.reference.path] = snapshot.to_dict() if snapshot.exists else None
        self._store.reads += len(refs)
        return found


class FirestoreDocStore(DocStore):
    def __init__(self, client: firestore.Client):
        self.client = client
        self.reads = 0

    def transact(self, body: Callable[[DocReader], tuple[T, Sequence[Write]]], what: str) -> T:
        """Run ``body`` in a Firestore transaction with the project's contention backoff.

        Raises:
            TransientError: Firestore stayed unavailable or contended past the retry limit.
            DocumentExistsError: a ``create`` write named an existing document.
        """
        @firestore.transactional
        def run(transaction: firestore.Transaction) -> T:
            result, writes = body(_Reader(self, transaction))
            for write in writes:
                apply_write(transaction, self.client, write)
            return result

        try:
            return run_with_backoff(self.client, run, what)
        except gexc.AlreadyExists as exc:
            raise DocumentExistsError(f"{what}: {exc.message}") from exc

    def query(self, collection: str, filters: Sequence[Filter], order_by: str | None = None,
              limit: int | None = None) -> Iterator[tuple[str, dict]]:
        query = self.client.collection(collection)
        for field, op, value in filters:
            query = query.where(filter=FieldFilter(field, op, value))
        if order_by:
            query = query.order_by(order_by)
        if limit is not None:
            query = query.limit(limit)
        for snapshot in query.stream():
            self.reads += 1
            yield snapshot.id, snapshot.to_dict()

    def write_batch(self, writes: Sequence[Write]) -> None:
        """Commit ``writes`` in one batch.

        Raises:
            DocumentExistsError: a ``create`` write named an existing document.
        """
        batch = self.client.batch()
        for write in writes:
            apply_write(batch, self.client, write)
        try:
            batch.commit()
        except gexc.AlreadyExists as exc:
            raise DocumentExistsError(f"batch of {len(writes)} writes: {exc.message}") from exc
