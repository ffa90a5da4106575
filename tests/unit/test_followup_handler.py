"""The followup and stale_deals HTTP handlers: token checks, fixture shapes, at-least-once calls."""

import datetime as dt
import json
from pathlib import Path

import flask
import pytest

from lib.adapters.cloud_tasks import RecordingTaskScheduler
from lib.adapters.memory_docs import MemoryDocStore
from lib.adapters.memory_store import RecordingMailSender
from lib.adapters.oidc import LocalOidcSigner
from lib.bootstrap import App
from lib.config.loader import load_config
from lib.domain.clock import FixedClock
from lib.entrypoints.followups import handle_followup, handle_stale_deals
from lib.services.dispatch import Dispatcher, DispatchSettings
from lib.services.followup import FollowupService
from lib.services.sequences import SequenceService, SequenceSettings
from lib.services.stale import StaleService

CONFIG = load_config()
BASE_URL = "https://asia-east1-crm-example.cloudfunctions.net"
INVOKER = "tasks-invoker@crm-example.iam.gserviceaccount.com"
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "inputs"
NOW = dt.datetime(2026, 2, 23, 2, 0, tzinfo=dt.timezone.utc)
SIGNER = LocalOidcSigner()


@pytest.fixture
def app(tmp_path, monkeypatch):
    certs = tmp_path / "certs.json"
    certs.write_text(json.dumps(SIGNER.certs()), encoding="utf-8")
    monkeypatch.setenv("CRM_FUNCTION_BASE_URL", BASE_URL)
    monkeypatch.setenv("CRM_INVOKER_EMAILS", INVOKER)
    monkeypatch.setenv("CRM_OIDC_CERTS_FILE", str(certs))
    docs, clock = MemoryDocStore(), FixedClock(NOW)
    dispatcher = Dispatcher(docs.memory, RecordingMailSender(), RecordingTaskScheduler(), clock, DispatchSettings(BASE_URL))
    return App(CONFIG, "demo", None, dispatcher, clock, followups=FollowupService(CONFIG, docs, clock),
               stale=StaleService(CONFIG, docs, clock),
               sequences=SequenceService(CONFIG, docs, clock, SequenceSettings(BASE_URL + "/unsubscribe", None)))


def docs_of(app) -> MemoryDocStore:
    return app.followups._store


def token(function: str, **extra) -> str:
    return SIGNER.sign(f"{BASE_URL}/{function}", INVOKER, now=dt.datetime.now(dt.timezone.utc), extra=extra or None)


def call(handler, app, path, body: bytes, headers: dict):
    with flask.Flask(__name__).test_request_context(path, method="POST", data=body, headers=headers):
        return handler(flask.request, app)


def seed_followup(app, followup_id="fu-ld-1-no-reply"):
    docs_of(app).memory.put("contacts/ct-1", {"display_name": "Amy Chen", "company_name": "Acme"})
    docs_of(app).memory.put(f"followups/{followup_id}", {
        "kind": "no_reply", "contact_id": "ct-1", "lead_id": "ld-1", "owner_id": "rep-wang", "status": "scheduled",
        "version": 1, "anchor_at": NOW - dt.timedelta(days=5), "due_at": NOW, "business_days": 3})


def post_check(app, authorization: str | None, retry_count: str = "0", body: dict | None = None):
    headers = {"Content-Type": "application/json", "X-CloudTasks-TaskRetryCount": retry_count}
    if authorization is not None:
        headers["Authorization"] = authorization
    body = body or {"type": "no_reply_check", "followup_id": "fu-ld-1-no-reply", "version": 1}
    return call(handle_followup, app, "/followup", json.dumps(body).encode(), headers)


def test_followup_without_token_is_401(app):
    seed_followup(app)
    response = post_check(app, None)
    assert response.status_code == 401
    assert docs_of(app).memory.get("followups/fu-ld-1-no-reply")["status"] == "scheduled"


def test_followup_fixture_placeholder_token_is_401(app):
    fixture = json.loads((FIXTURES / "cloud_tasks_retry_request.json").read_text(encoding="utf-8"))
    seed_followup(app)
    response = post_check(app, fixture["http"]["headers"]["Authorization"])
    assert response.status_code == 401


@pytest.mark.parametrize("variant", json.loads((FIXTURES / "oidc_token_claims.json").read_text(encoding="utf-8"))[
    "negative_variants"] if FIXTURES.is_dir() else [], ids=lambda variant: variant["why"])
