"""Signed unsubscribe tokens: ``<base64url JSON payload>.<base64url HMAC-SHA256>``.

The token names the contact and the sequence. It never expires, because an
unsubscribe link must keep working as long as the email exists; revoking every
link means rotating the key.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json

from lib.errors import ConfigError, InvalidInputError

KEY_ENV = "CRM_UNSUBSCRIBE_KEY"
MIN_KEY_BYTES = 16
MAX_TOKEN_CHARS = 600
TOKEN_VERSION = 1


@dataclasses.dataclass(frozen=True)
class UnsubscribeClaims:
    contact_id: str
    sequence_id: str | None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check_key(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"{KEY_ENV} must be at least {MIN_KEY_BYTES} bytes; generate one with `openssl rand -hex 32`")


def _signature(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())


def make_token(key: bytes, contact_id: str, sequence_id: str | None) -> str:
    """Sign an unsubscribe token for ``contact_id`` (and the sequence that sent the email).

    Raises:
        ConfigError: the key is shorter than 16 bytes.
    """
    _check_key(key)
    payload = _b64(json.dumps({"v": TOKEN_VERSION, "c": contact_id, "s": sequence_id},
                              separators=(",", ":")).encode("utf-8"))
    return f"{payload}.{_signature(key, payload)}"


def verify_token(key: bytes, token: str) -> UnsubscribeClaims:
    """Check the signature of ``token`` and return its claims.

    Raises:
        InvalidInputError: the token is malformed, too long or its signature does not match.
        ConfigError: the key is shorter than 16 bytes.
    """
    _check_key(key)
    if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise InvalidInputError("t", "an unsubscribe token of the form <payload>.<signature>")
    payload, signature = token.split(".")
    if not hmac.compare_digest(signature.encode("ascii", "replace"), _signature(key, payload).encode("ascii")):
        raise InvalidInputError("t", "a token signed with this deployment's unsubscribe key")
    try:
        claims = json.loads(_unb64(payload))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError("t", "a base64url JSON payload") from exc
    if not isinstance(claims, dict) or claims.get("v") != TOKEN_VERSION or not isinstance(claims.get("c"), str):
        raise InvalidInputError("t", f"a version {TOKEN_VERSION} payload with a contact id")
    return UnsubscribeClaims(claims["c"], claims.get("s"))
