"""Firestore adapter of the intake store: one transaction per submission.

A new lead costs three round trips: BeginTransaction, one BatchGetDocuments for
every document the decision needs, and Commit. Only a contact found through a
second identity key, or one with an open deal, costs one more read.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from lib.errors import TransientError
from lib.services.dispatch import OutboxStore
from lib.services.intake import IntakeStore, load_snapshot
from lib.services.intake_decide import IntakeDecision, IntakeResult, IntakeSnapshot
from lib.services.intake_prepare import PreparedLead
from lib.services.writes import Increment, Write

logger = logging.getLogger(__name__)

# Ten identical deliveries at once all contend for one event document. After a
# contended attempt each loser first reads the event outside a transaction, so a
# burst settles in a few attempts. The limit leaves room for slow emulators.
MAX_TRANSACTION_ATTEMPTS = 12
_RETRYABLE = (gexc.Aborted, gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError)


def make_client(project: str | None = None) -> firestore.Client:
    """Build a Firestore client; it talks to the emulator when FIRESTORE_EMULATOR_HOST is set."""
    return firestore.Client(project=project or os.environ.get("GOOGLE_CLOUD_PROJECT") or "crm-local")


def to_firestore(data: dict[str, Any]) -> dict[str, Any]:
    """Replace store-neutral values such as ``Increment`` with Firestore's own."""
    converted = {}
    for key, value in data.items():
        if isinstance(value, Increment):
            converted[key] = firestore.Increment(value.amount)
        elif isinstance(value, dict):
            converted[key] = to_firestore(value)
        else:
            converted[key] = value
    return converted


def apply_write(transaction: firestore.Transaction | firestore.WriteBatch, client: firestore.Client,
                write: Write) -> None:
    """Stage one ``Write`` on a transaction or batch."""
    ref = client.document(write.path)
    data = to_firestore(write.data)
    if write.mode == "create":
        transaction.create(ref, data)
    elif write.mode == "merge":
        transaction.set(ref, data, merge=True)
    elif write.mode == "replace_fields":
        transaction.set(ref, data, merge=list(data))
    else:
        transaction.set(ref, data)


def run_with_backoff(client: firestore.Client, body: Callable[[firestore.Transaction], Any], what: str,
                     settled: Callable[[], Any] | None = None) -> Any:
    """Run a ``@transactional`` function, retrying contention with jittered backoff.

    The client's own retry starts the next attempt at once; when ten deliveries of
    one event contend, immediate retries keep colliding. Each attempt here gets a
    fresh transaction after a random pause that grows with the attempt number.

    Args:
        client: Firestore client.
        body: The ``@transactional`` function.
        what: What the transaction is about, for messages.
        settled: Called after each contended attempt; a result other than None
            ends the retries with that result.

    Raises:
        TransientError: the transaction still failed after the last attempt.
    """
    for attempt in range(1, MAX_TRANSACTION_ATTEMPTS + 1):
        if attempt > 1 and settled is not None:
            result = settled()
            if result is not None:
                return result
        try:
            return body(client.transaction(max_attempts=1))
        except _RETRYABLE as exc:
            error = exc
        except ValueError as exc:
            # The client reports a commit that ran out of attempts as ValueError.
            if "attempts" not in str(exc):
                raise
            error = exc
        pause = min(0.02 * (2 ** min(attempt, 6)), 1.0) * random.uniform(0.5, 1.5)
        logger.debug("transaction contended, retrying", extra={"what": what, "attempt": attempt, "error": str(error)})
        time.sleep(pause)
    raise TransientError(f"Firestore transaction for {what} failed after {MAX_TRANSACTION_ATTEMPTS} attempts: {error}")


class FirestoreIntakeStore(IntakeStore):
    def __init__(self, client: firestore.Client):
        self._client = client

    def _read(self, transaction: firestore.Transaction, paths: Iterable[str]) -> dict[str, dict | None]:
        refs = [self._client.document(path) for path in dict.fromkeys(paths)]
        found = {path: None for path in (ref.path for ref in refs)}
        for snapshot in transaction.get_all(refs):
            found[snapshot.reference.path] = snapshot.to_dict() if snapshot.exists else None
        return found

    def commit_intake(self, prepared: PreparedLead,
                      decide_writes: Callable[[IntakeSnapshot], IntakeDecision]) -> IntakeResult:
        """Run the intake transaction; see ``IntakeStore.commit_intake``.

        Raises:
            TransientError: Firestore stayed unavailable or contended past the retry limit.
        """
        @firestore.transactional
        def run(transaction: firestore.Transaction) -> IntakeResult:
            decision = decide_writes(load_snapshot(lambda paths: self._read(transaction, paths), prepared))
            for write in decision.writes:
                apply_write(transaction, self._client, write)
            return decision.result

        def settled() -> IntakeResult | None:
            # After a contended attempt, a plain read often shows that a concurrent
            # delivery of the same event has committed. The result is then a
            # duplicate, with no further transaction.
            events = self._events_outside_transaction(prepared)
            if not any(events.values()):
                return None
            empty = IntakeSnapshot(events=events, keys={}, contact_id=None, contact=None, loads={}, company=None)
            decision = decide_writes(empty)
            return decision.result if not decision.writes else None

        return run_with_backoff(self._client, run, f"event {prepared.event_key!r}", settled)

    def _events_outside_transaction(self, prepared: PreparedLead) -> dict[str, dict | None]:
        refs = [self._client.document(f"events/{doc_id}") for doc_id in prepared.event_doc_ids]
        found = {doc_id: None for doc_id in prepared.event_doc_ids}
        for snapshot in self._client.get_all(refs):
            if snapshot.exists:
                found[snapshot.id] = snapshot.to_dict()
        return found


class FirestoreOutboxStore(OutboxStore):
    """Outbox records in the ``outbox`` collection, claimed by transaction."""

    def __init__(self, client: firestore.Client):
        self._client = client
        self._outbox = client.collection("outbox")

    def due(self, now: dt.datetime, limit: int) -> list[str]:
        pending = (self._outbox.where(filter=FieldFilter("status", "==", "pending"))
                   .where(filter=FieldFilter("not_before", "<=", now)).order_by("not_before").limit(limit))
        expired = (self._outbox.where(filter=FieldFilter("status", "==", "sending"))
                   .where(filter=FieldFilter("lease_until", "<=", now)).limit(limit))
        ids = [doc.id for doc in pending.stream()] + [doc.id for doc in expired.stream()]
        return list(dict.fromkeys(ids))[:limit]

    def claim(self, outbox_id: str, now: dt.datetime, lease_until: dt.datetime) -> dict | None:
        ref = self._outbox.document(outbox_id)

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> dict | None:
            snapshot = next(iter(transaction.get_all([ref])))
            record = snapshot.to_dict() if snapshot.exists else None
            if record is None:
                return None
            pending_due = record.get("status") == "pending" and record.get("not_before") <= now
            lease = record.get("lease_until")
            lease_expired = record.get("status") == "sending" and lease is not None and lease <= now
            if not (pending_due or lease_expired):
                return None
            transaction.update(ref, {"status": "sending", "lease_until": lease_until,
                                     "attempts": firestore.Increment(1), "claimed_at": now})
            record["attempts"] = int(record.get("attempts", 0)) + 1
            return record

        return run_with_backoff(self._client, run, f"claim of outbox {outbox_id!r}")

    def finish(self, outbox_id: str, fields: dict[str, Any]) -> None:
        self._outbox.document(outbox_id).update(fields)
