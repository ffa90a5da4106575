"""Unit tests of OIDC ID-token verification on push requests."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import google.auth.transport
import pytest

from lib.adapters.oidc import (
    ERR_BAD_SIGNATURE,
    ERR_EMAIL_NOT_VERIFIED,
    ERR_EXPIRED,
    ERR_MALFORMED_TOKEN,
    ERR_MISSING_BEARER,
    ERR_NOT_BEARER,
    ERR_NOT_YET_VALID,
    ERR_UNEXPECTED_EMAIL,
    ERR_WRONG_AUDIENCE,
    ERR_WRONG_ISSUER,
    LOCAL_ISSUER,
    LocalOidcSigner,
    OidcVerifier,
    _CachingRequest,
)
from lib.errors import ConfigError, SignatureError, TransientError

SHARED_DIR = Path(__file__).resolve().parents[2].parent / "shared"
CLAIMS_FIXTURE = SHARED_DIR / "fixtures" / "inputs" / "oidc_token_claims.json"

AUDIENCE = "https://asia-east1-crm-example.cloudfunctions.net/reminder"
CALLER = "tasks-invoker@crm-example.iam.gserviceaccount.com"
NOW = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.timezone.utc)
CERTS_URL = "https://certs.example.test/oauth2/v1/certs"


@pytest.fixture(scope="module")
def signer():
    return LocalOidcSigner()


@pytest.fixture(scope="module")
def verifier(signer):
    return OidcVerifier([AUDIENCE], [CALLER], issuers=[LOCAL_ISSUER], certs=signer.certs())


def bearer(token):
    return f"Bearer {token}"


def rejection(verifier, header, now=NOW):
    with pytest.raises(SignatureError) as caught:
        verifier.verify(header, now=now)
    return str(caught.value)


def segment(value):
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


# ---------------------------------------------------------------------------
# Accepted tokens


def test_valid_token_returns_claims(signer, verifier):
    claims = verifier.verify(bearer(signer.sign(AUDIENCE, CALLER, now=NOW)), now=NOW)

    assert claims["aud"] == AUDIENCE
    assert claims["email"] == CALLER
    assert claims["iss"] == LOCAL_ISSUER


def test_lowercase_scheme_and_email_case_accepted(signer, verifier):
    token = signer.sign(AUDIENCE, CALLER.upper(), now=NOW)

    assert verifier.verify(f"bearer  {token} ", now=NOW)["email"] == CALLER.upper()


def test_token_within_clock_skew_accepted(signer, verifier):
    token = signer.sign(AUDIENCE, CALLER, now=NOW, lifetime=dt.timedelta(minutes=5))

    assert verifier.verify(bearer(token), now=NOW + dt.timedelta(minutes=5, seconds=9))["sub"]


def test_one_of_several_audiences_accepted(signer):
    verifier = OidcVerifier([AUDIENCE, "https://other.example.test"], [CALLER], issuers=[LOCAL_ISSUER], certs=signer.certs())

    assert verifier.verify(bearer(signer.sign("https://other.example.test", CALLER, now=NOW)), now=NOW)


def test_system_clock_used_without_now(signer, verifier):
    assert verifier.verify(bearer(signer.sign(AUDIENCE, CALLER)))["email"] == CALLER


# ---------------------------------------------------------------------------
# Rejected headers and tokens


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_header_rejected(verifier, header):
    assert rejection(verifier, header).startswith(ERR_MISSING_BEARER)


@pytest.mark.parametrize("header", ["Basic x", "Basic dXNlcjpwYXNz", "Bearer", "Token abc.def.ghi", "Bearer a.b.c extra"])
def test_non_bearer_header_rejected(verifier, header):
    assert rejection(verifier, header).startswith(ERR_NOT_BEARER)


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b",
        "a.b.c.d",
        "not!base64.at.all",
        "e30.e30.",
        f"{segment([1])}.{segment({'iat': 1, 'exp': 2})}.c2ln",
        f"{segment({'alg': 'RS256'})}.{segment({'exp': 2})}.c2ln",
        f"{segment({'alg': 'RS256'})}.{segment({'iat': '1', 'exp': 2})}.c2ln",
        f"{segment({'alg': 'RS256', 'kid': 5})}.{segment({'iat': 1, 'exp': 2})}.c2ln",
    ],
)
def test_garbage_token_rejected(verifier, token):
    assert rejection(verifier, bearer(token)).startswith(ERR_MALFORMED_TOKEN)


def test_wrong_signing_key_rejected(verifier):
    impostor = LocalOidcSigner()  # Same issuer and key id, different key.

    assert rejection(verifier, bearer(impostor.sign(AUDIENCE, CALLER, now=NOW))).startswith(ERR_BAD_SIGNATURE)


def test_unknown_key_id_rejected(verifier):
    impostor = LocalOidcSigner(kid="other-key")

    assert rejection(verifier, bearer(impostor.sign(AUDIENCE, CALLER, now=NOW))).startswith(ERR_BAD_SIGNATURE)


def test_unsigned_token_rejected(verifier):
    payload = {"iss": LOCAL_ISSUER, "aud": AUDIENCE, "email": CALLER, "email_verified": True, "iat": 1, "exp": 2**40}
    token = f"{segment({'alg': 'none', 'kid': 'local-1'})}.{segment(payload)}.c2ln"

    assert rejection(verifier, bearer(token)).startswith(ERR_BAD_SIGNATURE)


def test_tampered_payload_rejected(signer, verifier):
    header, _, signature = signer.sign(AUDIENCE, CALLER, now=NOW).split(".")
    forged = {"iss": LOCAL_ISSUER, "aud": AUDIENCE, "email": CALLER, "email_verified": True, "iat": 1, "exp": 2**40}

    assert rejection(verifier, bearer(f"{header}.{segment(forged)}.{signature}")).startswith(ERR_BAD_SIGNATURE)


def test_rejection_message_omits_token(verifier):
    token = LocalOidcSigner().sign(AUDIENCE, CALLER, now=NOW)

    assert token not in rejection(verifier, bearer(token))


def test_other_audience_rejected(signer, verifier):
    message = rejection(verifier, bearer(signer.sign("https://evil.example.test", CALLER, now=NOW)))

    assert message.startswith(ERR_WRONG_AUDIENCE)
    assert repr(AUDIENCE) in message
    assert "'https://evil.example.test'" in message


def test_wrong_issuer_rejected(signer):
    google_only = OidcVerifier([AUDIENCE], [CALLER], certs=signer.certs())

    assert rejection(google_only, bearer(signer.sign(AUDIENCE, CALLER, now=NOW))).startswith(ERR_WRONG_ISSUER)


def test_unexpected_caller_rejected(signer, verifier):
    message = rejection(verifier, bearer(signer.sign(AUDIENCE, "intruder@crm-example.iam.gserviceaccount.com", now=NOW)))

    assert message.startswith(ERR_UNEXPECTED_EMAIL)
    assert "intruder@crm-example.iam.gserviceaccount.com" in message


def test_unexpected_personal_email_masked(signer, verifier):
    message = rejection(verifier, bearer(signer.sign(AUDIENCE, "mei.lin@example.com", now=NOW)))

    assert message.startswith(ERR_UNEXPECTED_EMAIL)
    assert "mei.lin" not in message


def test_missing_email_rejected(signer, verifier):
    token = signer.sign(AUDIENCE, CALLER, now=NOW, extra={"email": None})

    assert rejection(verifier, bearer(token)).startswith(ERR_UNEXPECTED_EMAIL)


@pytest.mark.parametrize("email_verified", [False, "false", None])
def test_unverified_email_rejected(signer, verifier, email_verified):
    token = signer.sign(AUDIENCE, CALLER, now=NOW, extra={"email_verified": email_verified})

    assert rejection(verifier, bearer(token)).startswith(ERR_EMAIL_NOT_VERIFIED)


def test_expired_token_rejected(signer, verifier):
    token = signer.sign(AUDIENCE, CALLER, now=NOW - dt.timedelta(hours=2), lifetime=dt.timedelta(hours=1))

    assert rejection(verifier, bearer(token)).startswith(ERR_EXPIRED)


def test_expired_beyond_skew_rejected(signer, verifier):
    token = signer.sign(AUDIENCE, CALLER, now=NOW, lifetime=dt.timedelta(minutes=5))

    assert rejection(verifier, bearer(token), now=NOW + dt.timedelta(minutes=5, seconds=11)).startswith(ERR_EXPIRED)


def test_token_from_future_rejected(signer, verifier):
    token = signer.sign(AUDIENCE, CALLER, now=NOW + dt.timedelta(minutes=10))

    assert rejection(verifier, bearer(token)).startswith(ERR_NOT_YET_VALID)


# ---------------------------------------------------------------------------
# Claims fixture: a Google-shaped token and its negative variants


@pytest.fixture(scope="module")
def claims_fixture():
    if not CLAIMS_FIXTURE.is_file():
        pytest.skip(f"shared OIDC claims fixture not found at {CLAIMS_FIXTURE}")
    return json.loads(CLAIMS_FIXTURE.read_text(encoding="utf-8"))


def shifted(claims, fixture_iat):
    """Move iat and exp so the fixture's issue time falls one minute before NOW."""
    offset = int(NOW.timestamp()) - 60 - fixture_iat
    return {name: value + offset if name in ("iat", "exp") else value for name, value in claims.items()}


