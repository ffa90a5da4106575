"""Gmail push sync: from a notification to logged activities, one mailbox at a time.

A notification only reports "something changed up to historyId N". The service
takes the mailbox's lease, reads ``users.history.list`` from the STORED cursor
over every page, fetches the new messages in batches, logs each message once,
and moves the cursor only after every page and every fetch succeeded. When
Gmail no longer has the history (HTTP 404), a bounded full sync of the last
``mail.full_sync_days`` days runs and the cursor restarts from getProfile.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import logging
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from lib.adapters.gmail_api import HistoryExpiredError, HistoryResult
from lib.config.schema import CrmConfig
from lib.domain import ids
from lib.domain.clock import Clock
from lib.intake.types import Submission
from lib.logs import mask_email
from lib.mail.classify import classify
from lib.mail.gmail_resource import parse_gmail_message
from lib.mail.parse import ParsedMessage
from lib.services import mail_lease
from lib.services.intake import IntakeService
from lib.services.mail_effects import EMAIL_SOURCE_ID, MessageResult, decide, primary_contact
from lib.services.mail_link import (
    MessageFacts,
    activity_id,
    capture_skip_reason,
    load_snapshot,
    message_facts,
    message_link_id,
    thread_link_id,
)
from lib.services.mail_store import MailStore, Outcome, TransactionReader
from lib.services.writes import Write

logger = logging.getLogger(__name__)

MAX_ROUNDS = 5
"""Sync rounds one notification runs while newer notifications keep arriving."""
MAX_LEAD_MESSAGE_CHARS = 5000
METADATA_HEADERS = (
    "From", "To", "Cc", "Bcc", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To", "References",
    "Auto-Submitted", "X-Autoreply", "X-Autorespond", "Precedence", "List-Id", "List-Unsubscribe",
    "Content-Type", "Return-Path", "X-Failed-Recipients",
)
_NEW_MAIL_LABELS = frozenset({"SENT", "INBOX"})
_QUOTE_HEADER = re.compile(r"^(On .+ wrote:|.+於.+寫道[:：]?|-----Original Message-----)\s*$")


class GmailReader(Protocol):
    """The ``GmailClient`` calls that sync uses; tests pass a fake."""

    def list_history(self, user: str, start_history_id: int) -> HistoryResult: ...

    def get_messages(self, user: str, ids: Iterable[str], fmt: str = "metadata",
                     metadata_headers: list[str] | None = None) -> dict[str, dict | None]: ...

    def get_profile(self, user: str) -> dict[str, Any]: ...

    def list_message_ids(self, user: str, query: str, max_results: int) -> list[str]: ...


@dataclasses.dataclass
class HistoryChanges:
    """New message ids, spam marks and counts found in a run of history records.

    Attributes:
        added: New message ids with the labels the records showed, in first-seen order.
        spam: Ids of messages that got the SPAM label.
        drafts: Draft records skipped.
        deleted: messagesDeleted records seen; the CRM deletes nothing.
    """

    added: dict[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    spam: list[str] = dataclasses.field(default_factory=list)
    drafts: int = 0
    deleted: int = 0


@dataclasses.dataclass
class SyncReport:
    """Outcome of one notification or file run: status, cursor, rounds and per-message results."""

    mailbox: str
    status: str
    cursor: int | None = None
    rounds: int = 0
    full_syncs: int = 0
    history_records: int = 0
    results: list[MessageResult] = dataclasses.field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Count results by ``status:kind`` and by ignore reason."""
        counter: collections.Counter[str] = collections.Counter()
        for result in self.results:
            counter[f"{result.status}:{result.kind}"] += 1
            if result.status == "ignored":
                counter[f"ignored:{result.reason}"] += 1
            for effect in result.effects:
                counter[f"effect:{effect}"] += 1
        return dict(sorted(counter.items()))


