"""In-memory adapters of the intake store, the outbox store and the mail sender, for unit tests.

``MemoryStore`` keeps documents as a dict of path to field dict and applies
``Write`` lists with the semantics that ``FirestoreIntakeStore`` gets from
Firestore: ``create`` fails if the document exists, ``merge`` merges nested
maps, ``set`` replaces the document and ``Increment`` adds to a number. One
lock serialises every call, so concurrent callers see the same isolation as
Firestore transactions that never need a retry.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
from collections.abc import Callable, Iterable
from typing import Any

from lib.errors import CrmError, PermanentDeliveryError, TransientError
from lib.ports import MailSender, OutboundEmail
from lib.services.dispatch import OutboxStore
from lib.services.intake import IntakeStore, load_snapshot
from lib.services.intake_decide import IntakeDecision, IntakeResult, IntakeSnapshot
from lib.services.intake_prepare import PreparedLead
from lib.services.writes import Increment, Write

OUTBOX = "outbox"


class MemoryStoreError(CrmError):
    """Base class of the errors that ``MemoryStore`` raises where Firestore would."""


class ConflictError(MemoryStoreError):
    """A ``create`` write named a document that already exists (Firestore: ALREADY_EXISTS)."""


class DocumentNotFoundError(MemoryStoreError):
    """An update named a document that does not exist (Firestore: NOT_FOUND)."""


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _stored(value: Any) -> Any:
    """Copy a value as Firestore stores it: tuples become lists, maps and lists are copied."""
    if isinstance(value, dict):
        return {key: _stored(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_stored(item) for item in value]
    return copy.deepcopy(value)


def _merge_into(target: dict[str, Any], data: dict[str, Any]) -> None:
    """Merge ``data`` into ``target`` as Firestore's ``set(merge=True)`` does.

    A non-empty map merges field by field, while an empty map, a list or a
    scalar replaces the stored value. An ``Increment`` adds to a stored number
    and otherwise sets the field to its amount.
    """
    for key, value in data.items():
        if isinstance(value, Increment):
            current = target.get(key)
            target[key] = current + value.amount if _is_number(current) else value.amount
        elif isinstance(value, dict) and value:
            child = target.get(key)
            if not isinstance(child, dict):
                child = {}
                target[key] = child
            _merge_into(child, value)
        else:
            target[key] = _stored(value)


def _set_field_path(document: dict[str, Any], field_path: str, value: Any) -> None:
    """Set a dotted field path as Firestore's ``update`` does, creating parent maps."""
    *parents, leaf = field_path.split(".")
    node = document
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    if isinstance(value, Increment):
        current = node.get(leaf)
        node[leaf] = current + value.amount if _is_number(current) else value.amount
    else:
        node[leaf] = _stored(value)


def _before_or_at(moment: object, now: dt.datetime) -> bool:
    # A Firestore range filter on a timestamp skips documents whose field is missing or not a timestamp.
    return isinstance(moment, dt.datetime) and moment <= now


