"""The intake transaction and the dispatcher against the Firestore emulator."""

from __future__ import annotations

import concurrent.futures
import datetime as dt

import pytest
from google.cloud import firestore

from lib.adapters.cloud_tasks import RecordingTaskScheduler
from lib.adapters.firestore_store import FirestoreIntakeStore, FirestoreOutboxStore
from lib.adapters.mail_files import EmlFileSender
from lib.config.loader import load_config
from lib.domain.clock import FixedClock
from lib.intake.types import Submission
from lib.services.dispatch import LEASE, Dispatcher, DispatchSettings, outbound_email
from lib.services.intake import IntakeService
from tests.conftest import TEST_PROJECT

# A Tuesday morning in Taipei.
NOW = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def client(clean_firestore: str) -> firestore.Client:
    return firestore.Client(project=TEST_PROJECT)


@pytest.fixture
def service(client: firestore.Client) -> IntakeService:
    return IntakeService(load_config(), FirestoreIntakeStore(client), FixedClock(NOW))


def submission(event_id: str | None, email: str = "Mei.Lin@Example.com", **fields: str) -> Submission:
    answers = {"email": email, "name": "林美", "company": "Example Trading", **fields}
    return Submission("webflow", event_id, NOW, answers)


def count(client: firestore.Client, collection: str) -> int:
    return sum(1 for _ in client.collection(collection).stream())


def test_new_lead_commits_everything_at_once(client, service):
    result = service.handle(submission("evt-1"))

    assert result.status == "created"
    assert client.document(f"leads/{result.lead_id}").get().exists
    assert client.document("contact_keys/email:mei.lin@example.com").get().to_dict() == {
        "contact_id": result.contact_id, "created_at": NOW}
    purposes = sorted(doc.to_dict()["purpose"] for doc in client.collection("outbox").stream())
    assert purposes == ["acknowledgement", "assignment", "no_reply_check"]


def test_concurrent_same_event_one_lead(client, service):
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda _: service.handle(submission("evt-same")), range(10)))

    assert sum(not result.duplicate for result in results) == 1
    assert len({result.lead_id for result in results}) == 1
    for collection in ("contacts", "contact_keys", "leads", "deals", "tasks", "followups"):
        assert count(client, collection) == 1, collection
    assert count(client, "outbox") == 3


def test_concurrent_events_same_email_one_contact(client, service):
    # Two different submissions by one person race: the key document makes one contact.
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda index: service.handle(submission(f"evt-{index}")), range(6)))

    assert len({result.contact_id for result in results}) == 1
    assert count(client, "contacts") == 1
    assert count(client, "leads") == 1
    assert sorted(result.status for result in results) == ["created"] + ["matched"] * 5


def test_gmail_dots_and_tag_same_contact(client, service):
    first = service.handle(submission("evt-a", email="mei.lin@gmail.com"))
    second = service.handle(submission("evt-b", email="Mei.Lin+Webinar@GoogleMail.com"))

    assert second.contact_id == first.contact_id
    contact = client.document(f"contacts/{first.contact_id}").get().to_dict()
    assert contact["emails"] == ["mei.lin+webinar@googlemail.com", "mei.lin@gmail.com"]


def test_dispatcher_crash_after_send_sends_once(client, service, tmp_path):
    service.handle(submission("evt-crash"))
    clock = FixedClock(NOW)
    sender = EmlFileSender(tmp_path)
    outbox = FirestoreOutboxStore(client)
    settings = DispatchSettings("http://127.0.0.1:9/functions")
    dispatcher = Dispatcher(outbox, sender, RecordingTaskScheduler(), clock, settings)

    # Simulate a dispatcher that sent the acknowledgement and died before recording it.
    ack_id = next(doc.id for doc in client.collection("outbox").stream() if doc.id.endswith("-ack"))
    record = outbox.claim(ack_id, NOW, NOW + LEASE)
    sender.send(outbound_email(ack_id, record["email"]))
    clock.advance(LEASE + dt.timedelta(seconds=1))

    outcomes = dispatcher.run_once()

    assert outcomes["sent"] == 3
    assert len(list(tmp_path.glob("*.eml"))) == 2
    assert client.document(f"outbox/{ack_id}").get().to_dict()["status"] == "sent"
    assert client.document(f"outbox/{ack_id}").get().to_dict()["attempts"] == 2


def test_dispatcher_second_run_sends_nothing(client, service, tmp_path):
    service.handle(submission("evt-twice"))
    tasks = RecordingTaskScheduler()
    dispatcher = Dispatcher(FirestoreOutboxStore(client), EmlFileSender(tmp_path), tasks, FixedClock(NOW),
                            DispatchSettings("http://127.0.0.1:9/functions"))

    first = dispatcher.run_once()
    second = dispatcher.run_once()

    assert first["sent"] == 3
    assert second["sent"] == 0
    assert len(tasks.tasks) == 1
    assert tasks.tasks[0].url == "http://127.0.0.1:9/functions/followup"


def test_form_edit_drops_removed_answer(client):
    clock = FixedClock(NOW)
    service = IntakeService(load_config(), FirestoreIntakeStore(client), clock)
    answers = {"email": "mei.lin@example.com", "name": "林美", "company": "Example Trading"}
    first = service.handle(Submission("google_forms", "resp-1", NOW, answers))
    clock.advance(dt.timedelta(minutes=5))
    edited = {key: value for key, value in answers.items() if key != "company"}

    second = service.handle(Submission("google_forms", "resp-1", NOW + dt.timedelta(minutes=5), edited))

    lead = client.document(f"leads/{first.lead_id}").get().to_dict()
    assert second.status == "updated"
    assert "company" not in lead["fields"]
    assert lead["contact_id"] == first.contact_id
    event = next(client.collection("events").stream()).to_dict()
    assert event["edits"] == 1
