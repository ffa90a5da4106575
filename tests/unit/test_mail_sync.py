"""Gmail sync service: cursor, lease, full sync and idempotency, with a fake Gmail and an in-memory store."""

from __future__ import annotations

import datetime as dt

import pytest

from lib.errors import TransientError
from lib.services import mail_lease
from lib.services.mail_sync import collect_changes, lead_message
from tests.unit.mail_sync_support import (
    MAILBOX,
    NOW,
    FakeGmail,
    added,
    expired,
    make_service,
    raw_resource,
    seed_prospect,
    unavailable,
)

REPLY_HEADERS = {"From": "Mei Lin <mei.lin@example.com>", "To": MAILBOX, "Subject": "Re: Proposal",
                 "Message-ID": "<reply-1@example.com>", "Date": "Fri, 30 May 2025 10:14:02 +0800"}


def cursor_of(store) -> int | None:
    return (store.get(f"mailboxes/{MAILBOX}") or {}).get("history_id")


def email_activities(store) -> dict:
    return {key: doc for key, doc in store.docs("activities").items() if doc.get("kind") == "email"}


def reply_setup():
    gmail = FakeGmail()
    gmail.messages["m1"] = raw_resource("m1", REPLY_HEADERS, "Yes, let's talk.")
    gmail.history[100] = ([added("m1")], 120)
    service, store, clock = make_service(gmail)
    store.put(f"mailboxes/{MAILBOX}", {"history_id": 100})
    seed_prospect(store, "ct-mei", "mei.lin@example.com", deal_id="dl-1")
    return gmail, service, store, clock


def test_stale_notification_never_moves_cursor_back():
    gmail, service, store, _ = reply_setup()
    store.put(f"mailboxes/{MAILBOX}", {"history_id": 1000})

    report = service.handle_notification(MAILBOX, 999)

    assert report.status == "stale"
    assert cursor_of(store) == 1000
    assert gmail.calls == []


def test_history_ids_compare_as_integers():
    gmail, service, store, _ = reply_setup()
    store.put(f"mailboxes/{MAILBOX}", {"history_id": "999"})
    gmail.history[999] = ([], 1000)

    report = service.handle_notification(MAILBOX, 1000)

    assert report.status == "synced"
    assert cursor_of(store) == 1000


def test_cursor_moves_after_success():
    _, service, store, _ = reply_setup()

    report = service.handle_notification(MAILBOX, 110)

    assert report.cursor == 120
    assert cursor_of(store) == 120
    assert store.get(f"mailboxes/{MAILBOX}")["lease_owner"] is None


def test_failed_history_keeps_cursor_and_releases_lease():
    gmail, service, store, _ = reply_setup()
    gmail.history[100] = unavailable()

    with pytest.raises(TransientError):
        service.handle_notification(MAILBOX, 110)

    assert cursor_of(store) == 100
    assert store.get(f"mailboxes/{MAILBOX}")["lease_owner"] is None
    assert email_activities(store) == {}


def test_failed_fetch_keeps_cursor():
    gmail, service, store, _ = reply_setup()

    def failing_get(*args, **kwargs):
        raise TransientError("messages.get failed for 1 of 1 messages with HTTP 500; retry the batch")

    gmail.get_messages = failing_get
    with pytest.raises(TransientError):
        service.handle_notification(MAILBOX, 110)

    assert cursor_of(store) == 100


def test_expired_history_runs_bounded_full_sync():
    gmail, service, store, _ = reply_setup()
    gmail.history[100] = expired(100)
    gmail.listed_ids = ["m1", "gone"]
    gmail.profile_history_id = 5000

    report = service.handle_notification(MAILBOX, 110)

    assert report.full_syncs == 1
    assert cursor_of(store) == 5000
    assert gmail.calls[:3] == ["history:100", "profile", "list:newer_than:7d:200"]
    assert len(email_activities(store)) == 1


def test_missing_cursor_runs_full_sync():
    gmail, service, store, _ = reply_setup()
    store.put(f"mailboxes/{MAILBOX}", {})
    gmail.profile_history_id = 777

    service.handle_notification(MAILBOX, 110)

    assert cursor_of(store) == 777
    assert "profile" in gmail.calls


def test_duplicate_records_and_redelivery_log_once():
    gmail, service, store, _ = reply_setup()
    gmail.history[100] = ([added("m1"), added("m1")], 120)

    first = service.handle_notification(MAILBOX, 110)
    store.put(f"mailboxes/{MAILBOX}", {"history_id": 100})
    second = service.handle_notification(MAILBOX, 110)

    assert [r.status for r in first.results] == ["logged"]
    assert [r.status for r in second.results] == ["duplicate"]
    assert len(email_activities(store)) == 1
    assert store.get("contacts/ct-mei")["replies"] == 1


def test_same_message_in_two_mailboxes_logs_once():
    gmail, service, store, _ = reply_setup()
    other = "rep@example.com"
    config = service._config.model_copy(update={"mail": service._config.mail.model_copy(
        update={"mailboxes": (MAILBOX, other)})})
    service._config = config
    gmail.messages["m2"] = raw_resource("m2", {**REPLY_HEADERS, "Cc": other})
    gmail.history[50] = ([added("m2")], 60)
    store.put(f"mailboxes/{other}", {"history_id": 50})

    service.handle_notification(MAILBOX, 110)
    report = service.handle_notification(other, 55)

    assert report.results[0].status == "duplicate"
    assert len(email_activities(store)) == 1