def sign_fixture_claims(signer, claims):
    return signer.sign(claims["aud"], claims["email"], extra=claims)


@pytest.fixture(scope="module")
def google_shaped_verifier(signer, claims_fixture):
    payload = claims_fixture["payload"]
    return OidcVerifier([payload["aud"]], [payload["email"]], certs=signer.certs())


def test_fixture_payload_accepted(signer, claims_fixture, google_shaped_verifier):
    payload = claims_fixture["payload"]
    token = sign_fixture_claims(signer, shifted(payload, payload["iat"]))

    claims = google_shaped_verifier.verify(bearer(token), now=NOW)

    assert claims["sub"] == payload["sub"]
    assert claims["iss"] == payload["iss"]


def test_fixture_negative_variants_rejected(signer, claims_fixture, google_shaped_verifier):
    payload = claims_fixture["payload"]
    expected_errors = {"aud": ERR_WRONG_AUDIENCE, "email": ERR_UNEXPECTED_EMAIL, "exp": ERR_EXPIRED}
    variants = claims_fixture["negative_variants"]
    assert variants

    for variant in variants:
        changes = {name: value for name, value in variant.items() if name != "why"}
        token = sign_fixture_claims(signer, shifted({**payload, **changes}, payload["iat"]))
        expected = next(expected_errors[name] for name in changes if name in expected_errors)

        with pytest.raises(SignatureError) as caught:
            google_shaped_verifier.verify(bearer(token), now=NOW)

        assert str(caught.value).startswith(expected), variant["why"]


