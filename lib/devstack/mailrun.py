"""``make run MAIL=<mbox or folder>``: process mail files through the Gmail sync pipeline.

The file adapter replaces the Gmail API: each message of an mbox or
.eml file goes through the same parse, classify, link, effects and lead
capture steps as a pushed Gmail message, against the local Firestore emulator.
Takeout's ``X-GM-THRID`` and ``X-Gmail-Labels`` headers give the thread and
labels; without them, a message from the mailbox counts as SENT, any other as INBOX.

``mail.capture.max_age_days`` counts back from the newest Date in the files,
not from now, because a file is a snapshot taken when it was exported.
NOTE: a Takeout exported long ago and run today therefore still captures its
last ``max_age_days`` of enquiries, as if they had just arrived.
"""

from __future__ import annotations

import collections
from pathlib import Path

from lib.adapters.mail_files import iter_mail_files, takeout_labels
from lib.config.schema import CrmConfig
from lib.domain import ids
from lib.mail.parse import parse_bytes
from lib.services.mail_effects import MessageResult
from lib.services.mail_sync import MailSyncService


def local_mailbox(config: CrmConfig) -> str:
    """Return the first connected mailbox, else the first rep's address."""
    connected = config.connected_mailboxes()
    if connected:
        return connected[0]
    reps = [member for member in config.members if member.role == "rep"]
    return (reps or list(config.members))[0].email.lower()


def process_files(service: MailSyncService, config: CrmConfig, paths: list[Path]) -> list[tuple[str, MessageResult]]:
    """Process every message under ``paths`` in sorted order; return ``(file label, result)`` pairs."""
    mailbox = local_mailbox(config)
    messages = [(label, raw, parse_bytes(raw)) for label, raw in iter_mail_files(paths)]
    dates = [parsed.date for _label, _raw, parsed in messages if parsed.date is not None]
    as_of = max(dates) if dates else None
    results = []
    for label, raw, parsed in messages:
        thread_id, labels = takeout_labels(raw)
        if not labels:
            own = parsed.from_address is not None and parsed.from_address.address == mailbox
            labels = frozenset({"SENT"} if own else {"INBOX"})
        gmail_id = "file-" + ids.digest(label, length=16)
        results.append((label, service.process_parsed(mailbox, gmail_id, thread_id, parsed, labels, as_of=as_of)))
    return results


def print_report(results: list[tuple[str, MessageResult]], mailbox: str) -> None:
    """Print one line per message, then counts by status and kind, by ignore reason and by capture skip reason."""
    print(f"\nMail processed as mailbox {mailbox}:")
    for label, result in results:
        detail = ", ".join(result.effects) or result.reason
        if result.capture_skipped:
            detail += f"; capture_skipped: {result.capture_skipped}"
        reply = " reply" if result.reply else ""
        print(f"  {result.status:<9} {result.kind:<11}{reply:<6} {Path(label).name:<36} {detail}")
    by_kind = collections.Counter(f"{result.status}:{result.kind}" for _label, result in results)
    ignored = collections.Counter(result.reason for _label, result in results if result.status == "ignored")
    print("\nBy status and kind: " + ", ".join(f"{key}={count}" for key, count in sorted(by_kind.items())))
    if ignored:
        print("Ignored by reason: " + ", ".join(f"{key}={count}" for key, count in sorted(ignored.items())))
    skipped = collections.Counter(result.capture_skipped for _label, result in results if result.capture_skipped)
    if skipped:
        print("Capture skipped by reason: " + ", ".join(f"{key}={count}" for key, count in sorted(skipped.items())))
    leads = sum("lead_captured" in result.effects for _label, result in results)
    print(f"Leads created from mail: {leads}")