class MemoryStore(IntakeStore, OutboxStore):
    """An in-memory document store behind one lock, implementing ``IntakeStore`` and ``OutboxStore``."""

    def __init__(self) -> None:
        self._docs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ test helpers

    def get(self, path: str) -> dict[str, Any] | None:
        """Return a copy of the document at ``path``, or None when it does not exist."""
        with self._lock:
            doc = self._docs.get(path)
            return copy.deepcopy(doc) if doc is not None else None

    def put(self, path: str, data: dict[str, Any]) -> None:
        """Replace the document at ``path`` with ``data``, to seed a test."""
        with self._lock:
            self._apply([Write(path, data, "set")])

    def docs(self, collection: str) -> dict[str, dict[str, Any]]:
        """Return copies of the documents directly in ``collection``, by document id.

        ``collection`` is a collection path such as ``"leads"`` or
        ``"deals/dl-1/stage_history"``. Documents of subcollections are not included.
        """
        prefix = collection.rstrip("/") + "/"
        with self._lock:
            return {
                path[len(prefix):]: copy.deepcopy(doc)
                for path, doc in sorted(self._docs.items())
                if path.startswith(prefix) and "/" not in path[len(prefix):]
            }

    def paths(self) -> list[str]:
        """Return the paths of every stored document, sorted."""
        with self._lock:
            return sorted(self._docs)

    # ------------------------------------------------------------ writes

    def _apply(self, writes: Iterable[Write]) -> None:
        """Apply ``writes`` in order, all or none. The caller must hold the lock.

        Raises:
            ConflictError: a ``create`` write names a document that exists,
                either before the call or from an earlier write in ``writes``.
        """
        staged: dict[str, dict[str, Any]] = {}
        for write in writes:
            current = staged[write.path] if write.path in staged else self._docs.get(write.path)
            if write.mode == "create" and current is not None:
                raise ConflictError(f"document already exists: {write.path}")
            keep = write.mode in ("merge", "replace_fields") and current is not None
            document = copy.deepcopy(current) if keep else {}
            if write.mode == "replace_fields":
                for key in write.data:
                    document.pop(key, None)
            _merge_into(document, write.data)
            staged[write.path] = document
        self._docs.update(staged)

    # ------------------------------------------------------------ IntakeStore

    def _read(self, paths: Iterable[str]) -> dict[str, dict | None]:
        return {path: copy.deepcopy(self._docs.get(path)) for path in dict.fromkeys(paths)}

    def commit_intake(self, prepared: PreparedLead,
                      decide_writes: Callable[[IntakeSnapshot], IntakeDecision]) -> IntakeResult:
        """Read, decide and apply the writes under the lock, as ``IntakeStore.commit_intake`` describes.

        Raises:
            ConflictError: a ``create`` write names an existing document. No write is applied then.
        """
        with self._lock:
            decision = decide_writes(load_snapshot(self._read, prepared))
            self._apply(decision.writes)
            return decision.result

    # ------------------------------------------------------------ OutboxStore

    def _outbox_records(self) -> list[tuple[str, dict[str, Any]]]:
        prefix = OUTBOX + "/"
        return [(path[len(prefix):], doc) for path, doc in self._docs.items()
                if path.startswith(prefix) and "/" not in path[len(prefix):]]

    def due(self, now: dt.datetime, limit: int) -> list[str]:
        """Return pending records due by ``now``, oldest first, then claims whose lease expired."""
        with self._lock:
            records = self._outbox_records()
        pending = sorted((doc["not_before"], outbox_id) for outbox_id, doc in records
                         if doc.get("status") == "pending" and _before_or_at(doc.get("not_before"), now))
        expired = sorted((doc["lease_until"], outbox_id) for outbox_id, doc in records
                         if doc.get("status") == "sending" and _before_or_at(doc.get("lease_until"), now))
        ids = [outbox_id for _, outbox_id in pending[:limit]] + [outbox_id for _, outbox_id in expired[:limit]]
        return list(dict.fromkeys(ids))[:limit]

    def claim(self, outbox_id: str, now: dt.datetime, lease_until: dt.datetime) -> dict | None:
        """Mark a due record ``sending`` until ``lease_until``, as ``OutboxStore.claim`` describes.

        Returns:
            The record as read, with ``attempts`` already counting this attempt,
            or None when the record is missing, not due yet, finished or leased.
        """
        path = f"{OUTBOX}/{outbox_id}"
        with self._lock:
            record = copy.deepcopy(self._docs.get(path))
            if record is None:
                return None
            pending_due = record.get("status") == "pending" and _before_or_at(record.get("not_before"), now)
            lease_expired = record.get("status") == "sending" and _before_or_at(record.get("lease_until"), now)
            if not (pending_due or lease_expired):
                return None
            self._apply([Write(path, {"status": "sending", "lease_until": lease_until,
                                      "attempts": Increment(1), "claimed_at": now}, "merge")])
        record["attempts"] = int(record.get("attempts", 0)) + 1
        return record

    def finish(self, outbox_id: str, fields: dict[str, Any]) -> None:
        """Update fields of a record as Firestore's ``update`` does: keys are dotted field paths.

        Raises:
            DocumentNotFoundError: the record does not exist.
        """
        path = f"{OUTBOX}/{outbox_id}"
        with self._lock:
            current = self._docs.get(path)
            if current is None:
                raise DocumentNotFoundError(f"cannot update {path}: no such document")
            updated = copy.deepcopy(current)
            for field_path, value in fields.items():
                _set_field_path(updated, field_path, value)
            self._docs[path] = updated


class RecordingMailSender(MailSender):
    """``MailSender`` that keeps each sent email by outbox id instead of sending it.

    Sending an outbox id that was already sent returns the same provider id and
    stores nothing new, as the Gmail adapter finds an earlier send by Message-ID.
    ``fail_next`` makes the next calls raise, to test retries.
    """

    def __init__(self) -> None:
        self.sent: dict[str, OutboundEmail] = {}
        self.calls: list[str] = []
        self._failures: list[type[CrmError]] = []
        self._lock = threading.Lock()

    def fail_next(self, times: int = 1, *, permanent: bool = False) -> None:
        """Make the next ``times`` calls of ``send`` raise before anything is stored.

        Args:
            times: Number of calls that fail.
            permanent: Raise ``PermanentDeliveryError`` instead of ``TransientError``.
        """
        error = PermanentDeliveryError if permanent else TransientError
        with self._lock:
            self._failures.extend([error] * times)

    def send(self, email: OutboundEmail) -> str:
        """Store ``email`` under its outbox id once and return ``recorded:<outbox_id>``.

        Raises:
            TransientError: a transient failure was requested with ``fail_next``.
            PermanentDeliveryError: a permanent failure was requested with ``fail_next``.
        """
        with self._lock:
            self.calls.append(email.outbox_id)
            if self._failures:
                error = self._failures.pop(0)
                raise error(f"recorded mail sender: requested failure for outbox record {email.outbox_id!r}")
            self.sent.setdefault(email.outbox_id, email)
        return f"recorded:{email.outbox_id}"
