"""Verify webhook signatures over the exact raw request bytes, one function per scheme.

Every comparison goes through ``hmac.compare_digest``. A scheme with a timestamp
rejects a request whose timestamp is further from ``now`` than the source's
``signature.tolerance_seconds``, in either direction.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
from collections.abc import Callable, Mapping

from lib.config.schema import Source
from lib.errors import SignatureError

CRM_TIMESTAMP_HEADER = "X-CRM-Timestamp"
CRM_SIGNATURE_HEADER = "X-CRM-Signature"
CRM_SECRET_HEADER = "X-CRM-Secret"
CRM_SECRET_QUERY = "key"
WEBFLOW_TIMESTAMP_HEADER = "x-webflow-timestamp"
WEBFLOW_SIGNATURE_HEADER = "x-webflow-signature"
TYPEFORM_SIGNATURE_HEADER = "Typeform-Signature"
TALLY_SIGNATURE_HEADER = "Tally-Signature"
HUBSPOT_SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
HUBSPOT_TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
SHA256_PREFIX = "sha256="

SECRET_MISSING = "secret not configured: set {env}"
HEADER_MISSING = "missing {header} header"
HEADER_MALFORMED = "malformed {header} header: expected {expected}"
SIGNATURE_WRONG = "wrong {header}: the signature does not match the request body"
TIMESTAMP_EXPIRED = "expired {header}: the timestamp is {age:.0f} s from the server clock, outside the tolerance of {tolerance} s"
SHARED_SECRET_MISSING = f"missing {CRM_SECRET_HEADER} header or '{CRM_SECRET_QUERY}' query parameter"
SHARED_SECRET_WRONG = f"wrong shared secret in the {CRM_SECRET_HEADER} header or '{CRM_SECRET_QUERY}' query parameter"

# HubSpot signs the request URI with these percent-escapes decoded and every other
# escape kept ("Validate the v3 request signature" in HubSpot's developer docs).
# NOTE: this table was written from that page's description and is not checked
# against a request signed by HubSpot itself.
_HUBSPOT_DECODED_ESCAPES = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


class _Request:
    """The parts of an HTTP request that a signature scheme reads."""

    def __init__(self, headers: Mapping[str, str], raw_body: bytes, method: str, url: str, query: Mapping[str, str]):
        self._headers = {name.lower(): value for name, value in headers.items()}
        self.raw_body = raw_body
        self.method = method.upper()
        self.url = url
        self.query = query

    def header(self, name: str) -> str | None:
        value = self._headers.get(name.lower())
        return value.strip() if isinstance(value, str) and value.strip() else None

    def required_header(self, name: str) -> str:
        value = self.header(name)
        if value is None:
            raise SignatureError(HEADER_MISSING.format(header=name))
        return value


def verify_signature(
    source: Source,
    secret: bytes | None,
    *,
    headers: Mapping[str, str],
    raw_body: bytes,
    method: str,
    url: str,
    query: Mapping[str, str],
    now: dt.datetime,
) -> None:
    """Check that a request was sent by the holder of ``source``'s secret.

    Args:
        source: The configured source; ``source.signature`` picks the scheme, the
            tolerance and an optional override of the signature header name.
        secret: The source's secret from ``source.secret_env``, or None when unset.
        headers: Request headers; names are matched case-insensitively.
        raw_body: The exact bytes received, before any decoding.
        method: The HTTP method (HubSpot signs it).
        url: The full request URL as the sender called it (HubSpot signs it).
        query: Decoded query parameters (the shared-secret scheme reads ``key``).
        now: The current time, aware.

    Raises:
        SignatureError: the secret is not configured (scheme other than
            ``none``), or the signature or timestamp is missing, malformed,
            wrong or outside the tolerance. The message names the header.
    """
    scheme = source.signature.scheme
    if scheme == "none":
        return
    if secret is None:
        raise SignatureError(SECRET_MISSING.format(env=source.secret_env))
    request = _Request(headers, raw_body, method, url, query)
    _VERIFIERS[scheme](source, secret, request, now)


def sign_crm_hmac(secret: bytes, raw_body: bytes, timestamp: int) -> dict[str, str]:
    """Return the ``crm_hmac`` headers for ``raw_body`` sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + raw_body, hashlib.sha256).hexdigest()
    return {CRM_TIMESTAMP_HEADER: str(timestamp), CRM_SIGNATURE_HEADER: SHA256_PREFIX + digest}


def _digest(secret: bytes, message: bytes) -> bytes:
    return hmac.new(secret, message, hashlib.sha256).digest()


def _check_age(header: str, sent_at_seconds: float, now: dt.datetime, tolerance: int) -> None:
    age = now.timestamp() - sent_at_seconds
    if abs(age) > tolerance:
        raise SignatureError(TIMESTAMP_EXPIRED.format(header=header, age=age, tolerance=tolerance))


def _parse_integer_header(request: _Request, header: str, unit: str) -> int:
    value = request.required_header(header)
    if not (value.isascii() and value.isdigit()):
        raise SignatureError(HEADER_MALFORMED.format(header=header, expected=f"an integer unix time in {unit}"))
    return int(value)


