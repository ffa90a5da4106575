"""Decode a request body by its Content-Type: JSON, urlencoded or multipart form data."""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import json
import urllib.parse

from lib.errors import InvalidInputError, UnsupportedMediaTypeError

JSON = "application/json"
URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"

# Senders that label JSON as opaque bytes or plain text; the body is used when it parses.
_SNIFFED_TYPES = frozenset({"application/octet-stream", "text/plain", ""})
_MAX_FORM_FIELDS = 1000
_EXCERPT_CHARS = 60

UNSUPPORTED_MESSAGE = "unsupported Content-Type {found!r}: this endpoint accepts {accepted}"


def decode_body(content_type: str | None, raw_body: bytes, *, allowed: frozenset[str]) -> object:
    """Decode ``raw_body`` according to ``content_type``.

    Args:
        content_type: The request's Content-Type header, parameters included, or None.
        raw_body: The exact bytes received.
        allowed: Media types this endpoint accepts, from ``application/json``,
            ``application/x-www-form-urlencoded`` and ``multipart/form-data``.
            Allowing JSON also allows ``text/json``, any ``+json`` type, and JSON
            bytes labelled ``application/octet-stream``, ``text/plain`` or unlabelled.

    Returns:
        The decoded JSON value, or for both form encodings a list of
        ``(name, value)`` pairs in the order sent. Repeated names stay separate
        pairs; ``lib.intake.fields.group_pairs`` turns them into lists. A file part
        of a multipart body is recorded as its file name.

    Raises:
        UnsupportedMediaTypeError: the media type is not allowed, or a sniffed
            body is not JSON.
        InvalidInputError: the body does not decode as its declared media type
            (field ``"body"``).
    """
    media_type, parameters = _split_content_type(content_type)
    kind = _kind_of(media_type)
    if kind not in allowed and not (kind == "sniff" and JSON in allowed):
        raise _unsupported(content_type, allowed)

    charset = parameters.get("charset", "utf-8")
    if kind == JSON:
        return _decode_json(raw_body, charset)
    if kind == "sniff":
        return _sniff_json(raw_body, content_type, allowed)
    if kind == URLENCODED:
        return _decode_urlencoded(raw_body, charset)
    return _decode_multipart(content_type or "", raw_body)


def _split_content_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    message = email.message.Message()
    message["Content-Type"] = content_type or "application/octet-stream"
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    parameters = {key.lower(): value for key, value in message.get_params(failobj=[])[1:]}
    return media_type, parameters


def _kind_of(media_type: str) -> str:
    if media_type in (JSON, "text/json") or media_type.endswith("+json"):
        return JSON
    if media_type in _SNIFFED_TYPES:
        return "sniff"
    return media_type


def _unsupported(content_type: str | None, allowed: frozenset[str]) -> UnsupportedMediaTypeError:
    accepted = ", ".join(sorted(allowed)) or "nothing"
    return UnsupportedMediaTypeError(UNSUPPORTED_MESSAGE.format(found=content_type or "(none)", accepted=accepted))


def _excerpt(raw_body: bytes) -> str:
    return raw_body[:_EXCERPT_CHARS].decode("utf-8", errors="replace")


def _decode_json(raw_body: bytes, charset: str) -> object:
    try:
        text = raw_body.decode("utf-8-sig" if charset.lower() in ("utf-8", "utf8") else charset)
        return json.loads(text)
    except (UnicodeDecodeError, LookupError, ValueError) as exc:
        raise InvalidInputError("body", "valid JSON", _excerpt(raw_body)) from exc
    except RecursionError as exc:
        raise InvalidInputError("body", "JSON nested less deeply", _excerpt(raw_body)) from exc


def _sniff_json(raw_body: bytes, content_type: str | None, allowed: frozenset[str]) -> object:
    try:
        return json.loads(raw_body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _unsupported(content_type, allowed) from exc


def _decode_urlencoded(raw_body: bytes, charset: str) -> list[tuple[str, str]]:
    try:
        text = raw_body.decode("ascii")
        return urllib.parse.parse_qsl(
            text,
            keep_blank_values=True,
            encoding=charset,
            errors="strict",
            max_num_fields=_MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, LookupError, ValueError) as exc:
        expected = f"percent-encoded {charset} form data with at most {_MAX_FORM_FIELDS} fields"
        raise InvalidInputError("body", expected, _excerpt(raw_body)) from exc


def _decode_multipart(content_type: str, raw_body: bytes) -> list[tuple[str, str]]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("utf-8")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw_body)
    if not message.get_boundary():
        raise InvalidInputError("body", "multipart/form-data with a boundary parameter", content_type)
    if not message.is_multipart():
        raise InvalidInputError("body", "multipart/form-data parts", _excerpt(raw_body))

    pairs = []
    for part in message.iter_parts():
        pair = _decode_part(part)
        if pair is not None:
            pairs.append(pair)
    if len(pairs) > _MAX_FORM_FIELDS:
        raise InvalidInputError("body", f"at most {_MAX_FORM_FIELDS} form fields", len(pairs))
    return pairs


def _decode_part(part: email.message.Message) -> tuple[str, str] | None:
    name = part.get_param("name", header="content-disposition")
    if not name:
        return None
    filename = part.get_filename()
    if filename is not None:
        return str(name), str(filename)
    payload = part.get_payload(decode=True) or b""
    charset = part.get_content_charset() or "utf-8"
    try:
        return str(name), payload.decode(charset)
    except (UnicodeDecodeError, LookupError) as exc:
        raise InvalidInputError(f"body.{name}", f"text in {charset}", _excerpt(payload)) from exc