def collect_changes(records: Iterable[Mapping]) -> HistoryChanges:
    """Turn history records into new message ids, spam marks and counts.

    Drafts are skipped because Gmail mints a new id on every autosave. A
    ``labelsAdded`` of SENT or INBOX counts as new mail, because Gmail
    sometimes reports the user's own sent mail that way.
    """
    changes = HistoryChanges()
    for record in records:
        for added in record.get("messagesAdded", []):
            message = added.get("message") or {}
            labels = frozenset(message.get("labelIds") or ())
            if "DRAFT" in labels:
                changes.drafts += 1
            elif message.get("id"):
                changes.added.setdefault(message["id"], labels)
        for change in record.get("labelsAdded", []):
            message = change.get("message") or {}
            new_labels = set(change.get("labelIds") or ())
            if new_labels & _NEW_MAIL_LABELS and message.get("id"):
                changes.added.setdefault(message["id"], frozenset(message.get("labelIds") or ()))
            if "SPAM" in new_labels and message.get("id"):
                changes.spam.append(message["id"])
        changes.deleted += len(record.get("messagesDeleted", []))
    return changes


def lead_message(body: str) -> str:
    """Return the body without the signature and the quoted earlier messages."""
    kept = []
    for line in body.splitlines():
        if line.rstrip() == "--" or _QUOTE_HEADER.match(line.strip()):
            break
        if not line.startswith(">"):
            kept.append(line)
    return "\n".join(kept).strip()[:MAX_LEAD_MESSAGE_CHARS]


