"""Verification of the Google-signed OIDC ID tokens on push requests.

Cloud Tasks, Cloud Scheduler and Pub/Sub push send ``Authorization: Bearer <ID
token>`` when the job or subscription names an OIDC service account. ``OidcVerifier``
checks the signature with google-auth and then checks the issuer, audience, lifetime
and caller email itself, so every rejection names its cause. ``LocalOidcSigner``
mints tokens of the same shape for local runs and tests.

The token itself never appears in a message of this module.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
import time
from collections.abc import Collection, Mapping
from typing import Any

import google.auth.crypt
import google.auth.exceptions
import google.auth.jwt
import google.auth.transport
import google.auth.transport.requests
import google.oauth2.id_token
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from lib.errors import ConfigError, SignatureError, TransientError

GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
# X.509 certificates, keyed by key id, that sign Google ID tokens.
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
LOCAL_ISSUER = "https://local-oidc.crm.test"

# Error texts. Each SignatureError message starts with one of these.
ERR_MISSING_BEARER = "missing bearer token"
ERR_NOT_BEARER = "unsupported authorization scheme"
ERR_MALFORMED_TOKEN = "malformed token"
ERR_BAD_SIGNATURE = "bad signature"
ERR_WRONG_ISSUER = "wrong issuer"
ERR_WRONG_AUDIENCE = "wrong audience"
ERR_EXPIRED = "token expired"
ERR_NOT_YET_VALID = "token not yet valid"
ERR_UNEXPECTED_EMAIL = "unexpected caller email"
ERR_EMAIL_NOT_VERIFIED = "email not verified"
ERR_CERTS_UNAVAILABLE = "could not fetch token signing certificates"

_BEARER_RE = re.compile(r"Bearer[ \t]+(\S+)[ \t]*", re.IGNORECASE)
_JWT_SHAPE_RE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")

# Seconds added to the clock skew given to google-auth. The widened skew keeps its
# system-clock iat/exp check from firing, because _check_lifetime checks against `now`.
_LIBRARY_SKEW_MARGIN_SECONDS = 60

# How long fetched certificates are reused when the response has no Cache-Control max-age.
_DEFAULT_CERTS_MAX_AGE_SECONDS = 300
_CERTS_FETCH_TIMEOUT_SECONDS = 10
_MAX_AGE_RE = re.compile(r"max-age=(\d+)")


class _CachingRequest(google.auth.transport.Request):
    """A google-auth transport that reuses successful GET responses until their max-age ends.

    Responses are reused for their ``Cache-Control: max-age``, so one certificate
    fetch serves many verifications in a warm function instance.
    """

    def __init__(self, inner: google.auth.transport.Request, monotonic=time.monotonic):
        self._inner = inner
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, google.auth.transport.Response]] = {}
        self._lock = threading.Lock()

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
        if method != "GET" or body is not None:
            return self._inner(url, method=method, body=body, headers=headers, timeout=timeout, **kwargs)

        with self._lock:
            cached = self._cache.get(url)
        if cached is not None and cached[0] > self._monotonic():
            return cached[1]

        response = self._inner(url, method="GET", headers=headers, timeout=timeout or _CERTS_FETCH_TIMEOUT_SECONDS, **kwargs)
        if response.status == 200:
            with self._lock:
                self._cache[url] = (self._monotonic() + _max_age_seconds(response.headers), response)
        return response


def _max_age_seconds(headers: Mapping[str, str]) -> int:
    cache_control = next((value for name, value in headers.items() if name.lower() == "cache-control"), "")
    match = _MAX_AGE_RE.search(cache_control)
    return int(match.group(1)) if match else _DEFAULT_CERTS_MAX_AGE_SECONDS


_shared_request: _CachingRequest | None = None
_shared_request_lock = threading.Lock()


def _default_request() -> _CachingRequest:
    """Return the process-wide caching transport, built on first use."""
    global _shared_request
    with _shared_request_lock:
        if _shared_request is None:
            _shared_request = _CachingRequest(google.auth.transport.requests.Request(requests.Session()))
        return _shared_request


class OidcVerifier:
    """Verifier of the OIDC ID token in an ``Authorization: Bearer`` header.

    Args:
        audiences: Accepted ``aud`` values, usually the function's URL as set in the
            task, job or push subscription. A single string is one audience.
        allowed_emails: Service-account emails allowed to call, compared case-insensitively.
        issuers: Accepted ``iss`` values. Add ``LOCAL_ISSUER`` for local runs.
        certs_url: URL of the signing certificates, or Google's when None.
        certs: Key id to PEM certificate or public key. When given, nothing is
            fetched. For local runs and tests.
        clock_skew_seconds: Tolerance on ``iat`` and ``exp``.
        request: google-auth transport used to fetch certificates, or a process-wide
            caching one when None. Tests pass a fake.

    Raises:
        ConfigError: audiences or allowed_emails is empty, or both certs and
            certs_url are given.
    """

    def __init__(
        self,
        audiences: Collection[str],
        allowed_emails: Collection[str],
        issuers: Collection[str] = GOOGLE_ISSUERS,
        certs_url: str | None = None,
        certs: Mapping[str, str] | None = None,
        clock_skew_seconds: int = 10,
        *,
        request: google.auth.transport.Request | None = None,
    ):
        self._audiences = _as_tuple(audiences)
        self._allowed_emails = frozenset(email.strip().lower() for email in _as_tuple(allowed_emails))
        self._issuers = _as_tuple(issuers)
        if not self._audiences:
            raise ConfigError("oidc.audiences: expected at least one audience (the URL callers put in the token)")
        if not self._allowed_emails:
            raise ConfigError("oidc.allowed_emails: expected at least one service-account email")
        if certs is not None and certs_url is not None:
            raise ConfigError("oidc: set either certs (local keys) or certs_url (remote keys), not both")

        self._certs = dict(certs) if certs is not None else None
        self._certs_url = certs_url or GOOGLE_CERTS_URL
        self._clock_skew_seconds = clock_skew_seconds
        self._request = request

    def verify(self, authorization_header: str | None, now: dt.datetime | None = None) -> dict[str, Any]:
        """Verify the bearer ID token of a request and return its claims.

        Args:
            authorization_header: Value of the Authorization header, or None when absent.
            now: Aware time to check ``iat`` and ``exp`` against, or the system clock when None.

        Returns:
            The verified claims.

        Raises:
            SignatureError: the header is missing or not "Bearer <token>", the token is
                not a JWT with numeric iat and exp, the signature does not verify with a
                known key, or the issuer, audience, lifetime, email or email_verified
                claim is not accepted. The message starts with the matching ``ERR_*`` text.
            TransientError: the signing certificates could not be fetched.
        """
        token = _bearer_token(authorization_header)
        claims = _unverified_claims(token)
        self._verify_signature(token, claims)

        self._check_issuer(claims)
        self._check_audience(claims)
        self._check_lifetime(claims, now or dt.datetime.now(dt.timezone.utc))
        self._check_email(claims)
        return dict(claims)

    def _verify_signature(self, token: str, claims: Mapping[str, Any]) -> None:
        key_id = google.auth.jwt.decode_header(token).get("kid")
        skew = self._library_skew_seconds(claims)
        try:
            if self._certs is not None:
                google.auth.jwt.decode(token, certs=self._certs, audience=None, clock_skew_in_seconds=skew)
            else:
                request = self._request or _default_request()
                google.oauth2.id_token.verify_token(
                    token, request, audience=None, certs_url=self._certs_url, clock_skew_in_seconds=skew
                )
        except google.auth.exceptions.TransportError as exc:
            raise TransientError(f"{ERR_CERTS_UNAVAILABLE} from {self._certs_url}: {exc}") from exc
        except (google.auth.exceptions.GoogleAuthError, ValueError) as exc:
            raise SignatureError(f"{ERR_BAD_SIGNATURE}: the token (key id {key_id!r}) is not signed by a known key") from exc

    def _library_skew_seconds(self, claims: Mapping[str, Any]) -> int:
        # NOTE: google-auth checks iat and exp against the system clock and cannot
        # take `now`, so its skew is widened to cover this token and
        # _check_lifetime makes the real decision.
        system_now = time.time()
        distance = max(0.0, system_now - claims["exp"], claims["iat"] - system_now)
        return int(distance) + self._clock_skew_seconds + _LIBRARY_SKEW_MARGIN_SECONDS

    def _check_issuer(self, claims: Mapping[str, Any]) -> None:
        issuer = claims.get("iss")
        if issuer not in self._issuers:
            raise SignatureError(f"{ERR_WRONG_ISSUER}: expected one of {list(self._issuers)!r}, found {issuer!r}")

    def _check_audience(self, claims: Mapping[str, Any]) -> None:
        audience = claims.get("aud")
        found = audience if isinstance(audience, list) else [audience]
        if not any(value in self._audiences for value in found):
            raise SignatureError(
                f"{ERR_WRONG_AUDIENCE}: expected one of {list(self._audiences)!r}, found {audience!r}. "
                "Set the audience of the task, job or push subscription to this function's URL"
            )

    def _check_lifetime(self, claims: Mapping[str, Any], now: dt.datetime) -> None:
        now_seconds = now.timestamp()
        skew = self._clock_skew_seconds
        if now_seconds > claims["exp"] + skew:
            raise SignatureError(f"{ERR_EXPIRED}: exp {_iso(claims['exp'])} is before now {_iso(now_seconds)} (clock skew {skew}s)")
        if now_seconds < claims["iat"] - skew:
            raise SignatureError(f"{ERR_NOT_YET_VALID}: iat {_iso(claims['iat'])} is after now {_iso(now_seconds)} (clock skew {skew}s)")

    def _check_email(self, claims: Mapping[str, Any]) -> None:
        email = claims.get("email")
        if not isinstance(email, str) or email.strip().lower() not in self._allowed_emails:
            raise SignatureError(
                f"{ERR_UNEXPECTED_EMAIL}: found {_describe_email(email)}. "
                "Add the caller's service account to allowed_emails to accept it"
            )
        # The string "true" is accepted as well as the JSON boolean.
        if claims.get("email_verified") not in (True, "true"):
            raise SignatureError(f"{ERR_EMAIL_NOT_VERIFIED}: email_verified is {claims.get('email_verified')!r}")


def _as_tuple(values: Collection[str]) -> tuple[str, ...]:
    return (values,) if isinstance(values, str) else tuple(values)


def _bearer_token(authorization_header: str | None) -> str:
    if authorization_header is None or not authorization_header.strip():
        raise SignatureError(f"{ERR_MISSING_BEARER}: expected an 'Authorization: Bearer <ID token>' header")
    match = _BEARER_RE.fullmatch(authorization_header.strip())
    if match is None:
        scheme = authorization_header.strip().split(None, 1)[0]
        raise SignatureError(f"{ERR_NOT_BEARER}: expected 'Bearer', found {scheme[:20]!r}")
    return match.group(1)


def _unverified_claims(token: str) -> Mapping[str, Any]:
    """Decode the payload without verifying it, so later checks can rely on its shape."""
    if not _JWT_SHAPE_RE.fullmatch(token):
        raise SignatureError(f"{ERR_MALFORMED_TOKEN}: expected three base64url segments separated by '.'")
    try:
        header = google.auth.jwt.decode_header(token)
        claims = google.auth.jwt.decode(token, verify=False)
    except (google.auth.exceptions.GoogleAuthError, ValueError):
        # The cause is dropped because google-auth quotes the raw segments in its messages.
        raise SignatureError(f"{ERR_MALFORMED_TOKEN}: header or payload is not a base64url JSON object") from None

    if not isinstance(header.get("kid"), (str, type(None))):
        raise SignatureError(f"{ERR_MALFORMED_TOKEN}: header kid is not a string")
    for name in ("iat", "exp"):
        value = claims.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SignatureError(f"{ERR_MALFORMED_TOKEN}: claim {name!r} is missing or not a number")
    return claims


def _describe_email(email: object) -> str:
    """Show a service-account email in full but only the domain of any other address."""
    if not isinstance(email, str):
        return f"no email claim ({email!r})"
    if email.endswith(".gserviceaccount.com"):
        return repr(email)
    return repr("***@" + email.rpartition("@")[2])


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat()


class LocalOidcSigner:
    """Issuer of RS256 ID tokens shaped like Google's, with a key made at construction.

    Args:
        issuer: Value of the ``iss`` claim.
        kid: Key id put in the token header and used as the key of ``certs()``.
    """

    def __init__(self, issuer: str = LOCAL_ISSUER, kid: str = "local-1"):
        self.issuer = issuer
        self.kid = kid
        self._private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._signer = google.auth.crypt.RSASigner(self._private_key, key_id=kid)

    def certs(self) -> dict[str, str]:
        """Return the public key as ``{kid: PEM}``, the shape ``OidcVerifier(certs=...)`` takes."""
        public_pem = self._private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {self.kid: public_pem.decode("ascii")}

    def sign(
        self,
        audience: str,
        email: str,
        lifetime: dt.timedelta = dt.timedelta(minutes=5),
        now: dt.datetime | None = None,
        email_verified: bool = True,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Sign an ID token for a service-account caller.

        Args:
            audience: The ``aud`` claim.
            email: The ``email`` claim. ``sub`` and ``azp`` are derived from it.
            lifetime: Time from ``iat`` to ``exp``.
            now: Issue time, or the system clock when None.
            email_verified: The ``email_verified`` claim.
            extra: Claims added last, so they replace the standard ones of the same name.

        Returns:
            The compact JWT.
        """
        issued_at = int((now or dt.datetime.now(dt.timezone.utc)).timestamp())
        subject = str(int(hashlib.sha256(email.encode("utf-8")).hexdigest()[:15], 16))
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "azp": subject,
            "sub": subject,
            "email": email,
            "email_verified": email_verified,
            "iat": issued_at,
            "exp": issued_at + int(lifetime.total_seconds()),
        }
        claims.update(extra or {})
        return google.auth.jwt.encode(self._signer, claims, key_id=self.kid).decode("ascii")