def test_busy_lease_records_pending_history_id():
    gmail, service, store, _ = reply_setup()
    mail_lease.acquire(store, MAILBOX, 105, "other-worker", NOW, service._lease_length)

    report = service.handle_notification(MAILBOX, 130)
    again = service.handle_notification(MAILBOX, 125)

    assert report.status == "busy"
    assert again.status == "busy"
    assert store.get(f"mailboxes/{MAILBOX}")["pending_history_id"] == 130
    assert gmail.calls == []


def test_pending_history_id_triggers_another_round():
    gmail, service, store, _ = reply_setup()
    gmail.history[120] = ([], 140)

    def concurrent_notification():
        # A second notification arrives while the first one syncs.
        if gmail.calls.count("history:100") == 1 and len(gmail.calls) == 1:
            assert service.handle_notification(MAILBOX, 135).status == "busy"

    gmail.on_list_history = concurrent_notification
    report = service.handle_notification(MAILBOX, 110)

    assert report.rounds == 2
    assert gmail.calls.count("history:120") == 1
    assert cursor_of(store) == 140
    assert store.get(f"mailboxes/{MAILBOX}")["lease_owner"] is None


def test_expired_lease_is_taken_over():
    gmail, service, store, clock = reply_setup()
    mail_lease.acquire(store, MAILBOX, 105, "dead-worker", NOW, service._lease_length)
    clock.advance(service._lease_length * 2)

    report = service.handle_notification(MAILBOX, 110)

    assert report.status == "synced"


def test_unknown_mailbox_creates_nothing():
    gmail, service, store, _ = reply_setup()
    before = store.paths()

    report = service.handle_notification("unknown-mailbox@example.com", 77)

    assert report.status == "unknown_mailbox"
    assert store.paths() == before


def test_collect_changes_skips_drafts_and_counts_deletes():
    records = [added("a", ["DRAFT"]), added("b", ["SENT"]), {"messagesDeleted": [{"message": {"id": "c"}}]},
               {"labelsAdded": [{"message": {"id": "d", "labelIds": ["SENT"]}, "labelIds": ["SENT"]}]},
               {"labelsAdded": [{"message": {"id": "e", "labelIds": ["SPAM"]}, "labelIds": ["SPAM"]}]}]

    changes = collect_changes(records)

    assert list(changes.added) == ["b", "d"]
    assert changes.spam == ["e"]
    assert changes.drafts == 1
    assert changes.deleted == 1


def test_lead_message_drops_signature_and_quote():
    body = "Need a quote.\n\nOn Fri, Mei wrote:\n> old text\n"
    assert lead_message(body) == "Need a quote."
    assert lead_message("Hi\n-- \nSigned") == "Hi"


def test_copied_contact_is_not_a_reply():
    gmail, service, store, _ = reply_setup()
    gmail.messages["m1"] = raw_resource("m1", {
        "From": "Alice <alice@example-crm.tw>", "To": MAILBOX, "Cc": "Mei Lin <mei.lin@example.com>",
        "Subject": "Re: Proposal", "Message-ID": "<cc-1@example-crm.tw>",
        "Date": "Fri, 30 May 2025 10:14:02 +0800"}, "Looping in Mei.")

    service.handle_notification(MAILBOX, 120)

    contact = store.get("contacts/ct-mei")
    assert contact.get("last_inbound_at") is None
    assert store.get("followups/fu-ct-mei")["status"] == "scheduled"


def test_auto_reply_keeps_stale_clock():
    gmail, service, store, _ = reply_setup()
    idle_since = NOW - dt.timedelta(days=60)
    store.put("deals/dl-1", {"stage_id": "new", "status": "open", "threads": [], "contact_id": "ct-mei",
                             "last_activity_at": idle_since, "stale_due_at": idle_since + dt.timedelta(days=3)})
    gmail.messages["m1"] = raw_resource("m1", REPLY_HEADERS | {"Auto-Submitted": "auto-replied",
                                                               "Subject": "Out of office"}, "Away until Monday.")

    service.handle_notification(MAILBOX, 120)

    deal = store.get("deals/dl-1")
    assert deal["last_activity_at"] == idle_since
    assert deal["stale_due_at"] == idle_since + dt.timedelta(days=3)


def test_late_round_keeps_new_holders_lease():
    _, service, store, clock = reply_setup()
    mail_lease.acquire(store, MAILBOX, 105, "worker-a", NOW, service._lease_length)
    clock.advance(service._lease_length * 2)
    mail_lease.acquire(store, MAILBOX, 106, "worker-b", clock.now(), service._lease_length)

    again = mail_lease.finish_round(store, MAILBOX, "worker-a", 110, clock.now(), service._lease_length)

    assert again is False
    assert store.get(f"mailboxes/{MAILBOX}")["lease_owner"] == "worker-b"
    assert cursor_of(store) == 110


def test_pending_history_id_survives_early_stop():
    _, service, store, _ = reply_setup()
    mail_lease.acquire(store, MAILBOX, 105, "worker-a", NOW, service._lease_length)
    mail_lease.acquire(store, MAILBOX, 1005, "worker-b", NOW, service._lease_length)

    mail_lease.finish_round(store, MAILBOX, "worker-a", 150, NOW, service._lease_length)
    mail_lease.release(store, MAILBOX, "worker-a")

    assert store.get(f"mailboxes/{MAILBOX}")["pending_history_id"] == 1005
    assert mail_lease.acquire(store, MAILBOX, 140, "worker-c", NOW, service._lease_length).status == "acquired"