def _compare_hex(header: str, received: str, expected: bytes) -> None:
    try:
        received_bytes = bytes.fromhex(received)
    except ValueError as exc:
        raise SignatureError(HEADER_MALFORMED.format(header=header, expected="a hex SHA-256 digest")) from exc
    if not hmac.compare_digest(received_bytes, expected):
        raise SignatureError(SIGNATURE_WRONG.format(header=header))


def _compare_base64(header: str, received: str, expected: bytes) -> None:
    try:
        received_bytes = base64.b64decode(received, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(HEADER_MALFORMED.format(header=header, expected="a base64 SHA-256 digest")) from exc
    if not hmac.compare_digest(received_bytes, expected):
        raise SignatureError(SIGNATURE_WRONG.format(header=header))


def _strip_prefix(header: str, value: str) -> str:
    if not value.startswith(SHA256_PREFIX):
        raise SignatureError(HEADER_MALFORMED.format(header=header, expected=f"'{SHA256_PREFIX}' followed by the digest"))
    return value[len(SHA256_PREFIX) :]


def _verify_crm_hmac(source: Source, secret: bytes, request: _Request, now: dt.datetime) -> None:
    header = source.signature.header or CRM_SIGNATURE_HEADER
    timestamp = _parse_integer_header(request, CRM_TIMESTAMP_HEADER, "seconds")
    received = _strip_prefix(header, request.required_header(header))
    _check_age(CRM_TIMESTAMP_HEADER, timestamp, now, source.signature.tolerance_seconds)
    _compare_hex(header, received, _digest(secret, f"{timestamp}.".encode() + request.raw_body))


def _verify_webflow(source: Source, secret: bytes, request: _Request, now: dt.datetime) -> None:
    header = source.signature.header or WEBFLOW_SIGNATURE_HEADER
    timestamp = _parse_integer_header(request, WEBFLOW_TIMESTAMP_HEADER, "milliseconds")
    received = request.required_header(header)
    _check_age(WEBFLOW_TIMESTAMP_HEADER, timestamp / 1000, now, source.signature.tolerance_seconds)
    _compare_hex(header, received, _digest(secret, f"{timestamp}:".encode() + request.raw_body))


def _verify_typeform(source: Source, secret: bytes, request: _Request, now: dt.datetime) -> None:
    header = source.signature.header or TYPEFORM_SIGNATURE_HEADER
    received = _strip_prefix(header, request.required_header(header))
    _compare_base64(header, received, _digest(secret, request.raw_body))


def _verify_tally(source: Source, secret: bytes, request: _Request, now: dt.datetime) -> None:
    header = source.signature.header or TALLY_SIGNATURE_HEADER
    _compare_base64(header, request.required_header(header), _digest(secret, request.raw_body))


def hubspot_signed_uri(url: str) -> str:
    """Decode the percent-escapes that HubSpot decodes before signing a request URI."""
    decoded = url
    for escape, character in _HUBSPOT_DECODED_ESCAPES.items():
        decoded = decoded.replace(escape, character).replace(escape.lower(), character)
    return decoded


def hubspot_v3_signature(secret: bytes, method: str, url: str, raw_body: bytes, timestamp_ms: int) -> str:
    """Return the ``X-HubSpot-Signature-v3`` value HubSpot would send for this request."""
    message = method.upper().encode() + hubspot_signed_uri(url).encode() + raw_body + str(timestamp_ms).encode()
    return base64.b64encode(_digest(secret, message)).decode("ascii")


def _verify_hubspot_v3(source: Source, secret: bytes, request: _Request, now: dt.datetime) -> None:
    header = source.signature.header or HUBSPOT_SIGNATURE_HEADER
    timestamp = _parse_integer_header(request, HUBSPOT_TIMESTAMP_HEADER, "milliseconds")
    received = request.required_header(header)
    _check_age(HUBSPOT_TIMESTAMP_HEADER, timestamp / 1000, now, source.signature.tolerance_seconds)
    expected = hubspot_v3_signature(secret, request.method, request.url, request.raw_body, timestamp)
    _compare_base64(header, received, base64.b64decode(expected))


def _verify_shared_secret(source: Source, secret: bytes, request: _Request, now: dt.datetime) -> None:
    header = source.signature.header or CRM_SECRET_HEADER
    received = request.header(header) or request.query.get(CRM_SECRET_QUERY)
    if not received:
        raise SignatureError(SHARED_SECRET_MISSING)
    if not hmac.compare_digest(received.encode("utf-8"), secret):
        raise SignatureError(SHARED_SECRET_WRONG)


_VERIFIERS: dict[str, Callable[[Source, bytes, _Request, dt.datetime], None]] = {
    "crm_hmac": _verify_crm_hmac,
    "webflow": _verify_webflow,
    "typeform": _verify_typeform,
    "tally": _verify_tally,
    "hubspot_v3": _verify_hubspot_v3,
    "shared_secret": _verify_shared_secret,
}
