"""Firestore adapter of the Gmail sync store: one transaction per decision."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from lib.adapters.firestore_store import apply_write, run_with_backoff
from lib.services.mail_store import Delete, MailStore, Outcome, TransactionReader

T = TypeVar("T")


class _FirestoreReader(TransactionReader):
    def __init__(self, client: firestore.Client, transaction: firestore.Transaction):
        self._client = client
        self._transaction = transaction

    def get(self, paths: Iterable[str]) -> dict[str, dict | None]:
        refs = [self._client.document(path) for path in dict.fromkeys(paths)]
        found: dict[str, dict | None] = {ref.path: None for ref in refs}
        if refs:
            for snapshot in self._transaction.get_all(refs):
                found[snapshot.reference.path] = snapshot.to_dict() if snapshot.exists else None
        return found

    def where(self, collection: str, equals: dict[str, Any], limit: int = 50) -> dict[str, dict]:
        query = self._client.collection(collection)
        for field, value in equals.items():
            query = query.where(filter=FieldFilter(field, "==", value))
        return {snapshot.id: snapshot.to_dict() for snapshot in self._transaction.get(query.limit(limit))}


class FirestoreMailStore(MailStore):
    """``MailStore`` on Firestore; contention is retried by ``run_with_backoff``."""

    def __init__(self, client: firestore.Client):
        self._client = client

    def transact(self, what: str, body: Callable[[TransactionReader], Outcome[T]]) -> T:
        @firestore.transactional
        def run(transaction: firestore.Transaction) -> T:
            outcome = body(_FirestoreReader(self._client, transaction))
            for change in outcome.writes:
                if isinstance(change, Delete):
                    transaction.delete(self._client.document(change.path))
                else:
                    apply_write(transaction, self._client, change)
            return outcome.result

        return run_with_backoff(self._client, run, what)

    def read(self, paths: Iterable[str]) -> dict[str, dict | None]:
        refs = [self._client.document(path) for path in dict.fromkeys(paths)]
        found: dict[str, dict | None] = {ref.path: None for ref in refs}
        for snapshot in self._client.get_all(refs):
            found[snapshot.reference.path] = snapshot.to_dict() if snapshot.exists else None
        return found
