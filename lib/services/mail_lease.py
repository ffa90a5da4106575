"""The per-mailbox sync lease and history cursor in ``mailboxes/{address}``.

A notification takes the lease in a transaction before it syncs, so two
notifications never sync one mailbox at once. A notification that finds the
lease taken stores its historyId in ``pending_history_id`` (the maximum seen),
and the holder syncs once more before it lets go, so no change is lost. The
cursor only moves forward.

Document fields: ``history_id`` (int cursor), ``pending_history_id``,
``lease_owner``, ``lease_until``, ``watch_expiration``, ``synced_at``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Literal

from lib.services.mail_store import MailStore, Outcome, TransactionReader
from lib.services.writes import Write

LeaseStatus = Literal["acquired", "busy", "stale"]


def mailbox_path(address: str) -> str:
    """Return the document path of a mailbox's sync state."""
    return f"mailboxes/{address.strip().lower()}"


@dataclasses.dataclass(frozen=True)
class Lease:
    """Result of a lease request.

    Attributes:
        status: ``acquired`` (sync now), ``busy`` (another sync has the
            lease and will pick up this historyId) or ``stale`` (the
            notification's historyId is not newer than the cursor).
        cursor: The stored history cursor, or None when none is stored yet.
    """

    status: LeaseStatus
    cursor: int | None = None


def _as_int(value: object) -> int | None:
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


def _lease_free(doc: dict, owner: str, now: dt.datetime) -> bool:
    holder, until = doc.get("lease_owner"), doc.get("lease_until")
    return not holder or holder == owner or until is None or until <= now


def acquire(store: MailStore, address: str, history_id: int, owner: str, now: dt.datetime,
            lease: dt.timedelta) -> Lease:
    """Take the mailbox's lease for ``owner`` unless there is nothing new or another sync holds it."""
    path = mailbox_path(address)

    def body(reader: TransactionReader) -> Outcome[Lease]:
        doc = reader.get([path])[path] or {}
        cursor = _as_int(doc.get("history_id"))
        pending = _as_int(doc.get("pending_history_id")) or 0
        if cursor is not None and history_id <= cursor and pending <= cursor:
            return Outcome(Lease("stale", cursor))
        if not _lease_free(doc, owner, now):
            newest = max(pending, history_id)
            return Outcome(Lease("busy", cursor), [Write(path, {"pending_history_id": newest}, "merge")])
        taken = {"lease_owner": owner, "lease_until": now + lease, "pending_history_id": None}
        return Outcome(Lease("acquired", cursor), [Write(path, taken, "merge")])

    return store.transact(f"lease of {path}", body)


def finish_round(store: MailStore, address: str, owner: str, new_cursor: int, now: dt.datetime,
                 lease: dt.timedelta) -> bool:
    """Store ``new_cursor`` (never lower than the stored one) after a successful sync round.

    Returns:
        True when a newer historyId arrived during the round: the lease is
        kept and the caller syncs again. False when the lease was released.
    """
    path = mailbox_path(address)

    def body(reader: TransactionReader) -> Outcome[bool]:
        doc = reader.get([path])[path] or {}
        cursor = max(_as_int(doc.get("history_id")) or 0, new_cursor)
        pending = _as_int(doc.get("pending_history_id")) or 0
        update: dict = {"history_id": cursor, "synced_at": now}
        if pending <= cursor:
            # A pending historyId stays until a round reaches it, so a sync that
            # stops early still leaves the signal for the next one.
            update["pending_history_id"] = None
        owned = doc.get("lease_owner") == owner
        again = owned and pending > cursor
        if again:
            update["lease_until"] = now + lease
        elif owned:
            update |= {"lease_owner": None, "lease_until": None}
        # NOTE: a round that outlived its lease leaves the new holder's lease alone.
        return Outcome(again, [Write(path, update, "merge")])

    return store.transact(f"cursor of {path}", body)


def release(store: MailStore, address: str, owner: str) -> None:
    """Let go of the lease after a failed round; the cursor and any pending historyId stay."""
    path = mailbox_path(address)

    def body(reader: TransactionReader) -> Outcome[None]:
        doc = reader.get([path])[path] or {}
        if doc.get("lease_owner") != owner:
            return Outcome(None)
        return Outcome(None, [Write(path, {"lease_owner": None, "lease_until": None}, "merge")])

    store.transact(f"release of {path}", body)
