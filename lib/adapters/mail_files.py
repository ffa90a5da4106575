"""File-based mail for local runs: an .eml outbox and a reader for .eml and mbox files.

The reader accepts single .eml files, folders of them and Google Takeout
mbox exports, whose ``X-GM-THRID`` and ``X-Gmail-Labels`` headers carry the
Gmail thread and labels.
"""

from __future__ import annotations

import csv
import email.parser
import email.policy
import logging
import mailbox
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from lib.adapters.email_build import build_mime
from lib.errors import InvalidInputError, PermanentDeliveryError
from lib.ports import MailSender, OutboundEmail

logger = logging.getLogger(__name__)

MBOX_MARKER = b"From "
"""First bytes of an mbox file: its ``From `` separator line, which no RFC 5322 header starts with."""

_SAFE_FILE_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")

# Takeout writes system labels by display name. User labels keep their name
# because their Gmail ids (Label_123) are not in the export.
TAKEOUT_SYSTEM_LABELS = {
    "inbox": "INBOX",
    "sent": "SENT",
    "spam": "SPAM",
    "trash": "TRASH",
    "drafts": "DRAFT",
    "draft": "DRAFT",
    "important": "IMPORTANT",
    "starred": "STARRED",
    "unread": "UNREAD",
    "chat": "CHAT",
    "category personal": "CATEGORY_PERSONAL",
    "category social": "CATEGORY_SOCIAL",
    "category promotions": "CATEGORY_PROMOTIONS",
    "category updates": "CATEGORY_UPDATES",
    "category forums": "CATEGORY_FORUMS",
}
# Takeout states that do not exist as Gmail labels: "Opened" is the absence
# of UNREAD and "Archived" the absence of INBOX.
TAKEOUT_DROPPED_LABELS = frozenset({"opened", "archived"})


class EmlFileSender(MailSender):
    """``MailSender`` that writes each message to ``<folder>/<outbox_id>.eml``.

    The file is a complete MIME message that a mail client opens. Sending the
    same outbox id again leaves the existing file untouched.
    """

    def __init__(self, folder: Path):
        self._folder = Path(folder)

    def send(self, email: OutboundEmail) -> str:
        """Write ``email`` once and return ``"file:<outbox_id>"``.

        Raises:
            PermanentDeliveryError: ``outbox_id`` is not a safe file name, or
                the record cannot be built into a message.
        """
        if not _SAFE_FILE_STEM.fullmatch(email.outbox_id):
            raise PermanentDeliveryError(
                f"invalid outbox_id {email.outbox_id!r} for a file name: expected up to 200 "
                "letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        provider_id = f"file:{email.outbox_id}"
        path = self._folder / f"{email.outbox_id}.eml"
        if path.exists():
            logger.info("eml send skipped outbox_id=%s: file exists", email.outbox_id)
            return provider_id

        try:
            data = build_mime(email).as_bytes()
        except InvalidInputError as exc:
            raise PermanentDeliveryError(f"outbox {email.outbox_id} cannot be written: {exc}") from exc
        self._folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, data)
        logger.info("eml written outbox_id=%s bytes=%d", email.outbox_id, len(data))
        return provider_id


def _write_atomically(path: Path, data: bytes) -> None:
    # NOTE: two concurrent sends of one outbox id can both pass the exists()
    # check; os.replace then leaves one complete file, never a partial one.
    handle = tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp", delete=False
    )
    try:
        with handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def iter_mail_files(paths: Iterable[Path]) -> Iterator[tuple[str, bytes]]:
    """Yield ``(label, raw message bytes)`` for every message under ``paths``.

    A folder is walked recursively in sorted path order, reading .eml files
    and mbox files and skipping hidden files. A file named directly is read
    whatever its extension. A file that starts with ``From `` is an mbox:
    each message is yielded with the label ``<path>#<index>``, counting from
    0. Any other file is one message labelled with its path.

    Raises:
        FileNotFoundError: a path does not exist.
    """
    for path in paths:
        path = Path(path)
        if path.is_dir():
            for child in _mail_files_in(path):
                yield from _read_mail_file(child)
        else:
            yield from _read_mail_file(path)


def _mail_files_in(folder: Path) -> Iterator[Path]:
    for child in sorted(folder.rglob("*")):
        relative = child.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or not child.is_file():
            continue
        if child.suffix.lower() == ".eml" or _is_mbox(child):
            yield child


def _read_mail_file(path: Path) -> Iterator[tuple[str, bytes]]:
    if not _is_mbox(path):
        yield str(path), path.read_bytes()
        return

    box = mailbox.mbox(path, create=False)
    try:
        for index, key in enumerate(box.iterkeys()):
            yield f"{path}#{index}", box.get_bytes(key)
    finally:
        box.close()


def _is_mbox(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(MBOX_MARKER)) == MBOX_MARKER


def takeout_labels(raw: bytes) -> tuple[str | None, frozenset[str]]:
    """Read the Gmail thread id and labels from a Takeout message's headers.

    ``X-GM-THRID`` contains the thread id as a decimal number; Gmail API thread
    ids are the same 64-bit number written in hex, so it is returned in hex.
    ``X-Gmail-Labels`` is a comma-separated list in which a name containing a
    comma is double-quoted. System labels map to their Gmail ids (``Inbox``
    becomes ``INBOX``), "Opened" and "Archived" are dropped, and user labels
    keep their names.

    Returns:
        The thread id (None when the header is missing or not a number) and
        the label set (empty when the header is missing).
    """
    headers = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(raw)

    thread_header = str(headers.get("X-GM-THRID", "")).strip()
    thread_id = format(int(thread_header), "x") if thread_header.isdigit() else None

    labels_header = str(headers.get("X-Gmail-Labels", "")).strip()
    names = next(csv.reader([labels_header], skipinitialspace=True), []) if labels_header else []
    labels = set()
    for name in (name.strip() for name in names):
        key = name.lower()
        if not name or key in TAKEOUT_DROPPED_LABELS:
            continue
        labels.add(TAKEOUT_SYSTEM_LABELS.get(key) or _category_label(name) or name)
    return thread_id, frozenset(labels)


def _category_label(name: str) -> str | None:
    # Takeout writes an inbox category as "Category <Name>", and Gmail's id is CATEGORY_<NAME>.
    prefix, _, rest = name.partition(" ")
    if prefix.lower() != "category" or not rest:
        return None
    return "CATEGORY_" + rest.upper().replace(" ", "_")
