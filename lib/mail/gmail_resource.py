"""Turn Gmail API ``users.messages.get`` resources into ``ParsedMessage`` objects.

All three formats go through ``parse_bytes``, so the decoding rules live in
one place:

- ``format=raw``: the base64url ``raw`` field is the whole RFC 5322 message.
- ``format=full``: the payload tree is serialised back into MIME. Gmail has
  already removed each part's Content-Transfer-Encoding, so ``body.data`` contains
  the decoded bytes; they are written back as base64 (text and message parts
  as 8-bit) with a matching header.
- ``format=metadata``: only the headers exist; the body stays empty.

``internalDate`` (milliseconds since the epoch, as a string) replaces the Date
header, because Gmail sets it on receipt and senders' clocks drift.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone

from lib.mail.parse import Attachment, ParsedMessage, parse_bytes

MAX_PART_DEPTH = 20
"""Deepest payload nesting that is serialised; deeper parts are dropped with a defect."""

ERROR_NOT_A_MESSAGE = "invalid Gmail message resource: expected a dict with 'raw' or 'payload', found keys {keys!r}"
DEFECT_DEPTH = "Gmail payload nested deeper than {limit} levels; inner parts dropped"
DEFECT_BASE64 = "Gmail part {part_id!r}: body.data is not valid base64url"
DEFECT_INTERNAL_DATE = "Gmail internalDate {value!r} is not milliseconds since the epoch"
DEFECT_METADATA_ONLY = "Gmail resource has headers only (format=metadata); body not fetched"

_SKIPPED_LEAF_HEADERS = frozenset({"content-transfer-encoding"})
_EIGHT_BIT_TYPES = ("text/", "message/")


def decode_base64url(data: str) -> bytes:
    """Decode base64url text, adding the '=' padding that Gmail often omits.

    Args:
        data: base64url text, with or without padding.

    Returns:
        The decoded bytes.

    Raises:
        binascii.Error: When ``data`` is not base64url.
    """
    cleaned = re.sub(r"\s+", "", data)
    padded = cleaned + "=" * (-len(cleaned) % 4)
    return base64.urlsafe_b64decode(padded)


def parse_gmail_message(resource: Mapping) -> tuple[ParsedMessage, frozenset[str]]:
    """Parse a ``users.messages.get`` resource in format raw, full or metadata.

    Args:
        resource: The JSON resource (the ``response`` of the API call).

    Returns:
        The parsed message and the message's Gmail label ids.

    Raises:
        ValueError: When ``resource`` has neither ``raw`` nor ``payload``; the
            message is ``ERROR_NOT_A_MESSAGE`` with the keys found.
    """
    if not isinstance(resource, Mapping) or ("raw" not in resource and "payload" not in resource):
        keys = sorted(resource) if isinstance(resource, Mapping) else type(resource).__name__
        raise ValueError(ERROR_NOT_A_MESSAGE.format(keys=keys))

    labels = frozenset(str(label) for label in resource.get("labelIds") or ())
    defects: list[str] = []
    if "raw" in resource:
        raw = _decode_or_empty(str(resource["raw"]), "raw", defects)
        parsed = parse_bytes(raw)
        reported: list[Attachment] = []
    else:
        payload = resource["payload"]
        raw = _serialise(payload, 0, defects, top=True)
        parsed = parse_bytes(raw)
        reported = _gmail_attachments(payload)
        if not _has_body(payload):
            defects.append(DEFECT_METADATA_ONLY)

    return _finish(parsed, resource, defects, reported), labels


def _decode_or_empty(data: str, part_id: str, defects: list[str]) -> bytes:
    try:
        return decode_base64url(data)
    except (binascii.Error, ValueError):
        defects.append(DEFECT_BASE64.format(part_id=part_id))
        return b""


def _has_body(payload: Mapping) -> bool:
    body = payload.get("body") or {}
    return bool(payload.get("parts")) or "data" in body or "attachmentId" in body


# ---------------------------------------------------------------------------
# Serialising the payload tree back into MIME
# ---------------------------------------------------------------------------


def _header_lines(headers: list, skip: frozenset[str] = frozenset()) -> list[str]:
    lines = []
    for header in headers or ():
        name = str(header.get("name", "")).strip()
        if not name or name.lower() in skip:
            continue
        value = str(header.get("value", "")).replace("\r", " ").replace("\n", " ")
        lines.append(f"{name}: {value}")
    return lines


def _encode_lines(lines: list[str]) -> bytes:
    # NOTE: Gmail returns header values as Unicode; they are written as UTF-8,
    # which the parser's raw 8-bit header rule decodes first.
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def _serialise(part: Mapping, depth: int, defects: list[str], top: bool = False) -> bytes:
    """Render one payload part, with its headers, as MIME bytes."""
    if depth > MAX_PART_DEPTH:
        defects.append(DEFECT_DEPTH.format(limit=MAX_PART_DEPTH))
        return b"Content-Type: text/plain\r\n\r\n"
    mime_type = str(part.get("mimeType") or "text/plain").lower()
    headers = list(part.get("headers") or ())
    children = [child for child in part.get("parts") or () if isinstance(child, Mapping)]

    if mime_type.startswith("multipart/"):
        return _serialise_multipart(headers, mime_type, children, depth, defects)
    if mime_type == "message/rfc822" and children:
        lines = _header_lines(headers, _SKIPPED_LEAF_HEADERS)
        return _encode_lines(lines) + _serialise(children[0], depth + 1, defects)
    return _serialise_leaf(part, headers, mime_type, defects)


def _serialise_multipart(headers: list, mime_type: str, children: list, depth: int, defects: list[str]) -> bytes:
    lines = _header_lines(headers)
    boundary = _boundary(headers)
    if boundary is None:
        boundary = f"gmail-{uuid.uuid4().hex}"
        lines = [line for line in lines if not line.lower().startswith("content-type:")]
        lines.append(f'Content-Type: {mime_type}; boundary="{boundary}"')
    if not children:
        return _encode_lines(lines)

    chunks = [_encode_lines(lines)]
    for child in children:
        chunks.append(f"--{boundary}\r\n".encode("ascii"))
        chunks.append(_serialise(child, depth + 1, defects))
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(chunks)


def _boundary(headers: list) -> str | None:
    for header in headers or ():
        if str(header.get("name", "")).lower() == "content-type":
            match = re.search(r'boundary\s*=\s*"?([^";]+)"?', str(header.get("value", "")), re.IGNORECASE)
            return match.group(1).strip() if match else None
    return None


def _serialise_leaf(part: Mapping, headers: list, mime_type: str, defects: list[str]) -> bytes:
    body = part.get("body") or {}
    data = _decode_or_empty(str(body["data"]), str(part.get("partId", "")), defects) if "data" in body else b""
    lines = _header_lines(headers, _SKIPPED_LEAF_HEADERS)
    if not any(line.lower().startswith("content-type:") for line in lines):
        lines.append(f"Content-Type: {mime_type}")

    if mime_type.startswith(_EIGHT_BIT_TYPES):
        # Report parts (message/delivery-status) must stay unencoded for the parser.
        lines.append("Content-Transfer-Encoding: 8bit")
        return _encode_lines(lines) + data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    lines.append("Content-Transfer-Encoding: base64")
    return _encode_lines(lines) + base64.encodebytes(data).replace(b"\n", b"\r\n")


# ---------------------------------------------------------------------------
# Fields that only the resource provides
# ---------------------------------------------------------------------------


def _gmail_attachments(part: Mapping, depth: int = 0) -> list[Attachment]:
    """List the parts Gmail reports as files, with the sizes Gmail reports."""
    children = [child for child in part.get("parts") or () if isinstance(child, Mapping)]
    if depth > MAX_PART_DEPTH:
        return []
    if children:
        return [item for child in children for item in _gmail_attachments(child, depth + 1)]
    body = part.get("body") or {}
    if not part.get("filename") and "attachmentId" not in body:
        return []
    return [Attachment(str(part.get("filename") or ""), str(part.get("mimeType") or ""), int(body.get("size") or 0))]


def _with_gmail_sizes(parsed: tuple[Attachment, ...], reported: list[Attachment]) -> tuple[Attachment, ...]:
    """Fill the sizes of parts fetched separately (attachmentId) from Gmail's sizes.

    Parts are matched by filename and content type in order, because the
    rebuilt MIME has no body for them and so a parsed size of zero.
    """
    unused = list(reported)
    result = []
    for item in parsed:
        match = next((g for g in unused if (g.filename, g.content_type) == (item.filename, item.content_type)), None)
        if match is not None:
            unused.remove(match)
            if item.size == 0:
                item = item._replace(size=match.size)
        result.append(item)
    return tuple(result)


def _internal_date(resource: Mapping, defects: list[str]) -> datetime | None:
    value = resource.get("internalDate")
    if value in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int(str(value)) / 1000, tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        defects.append(DEFECT_INTERNAL_DATE.format(value=value))
        return None


def _finish(
    parsed: ParsedMessage, resource: Mapping, defects: list[str], reported: list[Attachment],
) -> ParsedMessage:
    """Apply internalDate, Gmail attachment sizes and resource-level defects."""
    internal = _internal_date(resource, defects)
    return dataclasses.replace(
        parsed,
        date=internal or parsed.date,
        attachments=_with_gmail_sizes(parsed.attachments, reported),
        defects=parsed.defects + tuple(defects),
    )
