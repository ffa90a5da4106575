"""Intake to reminder through the Cloud Tasks emulator, with locally signed OIDC tokens."""

import datetime as dt
import json
import time

import requests

from lib.adapters.cloud_tasks import CloudTasksScheduler
from lib.adapters.firestore_followups import FirestoreDocStore
from lib.adapters.firestore_store import FirestoreOutboxStore
from lib.adapters.mail_files import EmlFileSender
from lib.config.loader import load_config
from lib.domain.clock import SystemClock
from lib.services.dispatch import Dispatcher, DispatchSettings
from lib.services.followup import FollowupService
from tests.conftest import TEST_LOCATION, TEST_PROJECT
from tests.e2e.conftest import INVOKER, local_key_file

DUE_IN = dt.timedelta(seconds=2)
WAIT_SECONDS = 30


def post_lead(url: str) -> dict:
    body = {"name": "林怡君", "email": "yijun.lin@example.com", "company": "測試科技", "message": "想了解方案"}
    response = requests.post(f"{url}/intake_webhook/html", data=json.dumps(body, ensure_ascii=False).encode(),
                             headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["results"][0] if "results" in response.json() else response.json()


def wait_for_status(store, path: str, status: str) -> dict:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        doc = store.document(path).get().to_dict() or {}
        if doc.get("status") == status:
            return doc
        time.sleep(0.3)
    raise AssertionError(f"{path} did not reach status {status!r} within {WAIT_SECONDS}s: {doc!r}")


def test_emulated_task_fires_reminder_once(functions_url, store, oidc_signer, tmp_path, monkeypatch):
    # 1. Intake schedules the no-reply check three business days out.
    lead = post_lead(functions_url)
    followup_id = f"fu-{lead['lead_id']}-no-reply"
    assert store.document(f"followups/{followup_id}").get().to_dict()["version"] == 1

    # 2. Move it to two seconds from now (version 2) and dispatch both tasks to the emulator.
    monkeypatch.setenv("CRM_FUNCTION_BASE_URL", functions_url)
    monkeypatch.setenv("CRM_LOCAL_OIDC_KEY_FILE", str(local_key_file(oidc_signer, tmp_path)))
    clock = SystemClock()
    config = load_config()
    assert FollowupService(config, FirestoreDocStore(store), clock).reschedule(followup_id, clock.now() + DUE_IN) == 2
    dispatcher = Dispatcher(FirestoreOutboxStore(store), EmlFileSender(tmp_path / "outbox"),
                            CloudTasksScheduler(TEST_PROJECT, TEST_LOCATION), clock,
                            DispatchSettings(functions_url, INVOKER))
    outcomes = dispatcher.run_once()
    assert outcomes["sent:no_reply_check"] == 2

    # 3. The emulator calls `followup` at the due time with the signed token.
    followup = wait_for_status(store, f"followups/{followup_id}", "fired")
    time.sleep(1.0)

    assert followup["fired_version"] == 2
    reminders = [doc.id for doc in store.collection("tasks").stream() if doc.id.endswith("-reminder")]
    assert reminders == [f"tk-{followup_id}-reminder"]
    outbox = [doc.id for doc in store.collection("outbox").stream() if "reminder" in doc.id]
    assert outbox == [f"ob-{followup_id}-reminder-email"]


def test_followup_over_http_needs_token(functions_url, store):
    body = {"type": "no_reply_check", "followup_id": "fu-x-no-reply", "version": 1}
    response = requests.post(f"{functions_url}/followup", json=body, timeout=30)
    assert response.status_code == 401
