"""Signature schemes: fixture signatures, tolerance, tampering and missing secrets."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from pathlib import Path

import pytest

from lib.config.schema import Signature, Source
from lib.errors import SignatureError
from lib.intake.signatures import hubspot_v3_signature, sign_crm_hmac, verify_signature

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
FIXTURES = SHARED / "fixtures" / "inputs"
SECRET = b"demo-secret-for-tests"
UTC = dt.timezone.utc


def _fixture(name: str) -> dict:
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"shared fixture {name} is not available in this checkout")
    return json.loads(path.read_text(encoding="utf-8"))


def _source(scheme: str, source_id: str = "demo", tolerance: int = 300) -> Source:
    return Source(id=source_id, vendor="html", signature=Signature(scheme=scheme, tolerance_seconds=tolerance))


def _verify(source: Source, secret: bytes | None, headers: dict, body: bytes, *, now: dt.datetime, method: str = "POST", url: str = "https://crm.example.com/intake_webhook/demo", query: dict | None = None) -> None:
    verify_signature(source, secret, headers=headers, raw_body=body, method=method, url=url, query=query or {}, now=now)


def _webflow_case() -> tuple[dict, bytes, bytes, dt.datetime]:
    fixture = _fixture("webhook_webflow_form_submission.json")
    headers = dict(fixture["http"]["headers"])
    secret = fixture["_signature_test"]["secret"].encode()
    now = dt.datetime.fromtimestamp(int(headers["x-webflow-timestamp"]) / 1000 + 30, tz=UTC)
    return headers, fixture["raw_body"].encode(), secret, now


def _typeform_case() -> tuple[dict, bytes, bytes]:
    fixture = _fixture("webhook_typeform_form_response.json")
    return dict(fixture["http"]["headers"]), fixture["raw_body"].encode(), fixture["_signature_test"]["secret"].encode()


def test_webflow_placeholder_signature_rejected():
    headers, body, secret, now = _webflow_case()
    with pytest.raises(SignatureError, match="wrong x-webflow-signature"):
        _verify(_source("webflow"), secret, headers, body, now=now)


def test_webflow_valid_signature_accepted():
    headers, body, secret, now = _webflow_case()
    headers["x-webflow-signature"] = _fixture("webhook_webflow_form_submission.json")["_signature_test"]["valid_x_webflow_signature"]
    _verify(_source("webflow"), secret, headers, body, now=now)


def test_webflow_headers_match_case_insensitively():
    headers, body, secret, now = _webflow_case()
    valid = _fixture("webhook_webflow_form_submission.json")["_signature_test"]["valid_x_webflow_signature"]
    upper = {"X-Webflow-Timestamp": headers["x-webflow-timestamp"], "X-WEBFLOW-SIGNATURE": valid}
    _verify(_source("webflow"), secret, upper, body, now=now)


def test_webflow_expired_timestamp_rejected():
    headers, body, secret, now = _webflow_case()
    headers["x-webflow-signature"] = _fixture("webhook_webflow_form_submission.json")["_signature_test"]["valid_x_webflow_signature"]
    with pytest.raises(SignatureError, match=r"expired x-webflow-timestamp: .* tolerance of 300 s"):
        _verify(_source("webflow"), secret, headers, body, now=now + dt.timedelta(hours=1))


def test_webflow_one_byte_change_rejected():
    headers, body, secret, now = _webflow_case()
    headers["x-webflow-signature"] = _fixture("webhook_webflow_form_submission.json")["_signature_test"]["valid_x_webflow_signature"]
    tampered = body.replace(b"Ya-Ting", b"Ya-Tinh")
    with pytest.raises(SignatureError, match="wrong"):
        _verify(_source("webflow"), secret, headers, tampered, now=now)


def test_webflow_missing_timestamp_rejected():
    headers, body, secret, now = _webflow_case()
    del headers["x-webflow-timestamp"]
    with pytest.raises(SignatureError, match="missing x-webflow-timestamp header"):
        _verify(_source("webflow"), secret, headers, body, now=now)


def test_typeform_placeholder_signature_rejected():
    headers, body, secret = _typeform_case()
    with pytest.raises(SignatureError, match="Typeform-Signature"):
        _verify(_source("typeform"), secret, headers, body, now=dt.datetime.now(UTC))


def test_typeform_valid_signature_accepted():
    headers, body, secret = _typeform_case()
    headers["Typeform-Signature"] = _fixture("webhook_typeform_form_response.json")["_signature_test"]["valid_Typeform_Signature"]
    _verify(_source("typeform"), secret, headers, body, now=dt.datetime.now(UTC))


def test_typeform_one_byte_change_rejected():
    headers, body, secret = _typeform_case()
    headers["Typeform-Signature"] = _fixture("webhook_typeform_form_response.json")["_signature_test"]["valid_Typeform_Signature"]
    with pytest.raises(SignatureError, match="wrong Typeform-Signature"):
        _verify(_source("typeform"), secret, headers, body + b" ", now=dt.datetime.now(UTC))


def test_typeform_signature_without_prefix_rejected():
    headers, body, secret = _typeform_case()
    valid = _fixture("webhook_typeform_form_response.json")["_signature_test"]["valid_Typeform_Signature"]
    headers["Typeform-Signature"] = valid.removeprefix("sha256=")
    with pytest.raises(SignatureError, match="malformed Typeform-Signature"):
        _verify(_source("typeform"), secret, headers, body, now=dt.datetime.now(UTC))


def test_crm_hmac_round_trip_accepted():
    now = dt.datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    body = b'{"responseId": "r1"}'
    _verify(_source("crm_hmac"), SECRET, sign_crm_hmac(SECRET, body, int(now.timestamp())), body, now=now)


def test_crm_hmac_expired_timestamp_rejected():
    now = dt.datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    body = b'{"responseId": "r1"}'
    headers = sign_crm_hmac(SECRET, body, int(now.timestamp()) - 301)
    with pytest.raises(SignatureError, match=r"expired X-CRM-Timestamp: the timestamp is 301 s .* tolerance of 300 s"):
        _verify(_source("crm_hmac"), SECRET, headers, body, now=now)


def test_crm_hmac_future_timestamp_rejected():
    now = dt.datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    body = b"{}"
    with pytest.raises(SignatureError, match="expired X-CRM-Timestamp"):
        _verify(_source("crm_hmac"), SECRET, sign_crm_hmac(SECRET, body, int(now.timestamp()) + 900), body, now=now)


def test_crm_hmac_one_byte_change_rejected():
    now = dt.datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    headers = sign_crm_hmac(SECRET, b'{"a": 1}', int(now.timestamp()))
    with pytest.raises(SignatureError, match="wrong X-CRM-Signature"):
        _verify(_source("crm_hmac"), SECRET, headers, b'{"a": 2}', now=now)


def test_crm_hmac_missing_signature_rejected():
    now = dt.datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    with pytest.raises(SignatureError, match="missing X-CRM-Timestamp header"):
        _verify(_source("crm_hmac"), SECRET, {"Content-Type": "application/json"}, b"{}", now=now)


def test_crm_hmac_malformed_signature_rejected():
    now = dt.datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    headers = {"X-CRM-Timestamp": str(int(now.timestamp())), "X-CRM-Signature": "sha256=not-hex"}
    with pytest.raises(SignatureError, match="malformed X-CRM-Signature"):
        _verify(_source("crm_hmac"), SECRET, headers, b"{}", now=now)


def test_missing_secret_names_environment_variable():
    with pytest.raises(SignatureError, match="secret not configured: set CRM_SECRET_WEB_SITE"):
        _verify(_source("crm_hmac", source_id="web-site"), None, {}, b"{}", now=dt.datetime.now(UTC))


def test_tally_signature_accepted():
    body = b'{"eventId":"e1"}'
    signature = base64.b64encode(hmac.new(SECRET, body, hashlib.sha256).digest()).decode()
    _verify(_source("tally"), SECRET, {"tally-signature": signature}, body, now=dt.datetime.now(UTC))


def test_tally_wrong_signature_rejected():
    signature = base64.b64encode(hmac.new(b"other", b"{}", hashlib.sha256).digest()).decode()
    with pytest.raises(SignatureError, match="wrong Tally-Signature"):
        _verify(_source("tally"), SECRET, {"Tally-Signature": signature}, b"{}", now=dt.datetime.now(UTC))


def test_hubspot_v3_signature_accepted_with_encoded_url():
    now = dt.datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    timestamp = int(now.timestamp() * 1000)
    body = b'[{"email":"a@example.com"}]'
    signed_url = "https://crm.example.com/intake_webhook/hubspot?portal=1:2"
    called_url = "https://crm.example.com/intake_webhook/hubspot?portal=1%3A2"
    headers = {
        "X-HubSpot-Signature-v3": hubspot_v3_signature(SECRET, "POST", signed_url, body, timestamp),
        "X-HubSpot-Request-Timestamp": str(timestamp),
    }
    _verify(_source("hubspot_v3"), SECRET, headers, body, now=now, url=called_url)


def test_hubspot_v3_other_method_rejected():
    now = dt.datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    timestamp = int(now.timestamp() * 1000)
    url = "https://crm.example.com/intake_webhook/hubspot"
    headers = {
        "X-HubSpot-Signature-v3": hubspot_v3_signature(SECRET, "POST", url, b"[]", timestamp),
        "X-HubSpot-Request-Timestamp": str(timestamp),
    }
    with pytest.raises(SignatureError, match="wrong X-HubSpot-Signature-v3"):
        _verify(_source("hubspot_v3"), SECRET, headers, b"[]", now=now, url=url, method="PUT")


def test_hubspot_v3_old_timestamp_rejected():
    now = dt.datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    timestamp = int(now.timestamp() * 1000) - 6 * 60 * 1000
    url = "https://crm.example.com/intake_webhook/hubspot"
    headers = {
        "X-HubSpot-Signature-v3": hubspot_v3_signature(SECRET, "POST", url, b"[]", timestamp),
        "X-HubSpot-Request-Timestamp": str(timestamp),
    }
    with pytest.raises(SignatureError, match="expired X-HubSpot-Request-Timestamp"):
        _verify(_source("hubspot_v3"), SECRET, headers, b"[]", now=now, url=url)


def test_shared_secret_header_accepted():
    _verify(_source("shared_secret"), SECRET, {"x-crm-secret": SECRET.decode()}, b"a=1", now=dt.datetime.now(UTC))


def test_shared_secret_query_key_accepted():
    _verify(_source("shared_secret"), SECRET, {}, b"a=1", now=dt.datetime.now(UTC), query={"key": SECRET.decode()})


def test_shared_secret_wrong_value_rejected():
    with pytest.raises(SignatureError, match="wrong shared secret"):
        _verify(_source("shared_secret"), SECRET, {"X-CRM-Secret": "guess"}, b"a=1", now=dt.datetime.now(UTC))


def test_shared_secret_missing_rejected():
    with pytest.raises(SignatureError, match="missing X-CRM-Secret header or 'key' query parameter"):
        _verify(_source("shared_secret"), SECRET, {}, b"a=1", now=dt.datetime.now(UTC))


def test_scheme_none_accepts_unsigned_request():
    _verify(_source("none"), None, {}, b"name=x", now=dt.datetime.now(UTC))