class MailSyncService:
    """Sync connected Gmail mailboxes into contacts, deals and activities.

    Args:
        config: Configuration; ``mail`` names the connected mailboxes.
        store: Documents, read and written in transactions.
        gmail: The Gmail API client, or a replay of it.
        intake: The lead pipeline, for unknown senders who become leads.
        clock: The injected clock.
    """

    def __init__(self, config: CrmConfig, store: MailStore, gmail: GmailReader | None,
                 intake: IntakeService, clock: Clock):
        self._config = config
        self._store = store
        self._gmail = gmail
        self._intake = intake
        self._clock = clock

    @property
    def _lease_length(self) -> dt.timedelta:
        return dt.timedelta(seconds=self._config.mail.lease_seconds)

    def handle_notification(self, address: str, history_id: int) -> SyncReport:
        """Sync ``address`` from its stored cursor after a push notification.

        Returns:
            The report; ``status`` is ``unknown_mailbox``, ``stale`` (nothing
            newer than the cursor), ``busy`` (another sync has the lease
            and will sync again) or ``synced``.

        Raises:
            TransientError: Gmail or Firestore failed in a way a retry can
                fix; the cursor did not move and the lease was released.
            GmailApiError: Gmail rejected a request, e.g. delegation is
                missing; the cursor did not move and the lease was released.
        """
        mailbox = address.strip().lower()
        if mailbox not in self._config.connected_mailboxes():
            logger.warning("gmail notification for an unconnected mailbox ignored",
                           extra={"mailbox": mask_email(mailbox), "history_id": history_id})
            return SyncReport(mailbox, "unknown_mailbox")

        owner = uuid.uuid4().hex
        lease = mail_lease.acquire(self._store, mailbox, history_id, owner, self._clock.now(), self._lease_length)
        report = SyncReport(mailbox, "synced" if lease.status == "acquired" else lease.status, lease.cursor)
        if lease.status != "acquired":
            logger.info("gmail sync skipped", extra={"mailbox": mask_email(mailbox), "status": lease.status,
                                                     "history_id": history_id, "cursor": lease.cursor})
            return report
        try:
            self._run_rounds(mailbox, owner, lease.cursor, report)
        except BaseException:
            mail_lease.release(self._store, mailbox, owner)
            raise
        logger.info("gmail sync finished", extra={"mailbox": mask_email(mailbox), "cursor": report.cursor,
                                                  "rounds": report.rounds, "counts": report.counts()})
        return report

    def _run_rounds(self, mailbox: str, owner: str, cursor: int | None, report: SyncReport) -> None:
        for _ in range(MAX_ROUNDS):
            cursor = self._round(mailbox, cursor, report)
            report.rounds += 1
            report.cursor = cursor
            if not mail_lease.finish_round(self._store, mailbox, owner, cursor, self._clock.now(),
                                           self._lease_length):
                return
        # NOTE: a pending historyId left after the last round stays stored, so
        # the next notification for this mailbox syncs it.
        mail_lease.release(self._store, mailbox, owner)

    def _round(self, mailbox: str, cursor: int | None, report: SyncReport) -> int:
        """Run one history read and process it; return the next cursor."""
        if cursor is None:
            return self._full_sync(mailbox, report, "no stored cursor")
        try:
            history = self._gmail.list_history(mailbox, cursor)
        except HistoryExpiredError:
            return self._full_sync(mailbox, report, "history expired")

        changes = collect_changes(history.records)
        report.history_records += len(history.records)
        report.results += self.process_ids(mailbox, changes.added)
        report.results += [self.mark_spam(mailbox, gmail_id) for gmail_id in dict.fromkeys(changes.spam)]
        return max(history.history_id, cursor)

    def _full_sync(self, mailbox: str, report: SyncReport, reason: str) -> int:
        """Process the last ``full_sync_days`` days, at most ``full_sync_max_messages``; return a fresh cursor.

        The profile's historyId is read first, so mail that arrives during the
        full sync is read again by the next history.list and none is missed.
        """
        settings = self._config.mail
        logger.warning("gmail full sync started", extra={"mailbox": mask_email(mailbox), "reason": reason,
                                                         "days": settings.full_sync_days})
        cursor = int(self._gmail.get_profile(mailbox)["historyId"])
        message_ids = self._gmail.list_message_ids(mailbox, f"newer_than:{settings.full_sync_days}d",
                                                   settings.full_sync_max_messages)
        report.full_syncs += 1
        report.results += self.process_ids(mailbox, {gmail_id: frozenset() for gmail_id in reversed(message_ids)})
        return cursor

    # ------------------------------------------------------------------ messages

    def process_ids(self, mailbox: str, added: Mapping[str, frozenset[str]]) -> list[MessageResult]:
        """Fetch and process new messages; a message Gmail no longer has is skipped.

        Own sent mail is fetched with ``format=metadata``. Everything else is
        fetched with ``format=full``, because bounces need the delivery report
        and an unknown sender's enquiry becomes a lead with its body. Both
        formats cost the same quota units.
        """
        metadata_ids = [gid for gid, labels in added.items() if "SENT" in labels and "INBOX" not in labels]
        full_ids = [gid for gid in added if gid not in set(metadata_ids)]
        resources: dict[str, dict | None] = {}
        if metadata_ids:
            resources |= self._gmail.get_messages(mailbox, metadata_ids, "metadata", list(METADATA_HEADERS))
        if full_ids:
            resources |= self._gmail.get_messages(mailbox, full_ids, "full")

        results = []
        for gmail_id in added:
            resource = resources.get(gmail_id)
            if resource is None:
                results.append(MessageResult("ignored", "unknown", "message no longer in Gmail"))
                continue
            results.append(self.process_resource(mailbox, resource))
        return results

    def process_resource(self, mailbox: str, resource: Mapping) -> MessageResult:
        """Parse, classify and process one ``users.messages.get`` resource."""
        try:
            parsed, labels = parse_gmail_message(resource)
        except ValueError as exc:
            logger.error("gmail message could not be parsed", extra={"gmail_id": resource.get("id"),
                                                                     "error": str(exc)})
            return MessageResult("ignored", "unknown", "unparseable message")
        return self.process_parsed(mailbox, str(resource.get("id")), resource.get("threadId"), parsed, labels)

    def process_parsed(self, mailbox: str, gmail_id: str, thread_id: str | None, parsed: ParsedMessage,
                       labels: frozenset[str], *, as_of: dt.datetime | None = None) -> MessageResult:
        """Classify, link and log one message, creating a lead for an unknown sender when rules allow.

        ``as_of`` is the time that ``mail.capture.max_age_days`` counts back
        from; it defaults to now.
        """
        now = self._clock.now()
        classification = classify(parsed, labels=labels, mailbox=mailbox)
        facts = message_facts(self._config, parsed, classification, mailbox=mailbox, gmail_id=gmail_id,
                              thread_id=thread_id, labels=labels, now=now)
        if facts.kind == "draft":
            return MessageResult("ignored", "draft", "draft")
        capture_skipped = self._maybe_capture(facts, parsed, as_of or now)
        result = self._store.transact(
            f"mail {facts.event_key}",
            lambda reader: decide(self._config, facts, load_snapshot(reader, facts, self._config, primary_contact),
                                  now),
        )
        if capture_skipped:
            result = dataclasses.replace(result, capture_skipped=capture_skipped)
        logger.info("gmail message %s", result.status, extra={
            "gmail_id": gmail_id, "kind": result.kind, "reason": result.reason, "activity_id": result.activity_id,
            "contact_id": result.contact_id, "deal_id": result.deal_id, "reply": result.reply,
            "capture_skipped": capture_skipped})
        return result

    def mark_spam(self, mailbox: str, gmail_id: str) -> MessageResult:
        """Hide the activity of a message that was moved to spam; nothing else changes."""
        path = f"activities/{activity_id(mailbox, gmail_id)}"
        now = self._clock.now()

        def body(reader: TransactionReader) -> Outcome[MessageResult]:
            activity = reader.get([path])[path]
            if activity is None or activity.get("spam"):
                return Outcome(MessageResult("ignored", "spam", "spam label on a message not logged"))
            audit = Write(f"audit/{path.split('/')[1]}-spam", {
                "action": "activity.hidden", "target": path, "rule": "label:SPAM",
                "event_key": f"{mailbox}:{gmail_id}", "before": {"hidden": activity.get("hidden")},
                "after": {"hidden": True}, "actor": "automation:gmail_sync", "at": now})
            update = Write(path, {"spam": True, "hidden": True, "updated_at": now}, "merge")
            return Outcome(MessageResult("logged", "spam", "label SPAM added", path.split("/")[1],
                                         activity.get("contact_id"), activity.get("deal_id"),
                                         effects=("activity_hidden",)), [update, audit])

        return self._store.transact(f"spam mark {mailbox}:{gmail_id}", body)

    # ------------------------------------------------------------------ leads

    def _maybe_capture(self, facts: MessageFacts, parsed: ParsedMessage, as_of: dt.datetime) -> str | None:
        """Run an unknown sender's enquiry through the lead pipeline, unless the thread already has a deal.

        Returns the ``capture_skip_reason`` of a personal inbound message that
        the capture rules reject, else None.
        """
        sender = facts.sender
        if (not self._config.mail.capture.enabled or facts.direction != "inbound" or facts.kind != "personal"
                or sender is None):
            return None
        # A known sender or a linked thread is logged to its contact, so no capture rule applies.
        paths = [f"contact_keys/{ids.key_doc_id('email', party.canonical)}" for party in facts.parties
                 if party.header in ("From", "Reply-To")]
        if facts.thread_id:
            paths.append(f"thread_links/{thread_link_id(facts.mailbox, facts.thread_id)}")
        paths += [f"message_links/{message_link_id(ref)}" for ref in facts.references]
        if any(self._store.read(paths).values()):
            return None
        reason = capture_skip_reason(self._config, facts, parsed, as_of)
        if reason is not None:
            logger.info("gmail sender not captured as lead", extra={
                "gmail_id": facts.gmail_id, "capture_skipped": reason, "email": mask_email(sender.address)})
            return reason

        submission = Submission(
            source_id=EMAIL_SOURCE_ID, event_id=facts.capture_event_id, submitted_at=facts.occurred_at,
            fields={key: value for key, value in {
                "email": sender.address, "name": sender.name, "subject": facts.subject,
                "message": lead_message(parsed.body_text)}.items() if value},
            extra={"mailbox": facts.mailbox, "gmail_id": facts.gmail_id},
        )
        result = self._intake.handle(submission)
        logger.info("gmail sender captured as lead", extra={
            "status": result.status, "lead_id": result.lead_id, "email": mask_email(sender.address)})
