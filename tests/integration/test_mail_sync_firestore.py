"""Gmail sync against the Firestore emulator: message transactions and the mailbox lease."""

from __future__ import annotations

import concurrent.futures
import datetime as dt

from google.cloud import firestore

from lib.adapters.firestore_mail import FirestoreMailStore
from lib.adapters.firestore_store import FirestoreIntakeStore
from lib.domain.clock import FixedClock
from lib.services import mail_lease
from lib.services.intake import IntakeService
from lib.services.mail_sync import MailSyncService
from tests.conftest import TEST_PROJECT
from tests.unit.mail_sync_support import MAILBOX, NOW, FakeGmail, added, mail_config, raw_resource

LEASE = dt.timedelta(minutes=5)


def test_reply_commits_with_audit(clean_firestore: str):
    client = firestore.Client(project=TEST_PROJECT)
    client.document(f"mailboxes/{MAILBOX}").set({"history_id": 100})
    client.document("contact_keys/email:mei.lin@example.com").set({"contact_id": "ct-mei"})
    client.document("contacts/ct-mei").set({"emails": ["mei.lin@example.com"], "open_deal_id": "dl-1"})
    client.document("deals/dl-1").set({"stage_id": "new", "status": "open", "threads": []})
    client.document("followups/fu-mei").set({"kind": "no_reply", "contact_id": "ct-mei", "status": "scheduled",
                                             "version": 1})
    gmail = FakeGmail()
    gmail.messages["m1"] = raw_resource("m1", {"From": "mei.lin@example.com", "To": MAILBOX,
                                               "Message-ID": "<r1@example.com>", "Subject": "Re: hi"})
    gmail.history[100] = ([added("m1"), added("m1")], 120)
    config, clock = mail_config(), FixedClock(NOW)
    service = MailSyncService(config, FirestoreMailStore(client), gmail,
                              IntakeService(config, FirestoreIntakeStore(client), clock), clock)

    report = service.handle_notification(MAILBOX, 110)

    assert [result.reply for result in report.results] == [True]
    assert client.document(f"mailboxes/{MAILBOX}").get().to_dict()["history_id"] == 120
    assert client.document("followups/fu-mei").get().to_dict()["version"] == 2
    assert client.document("deals/dl-1").get().to_dict()["stage_id"] == "contacted"
    audits = [doc.to_dict() for doc in client.collection("audit").stream()]
    assert {audit["event_key"] for audit in audits} == {f"{MAILBOX}:m1"}
    assert len(audits) >= 3


def test_lease_taken_by_one_of_concurrent_syncs(clean_firestore: str):
    client = firestore.Client(project=TEST_PROJECT)
    client.document(f"mailboxes/{MAILBOX}").set({"history_id": 100})
    store = FirestoreMailStore(client)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        leases = list(pool.map(lambda n: mail_lease.acquire(store, MAILBOX, 100 + n, f"worker-{n}", NOW, LEASE),
                               range(1, 5)))

    statuses = sorted(lease.status for lease in leases)
    assert statuses == ["acquired", "busy", "busy", "busy"]
    doc = client.document(f"mailboxes/{MAILBOX}").get().to_dict()
    busy_ids = [100 + n for n, lease in enumerate(leases, start=1) if lease.status == "busy"]
    assert doc["pending_history_id"] == max(busy_ids)
    assert mail_lease.finish_round(store, MAILBOX, doc["lease_owner"], 101, NOW, LEASE) is True
