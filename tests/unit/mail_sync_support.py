"""Shared builders of the Gmail sync unit tests: configuration, store, service and a fake Gmail."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterable

from lib.adapters.gmail_api import HistoryExpiredError, HistoryResult
from lib.adapters.memory_mail import MemoryMailStore
from lib.config.loader import load_config
from lib.config.schema import CrmConfig
from lib.domain.clock import FixedClock
from lib.errors import TransientError
from lib.services.intake import IntakeService
from lib.services.mail_sync import MailSyncService

MAILBOX = "sales@example.com"
NOW = dt.datetime(2025, 5, 30, 3, 0, tzinfo=dt.timezone.utc)


def mail_config(**mail_changes) -> CrmConfig:
    """Return the sample configuration with ``sales@example.com`` connected."""
    config = load_config()
    mail = config.mail.model_copy(update={"mailboxes": (MAILBOX,), **mail_changes})
    return config.model_copy(update={"mail": mail})


def make_service(gmail, config: CrmConfig | None = None, store: MemoryMailStore | None = None):
    """Build the sync service on an in-memory store; return ``(service, store, clock)``."""
    config = config or mail_config()
    store = store or MemoryMailStore()
    clock = FixedClock(NOW)
    return MailSyncService(config, store, gmail, IntakeService(config, store, clock), clock), store, clock


def seed_prospect(store: MemoryMailStore, contact_id: str, address: str, *, deal_id: str | None = None,
                  stage_id: str = "new") -> None:
    """Store a contact with an open deal, a scheduled no-reply follow-up and an active enrolment."""
    store.put(f"contact_keys/email:{address}", {"contact_id": contact_id})
    store.put(f"contacts/{contact_id}", {"emails": [address], "primary_email": address, "email_status": "valid",
                                         "open_deal_id": deal_id, "company_id": "co-example-com",
                                         "score": {"fit": 10.0, "engagement": 0.0, "total": 10.0}})
    store.put("companies/co-example-com", {"name": "Example"})
    if deal_id:
        store.put(f"deals/{deal_id}", {"stage_id": stage_id, "status": "open", "threads": [],
                                       "contact_id": contact_id})
    store.put(f"followups/fu-{contact_id}", {"kind": "no_reply", "contact_id": contact_id,
                                             "status": "scheduled", "version": 1})
    store.put(f"enrolments/en-{contact_id}", {"contact_id": contact_id, "status": "active"})


def raw_resource(gmail_id: str, headers: dict[str, str], body: str = "Hello", labels: Iterable[str] = ("INBOX",),
                 thread_id: str | None = None) -> dict:
    """Build a ``format=raw`` message resource from headers and a text body."""
    lines = [f"{name}: {value}" for name, value in headers.items()]
    lines.append("Content-Type: text/plain; charset=utf-8")
    raw = ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode("utf-8")
    return {"id": gmail_id, "threadId": thread_id or gmail_id, "labelIds": list(labels),
            "raw": base64.urlsafe_b64encode(raw).decode("ascii")}


def added(gmail_id: str, labels: Iterable[str] = ("INBOX",)) -> dict:
    """Build a history record with one messagesAdded entry."""
    return {"id": "1", "messagesAdded": [{"message": {"id": gmail_id, "threadId": gmail_id,
                                                      "labelIds": list(labels)}}]}


class FakeGmail:
    """In-memory ``GmailReader``: history per start id, messages by id, and call counts.

    Attributes:
        history: Start historyId to ``(records, new historyId)`` or an exception to raise.
        messages: Message resources by id; a missing id reads as deleted.
        calls: Method names in call order.
    """

    def __init__(self, profile_history_id: int = 9000):
        self.history: dict[int, tuple[list[dict], int] | Exception] = {}
        self.messages: dict[str, dict] = {}
        self.listed_ids: list[str] = []
        self.profile_history_id = profile_history_id
        self.calls: list[str] = []
        self.on_list_history = None

    def list_history(self, user: str, start_history_id: int) -> HistoryResult:
        self.calls.append(f"history:{start_history_id}")
        if self.on_list_history:
            self.on_list_history()
        answer = self.history.get(start_history_id, ([], start_history_id))
        if isinstance(answer, Exception):
            raise answer
        records, history_id = answer
        return HistoryResult(records, history_id, 1)

    def get_messages(self, user, ids, fmt="metadata", metadata_headers=None):
        ids = list(dict.fromkeys(ids))
        self.calls.append(f"get:{fmt}:{len(ids)}")
        return {gmail_id: self.messages.get(gmail_id) for gmail_id in ids}

    def get_profile(self, user: str) -> dict:
        self.calls.append("profile")
        return {"emailAddress": user, "historyId": str(self.profile_history_id)}

    def list_message_ids(self, user: str, query: str, max_results: int) -> list[str]:
        self.calls.append(f"list:{query}:{max_results}")
        return self.listed_ids[:max_results]


def expired(start: int) -> HistoryExpiredError:
    return HistoryExpiredError(start)


def unavailable() -> TransientError:
    return TransientError("Gmail returned HTTP 503")
