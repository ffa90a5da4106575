"""The follow-up check and its transaction on the Firestore emulator, with concurrent duplicates."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import os

import pytest
from google.cloud import firestore

from lib.adapters.firestore_followups import FirestoreDocStore
from lib.config.loader import load_config
from lib.domain.clock import FixedClock
from lib.services.followup import FollowupCheck, FollowupService

CONFIG = load_config()
NOW = dt.datetime(2026, 2, 23, 2, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def client(clean_firestore: str) -> firestore.Client:
    client = firestore.Client(project=os.environ["GOOGLE_CLOUD_PROJECT"])
    client.document("contacts/ct-1").set({"display_name": "王大明", "company_name": "好物"})
    client.document("followups/fu-ld-1-no-reply").set({
        "kind": "no_reply", "contact_id": "ct-1", "lead_id": "ld-1", "owner_id": "rep-wang", "status": "scheduled",
        "version": 1, "anchor_at": NOW - dt.timedelta(days=8), "due_at": NOW, "business_days": 3})
    return client


def test_concurrent_duplicates_fire_once(client):
    service = FollowupService(CONFIG, FirestoreDocStore(client), FixedClock(NOW))

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda _: service.check(FollowupCheck("fu-ld-1-no-reply", 1)).status, range(4)))

    assert sorted(outcomes) == ["already_fired"] * 3 + ["fired"]
    assert [doc.id for doc in client.collection("tasks").stream()] == ["tk-fu-ld-1-no-reply-reminder"]
    assert [doc.id for doc in client.collection("outbox").stream()] == ["ob-fu-ld-1-no-reply-reminder-email"]
    assert client.document("followups/fu-ld-1-no-reply").get().get("status") == "fired"


def test_reply_recorded_by_mail_sync_wins(client):
    client.document("contacts/ct-1").update({"last_reply_at": NOW - dt.timedelta(days=1)})
    outcome = FollowupService(CONFIG, FirestoreDocStore(client), FixedClock(NOW)).check(FollowupCheck("fu-ld-1-no-reply", 1))
    assert outcome.status == "replied"
    assert list(client.collection("outbox").stream()) == []