def test_followup_negative_claims_are_401(app, variant):
    seed_followup(app)
    claims = {key: value for key, value in variant.items() if key != "why"}
    if "exp" in claims:
        claims["iat"] = claims["exp"] - 3600
    email = claims.pop("email", INVOKER)
    audience = claims.pop("aud", f"{BASE_URL}/followup")
    bearer = SIGNER.sign(audience, email, now=dt.datetime.now(dt.timezone.utc), extra=claims or None)

    response = post_check(app, f"Bearer {bearer}")

    assert response.status_code == 401
    assert docs_of(app).memory.get("followups/fu-ld-1-no-reply")["status"] == "scheduled"


def test_token_for_other_function_is_401(app):
    seed_followup(app)
    assert post_check(app, f"Bearer {token('stale_deals')}").status_code == 401


def test_duplicate_and_retried_calls_act_once(app):
    seed_followup(app)
    first = post_check(app, f"Bearer {token('followup')}")
    paths = docs_of(app).memory.paths()
    duplicate = post_check(app, f"Bearer {token('followup')}")
    retried = post_check(app, f"Bearer {token('followup')}", retry_count="2")

    assert (first.status_code, first.json["status"]) == (200, "fired")
    assert (duplicate.status_code, duplicate.json["status"]) == (200, "already_fired")
    assert (retried.status_code, retried.json["status"]) == (200, "already_fired")
    assert docs_of(app).memory.paths() == paths
    assert [key for key in docs_of(app).memory.docs("outbox")] == ["ob-fu-ld-1-no-reply-reminder-email"]


def test_fixture_retry_for_deleted_lead_is_2xx(app):
    fixture = json.loads((FIXTURES / "cloud_tasks_retry_request.json").read_text(encoding="utf-8"))
    headers = {k: v for k, v in fixture["http"]["headers"].items() if k != "Authorization"}
    headers["Authorization"] = f"Bearer {token('followup')}"

    response = call(handle_followup, app, "/followup", json.dumps(fixture["body"]).encode(), headers)

    assert response.status_code == 200
    assert response.json["status"] == "missing"
    assert docs_of(app).memory.paths() == []


def test_invalid_body_is_dropped_with_2xx(app):
    response = call(handle_followup, app, "/followup", b"{not json", {"Authorization": f"Bearer {token('followup')}"})
    assert response.status_code == 200
    assert response.json["status"] == "ignored"


def scheduler_request(app, authorization: str | None):
    fixture = json.loads((FIXTURES / "cloud_scheduler_request.json").read_text(encoding="utf-8"))
    headers = {k: v for k, v in fixture["http"]["headers"].items() if k != "Authorization"}
    if authorization:
        headers["Authorization"] = authorization
    return call(handle_stale_deals, app, "/stale_deals", fixture["raw_body"].encode(), headers)


def seed_stale_deal(app):
    docs_of(app).memory.put("deals/dl-1", {
        "name": "Acme 網站改版", "owner_id": "rep-wang", "stage_id": "contacted", "status": "open",
        "last_activity_at": dt.datetime(2025, 5, 20, tzinfo=dt.timezone.utc),
        "stale_due_at": dt.datetime(2025, 5, 27, tzinfo=dt.timezone.utc)})


def test_stale_fixture_uses_schedule_time(app):
    seed_stale_deal(app)
    response = scheduler_request(app, f"Bearer {token('stale_deals')}")

    assert response.status_code == 200
    assert response.json["schedule_time"] == "2025-06-01T00:00:00+00:00"
    assert response.json["run_date"] == "2025-06-01"
    assert response.json["flagged"] == 1
    assert response.json["digests"] == {"mgr-chen": "created", "rep-wang": "created"}


def test_stale_repeated_run_sends_nothing_twice(app):
    seed_stale_deal(app)
    scheduler_request(app, f"Bearer {token('stale_deals')}")
    paths = docs_of(app).memory.paths()

    again = scheduler_request(app, f"Bearer {token('stale_deals')}")

    assert again.json["digests"] == {"mgr-chen": "already_sent", "rep-wang": "already_sent"}
    assert again.json["tasks_created"] == 0
    assert docs_of(app).memory.paths() == paths


def test_stale_fixture_placeholder_token_is_401(app):
    seed_stale_deal(app)
    fixture = json.loads((FIXTURES / "cloud_scheduler_request.json").read_text(encoding="utf-8"))
    response = scheduler_request(app, fixture["http"]["headers"]["Authorization"])
    assert response.status_code == 401
    assert docs_of(app).memory.docs("digests") == {}
