"""Build RFC 5322 messages from ``OutboundEmail`` records.

The Gmail API adapter and the file-based adapter share this builder, so a
message written to disk is byte-for-byte what Gmail would receive, apart from
the ``Date`` header.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from lib.errors import InvalidInputError
from lib.ports import OutboundEmail

# policy.SMTP folds headers at 78 characters, ends lines with CRLF and writes
# non-ASCII header text as RFC 2047 encoded-words, which CJK names need.
POLICY = email.policy.SMTP

# Headers the builder sets itself. An extra header with one of these names
# would duplicate or contradict the structured fields.
RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        "From",
        "Sender",
        "To",
        "Subject",
        "Message-ID",
        "Date",
        "In-Reply-To",
        "References",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
    )
)


def build_mime(email: OutboundEmail, *, now: dt.datetime | None = None) -> EmailMessage:
    """Build the MIME message for ``email``.

    The body is text/plain, or multipart/alternative with a text/html part
    when ``email.html_body`` is set. Both parts are UTF-8.

    Args:
        email: The outbound record.
        now: Value of the ``Date`` header as an aware datetime; defaults to
            the current UTC time.

    Returns:
        The message, using ``email.policy.SMTP``.

    Raises:
        InvalidInputError: ``sender``, a recipient or ``message_id`` is not a
            valid address or id, ``to`` is empty, an extra header uses a
            reserved name, or a header value contains a line break.
    """
    moment = now or dt.datetime.now(dt.timezone.utc)
    if moment.tzinfo is None:
        raise InvalidInputError("now", "an aware datetime", moment)

    msg = EmailMessage(policy=POLICY)
    msg["From"] = _sender_address(email)
    msg["To"] = ", ".join(_checked_recipients(email.to))
    _set_header(msg, "Subject", email.subject, "subject")
    msg["Message-ID"] = _checked_message_id(email.message_id, "message_id")
    msg["Date"] = format_datetime(moment)
    if email.in_reply_to:
        reply_to_id = _checked_message_id(email.in_reply_to, "in_reply_to")
        msg["In-Reply-To"] = reply_to_id
        # NOTE: OutboundEmail carries only the parent id, so References contains
        # one id instead of the whole thread chain.
        msg["References"] = reply_to_id
    _set_extra_headers(msg, email.headers)

    msg.set_content(email.text_body, charset="utf-8", cte=_transfer_encoding(email.text_body))
    if email.html_body is not None:
        msg.add_alternative(
            email.html_body,
            subtype="html",
            charset="utf-8",
            cte=_transfer_encoding(email.html_body),
        )
    return msg


def to_raw_base64url(msg: EmailMessage) -> str:
    """Encode ``msg`` for the ``raw`` field of Gmail's ``messages.send``.

    Returns:
        The message bytes, serialized with ``email.policy.SMTP``, in the
        URL-safe base64 alphabet with ``=`` padding.
    """
    return base64.urlsafe_b64encode(msg.as_bytes(policy=POLICY)).decode("ascii")


def _sender_address(email: OutboundEmail) -> Address:
    try:
        address = Address(display_name=email.sender_name, addr_spec=email.sender)
    except (ValueError, IndexError) as exc:
        raise InvalidInputError("sender", "an address like name@example.com", email.sender) from exc
    if not address.username or not address.domain:
        raise InvalidInputError("sender", "an address like name@example.com", email.sender)
    return address


def _checked_recipients(recipients: tuple[str, ...]) -> list[str]:
    if not recipients:
        raise InvalidInputError("to", "at least one recipient address", recipients)

    checked = []
    for index, value in enumerate(recipients):
        header = POLICY.header_factory("To", value)
        addresses = header.addresses
        if header.defects or len(addresses) != 1 or not addresses[0].domain:
            raise InvalidInputError(
                f"to[{index}]", "one address like name@example.com or Name <name@example.com>", value
            )
        checked.append(value)
    return checked


def _checked_message_id(value: str, field: str) -> str:
    inner = value[1:-1] if value.startswith("<") and value.endswith(">") else ""
    local, at, domain = inner.partition("@")
    if not (local and at and domain) or any(ch in inner for ch in "<> \t\r\n"):
        raise InvalidInputError(field, "a Message-ID like <unique-part@domain>", value)
    return value


def _set_header(msg: EmailMessage, name: str, value: str, field: str) -> None:
    try:
        msg[name] = value
    except ValueError as exc:
        raise InvalidInputError(field, "a single-line header value", value) from exc


def _set_extra_headers(msg: EmailMessage, headers: tuple[tuple[str, str], ...]) -> None:
    for name, value in headers:
        if name.lower() in RESERVED_HEADERS:
            raise InvalidInputError(
                f"headers.{name}", "a header the builder does not set itself", name
            )
        _set_header(msg, name, value, f"headers.{name}")


def _transfer_encoding(text: str) -> str | None:
    # Base64 keeps UTF-8 bodies 7-bit clean for any relay, and None lets the
    # library pick 7bit or quoted-printable for ASCII text.
    return None if text.isascii() else "base64"