# ---------------------------------------------------------------------------
# Remote certificates through google.oauth2.id_token.verify_token


class FakeResponse(google.auth.transport.Response):
    def __init__(self, status, data, headers=None):
        self._status = status
        self._data = data
        self._headers = headers or {}

    @property
    def status(self):
        return self._status

    @property
    def headers(self):
        return self._headers

    @property
    def data(self):
        return self._data


class FakeCertsEndpoint(google.auth.transport.Request):
    """Serves one certificates document and records the URLs it was asked for."""

    def __init__(self, status, certs, headers=None):
        self.response = FakeResponse(status, json.dumps(certs).encode(), headers)
        self.urls = []

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
        self.urls.append(url)
        return self.response


def remote_verifier(signer, endpoint):
    return OidcVerifier([AUDIENCE], [CALLER], issuers=[LOCAL_ISSUER], certs_url=CERTS_URL, request=_CachingRequest(endpoint))


def test_remote_certs_verify_token(signer):
    endpoint = FakeCertsEndpoint(200, signer.certs())

    claims = remote_verifier(signer, endpoint).verify(bearer(signer.sign(AUDIENCE, CALLER, now=NOW)), now=NOW)

    assert claims["email"] == CALLER
    assert endpoint.urls == [CERTS_URL]


def test_remote_certs_cached_between_calls(signer):
    endpoint = FakeCertsEndpoint(200, signer.certs(), {"Cache-Control": "public, max-age=19000"})
    verifier = remote_verifier(signer, endpoint)

    for _ in range(3):
        verifier.verify(bearer(signer.sign(AUDIENCE, CALLER, now=NOW)), now=NOW)

    assert len(endpoint.urls) == 1


def test_remote_certs_wrong_key_rejected(signer):
    endpoint = FakeCertsEndpoint(200, LocalOidcSigner().certs())

    message = rejection(remote_verifier(signer, endpoint), bearer(signer.sign(AUDIENCE, CALLER, now=NOW)))

    assert message.startswith(ERR_BAD_SIGNATURE)


def test_remote_certs_unavailable_is_transient(signer):
    endpoint = FakeCertsEndpoint(503, {})

    with pytest.raises(TransientError):
        remote_verifier(signer, endpoint).verify(bearer(signer.sign(AUDIENCE, CALLER, now=NOW)), now=NOW)


def test_remote_certs_failure_not_cached(signer):
    endpoint = FakeCertsEndpoint(503, {})
    verifier = remote_verifier(signer, endpoint)

    for _ in range(2):
        with pytest.raises(TransientError):
            verifier.verify(bearer(signer.sign(AUDIENCE, CALLER, now=NOW)), now=NOW)

    assert len(endpoint.urls) == 2


# ---------------------------------------------------------------------------
# Configuration


@pytest.mark.parametrize(
    "kwargs",
    [
        {"audiences": [], "allowed_emails": [CALLER]},
        {"audiences": [AUDIENCE], "allowed_emails": []},
        {"audiences": [AUDIENCE], "allowed_emails": [CALLER], "certs": {}, "certs_url": CERTS_URL},
    ],
)
def test_verifier_rejects_bad_config(kwargs):
    with pytest.raises(ConfigError):
        OidcVerifier(**kwargs)


def test_single_string_audience_accepted(signer):
    verifier = OidcVerifier(AUDIENCE, CALLER, issuers=[LOCAL_ISSUER], certs=signer.certs())

    assert verifier.verify(bearer(signer.sign(AUDIENCE, CALLER, now=NOW)), now=NOW)


def test_signer_extra_overrides_claims(signer):
    verifier = OidcVerifier([AUDIENCE], [CALLER], issuers=["https://accounts.google.com"], certs=signer.certs())
    token = signer.sign(AUDIENCE, CALLER, now=NOW, extra={"iss": "https://accounts.google.com"})

    assert verifier.verify(bearer(token), now=NOW)["iss"] == "https://accounts.google.com"
