import dataclasses
import datetime as dt
import zoneinfo

import pytest

from lib.adapters.cloud_tasks import RecordingTaskScheduler, task_name
from lib.adapters.memory_store import MemoryStore, RecordingMailSender
from lib.config.loader import load_config
from lib.domain.clock import FixedClock
from lib.intake.types import Submission
from lib.ports import ScheduledTask
from lib.services.dispatch import LEASE, DispatchSettings, Dispatcher, backoff, contact_suppression, outbound_email
from lib.services.intake import IntakeService

CONFIG = load_config()
TAIPEI = zoneinfo.ZoneInfo("Asia/Taipei")
START = dt.datetime(2026, 3, 9, 10, 0, tzinfo=TAIPEI)
BASE_URL = "https://asia-east1-crm-demo.cloudfunctions.net/"
LEAD = {"name": "王大明", "email": "daming.wang@acme.com.tw", "phone": "0912-345-678", "company": "台灣好物"}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def mail() -> RecordingMailSender:
    return RecordingMailSender()


@pytest.fixture
def tasks() -> RecordingTaskScheduler:
    return RecordingTaskScheduler()


@pytest.fixture
def dispatcher(store, mail, tasks, clock) -> Dispatcher:
    settings = DispatchSettings(function_base_url=BASE_URL, tasks_service_account="tasks@crm-demo.iam.gserviceaccount.com")
    return Dispatcher(store, mail, tasks, clock, settings)


def email_record(now: dt.datetime, to: str = "daming.wang@acme.com.tw") -> dict:
    return {
        "kind": "email", "purpose": "acknowledgement", "status": "pending", "attempts": 0, "not_before": now,
        "created_at": now,
        "email": {"sender": "mei.wang@example-crm.tw", "sender_name": "王小美", "to": [to],
                  "subject": "感謝您的來信", "text_body": "您好", "message_id": "<ob-1@example-crm.tw>"},
    }


def intake_lead(store: MemoryStore, clock: FixedClock) -> str:
    """Run one lead through the intake and return its lead id."""
    service = IntakeService(CONFIG, store, clock)
    return service.handle(Submission("webflow", "evt-1", clock.now(), dict(LEAD))).lead_id


def expected_task(store: MemoryStore, lead_id: str):
    """Build the task the dispatcher would schedule for a lead's no-reply check."""
    spec = store.get(f"outbox/ob-{lead_id}-no-reply")["task"]
    url = BASE_URL.rstrip("/") + "/followup"
    return ScheduledTask(queue=spec["queue"], name=task_name(spec["logical_key"], 1), url=url,
                         payload=spec["payload"], schedule_time=spec["schedule_time"])


def test_each_pending_email_sent_once(dispatcher, store, mail, clock):
    lead_id = intake_lead(store, clock)

    outcomes = dispatcher.run_once()

    assert sorted(mail.sent) == [f"ob-{lead_id}-ack", f"ob-{lead_id}-assignment"]
    assert len(mail.calls) == 2
    assert outcomes["sent"] == 3


def test_sent_records_marked_sent(dispatcher, store, clock):
    lead_id = intake_lead(store, clock)

    dispatcher.run_once()

    record = store.get(f"outbox/ob-{lead_id}-ack")
    assert record["status"] == "sent"
    assert record["provider_id"] == f"recorded:ob-{lead_id}-ack"
    assert record["sent_at"] == clock.now()
    assert record["attempts"] == 1
    assert record["lease_until"] is None


def test_sent_email_matches_record(dispatcher, store, mail, clock):
    lead_id = intake_lead(store, clock)

    dispatcher.run_once()

    ack = mail.sent[f"ob-{lead_id}-ack"]
    assert ack.to == ("daming.wang@acme.com.tw",)
    assert ack.sender == "mei.wang@example-crm.tw"
    assert ack.message_id == f"<ob-{lead_id}-ack@example-crm.tw>"


def test_second_run_sends_nothing(dispatcher, store, mail, tasks, clock):
    intake_lead(store, clock)
    dispatcher.run_once()

    outcomes = dispatcher.run_once()

    assert sum(outcomes.values()) == 0
    assert len(mail.calls) == 2
    assert len(tasks.tasks) == 1


def test_transient_failure_stays_pending(dispatcher, store, mail, clock):
    store.put("outbox/ob-1", email_record(clock.now()))
    mail.fail_next(1)

    outcomes = dispatcher.run_once()

    record = store.get("outbox/ob-1")
    assert outcomes["retrying"] == 1
    assert record["status"] == "pending"
    assert record["not_before"] == clock.now() + backoff(1)
    assert record["attempts"] == 1
    assert "requested failure" in record["last_error"]
    assert mail.sent == {}


def test_transient_failure_waits_for_backoff(dispatcher, store, mail, clock):
    store.put("outbox/ob-1", email_record(clock.now()))
    mail.fail_next(1)
    dispatcher.run_once()

    clock.advance(backoff(1) - dt.timedelta(seconds=1))
    early = dispatcher.run_once()

    assert sum(early.values()) == 0
    assert mail.sent == {}


def test_transient_failure_sent_later(dispatcher, store, mail, clock):
    store.put("outbox/ob-1", email_record(clock.now()))
    mail.fail_next(1)
    dispatcher.run_once()

    clock.advance(backoff(1))
    outcomes = dispatcher.run_once()

    assert outcomes["sent"] == 1
    assert list(mail.sent) == ["ob-1"]
    assert store.get("outbox/ob-1")["status"] == "sent"
    assert store.get("outbox/ob-1")["attempts"] == 2


def test_backoff_doubles_and_caps():
    assert [backoff(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert backoff(20) == dt.timedelta(hours=1)


def test_repeated_transient_failures_give_up(dispatcher, store, mail, clock):
    store.put("outbox/ob-1", email_record(clock.now()))
    mail.fail_next(20)

    for _ in range(20):
        dispatcher.run_once()
        clock.advance(dt.timedelta(hours=1))

    record = store.get("outbox/ob-1")
    assert record["status"] == "failed"
    assert record["attempts"] == 8
    assert record["last_error"].startswith("gave up after 8 attempts")


def test_permanent_failure_marks_failed(dispatcher, store, mail, clock):
    store.put("outbox/ob-1", email_record(clock.now()))
    mail.fail_next(1, permanent=True)

    outcomes = dispatcher.run_once()

    record = store.get("outbox/ob-1")
    assert outcomes["failed"] == 1
    assert record["status"] == "failed"
    assert record["failed_at"] == clock.now()
    assert "requested failure" in record["last_error"]


def test_failed_record_not_retried(dispatcher, store, mail, clock):
    store.put("outbox/ob-1", email_record(clock.now()))
    mail.fail_next(1, permanent=True)
    dispatcher.run_once()

    clock.advance(dt.timedelta(days=1))
    dispatcher.run_once()

    assert mail.calls == ["ob-1"]


def test_unknown_kind_marks_failed(dispatcher, store, clock):
    store.put("outbox/ob-1", email_record(clock.now()) | {"kind": "fax"})

    dispatcher.run_once()

    assert "unknown kind 'fax'" in store.get("outbox/ob-1")["last_error"]


def test_live_claim_not_taken(dispatcher, store, mail, clock):
    store.put("outbox/ob-1", email_record(clock.now()))
    store.claim("ob-1", clock.now(), clock.now() + LEASE)

    clock.advance(LEASE - dt.timedelta(seconds=1))
    dispatcher.run_once()

    assert mail.calls == []
    assert store.get("outbox/ob-1")["status"] == "sending"


def test_expired_claim_retried_without_second_copy(dispatcher, store, mail, clock):
    # A dispatcher claimed the record and sent it, then stopped before recording the outcome.
    store.put("outbox/ob-1", email_record(clock.now()))
    record = store.claim("ob-1", clock.now(), clock.now() + LEASE)
    mail.send(outbound_email("ob-1", record["email"]))

    clock.advance(LEASE)
    outcomes = dispatcher.run_once()

    assert outcomes["sent"] == 1
    assert mail.calls == ["ob-1", "ob-1"]
    assert len(mail.sent) == 1
    assert store.get("outbox/ob-1")["status"] == "sent"
    assert store.get("outbox/ob-1")["attempts"] == 2


def test_cloud_task_scheduled_by_name(dispatcher, store, tasks, clock):
    lead_id = intake_lead(store, clock)
    followup_id = f"fu-{lead_id}-no-reply"

    dispatcher.run_once()

    [task] = tasks.tasks
    assert task.name == task_name(followup_id, 1)
    assert task.url == "https://asia-east1-crm-demo.cloudfunctions.net/followup"
    assert task.audience == task.url
    assert task.queue == "crm-followups"
    assert task.schedule_time == dt.datetime(2026, 3, 12, 10, 0, tzinfo=TAIPEI)
    assert task.payload == {"type": "no_reply_check", "followup_id": followup_id, "version": 1}
    assert task.oidc_service_account == "tasks@crm-demo.iam.gserviceaccount.com"


def test_cloud_task_record_marked_sent(dispatcher, store, clock):
    lead_id = intake_lead(store, clock)
    followup_id = f"fu-{lead_id}-no-reply"

    dispatcher.run_once()

    record = store.get(f"outbox/ob-{lead_id}-no-reply")
    assert record["status"] == "sent"
    assert record["provider_id"] == f"task:{task_name(followup_id, 1)}"


def test_existing_task_counts_as_sent(dispatcher, store, tasks, clock):
    lead_id = intake_lead(store, clock)
    tasks.schedule(expected_task(store, lead_id))

    dispatcher.run_once()

    assert store.get(f"outbox/ob-{lead_id}-no-reply")["provider_id"].endswith(":already-existed")
    assert len(tasks.tasks) == 1


def test_due_respects_limit(store, clock):
    for index in range(3):
        store.put(f"outbox/ob-{index}", email_record(clock.now() - dt.timedelta(minutes=index)))

    assert store.due(clock.now(), 2) == ["ob-2", "ob-1"]


def test_sender_idempotent_on_outbox_id(mail):
    email = outbound_email("ob-1", email_record(START)["email"])

    first = mail.send(email)
    second = mail.send(dataclasses.replace(email, subject="changed"))

    assert first == second == "recorded:ob-1"
    assert mail.sent == {"ob-1": email}


class _BrokenScheduler(RecordingTaskScheduler):
    def schedule(self, task):
        raise RuntimeError("queue missing")


def test_unexpected_error_does_not_block_others(store, mail, clock):
    intake_lead(store, clock)
    dispatcher = Dispatcher(store, mail, _BrokenScheduler(), clock, DispatchSettings(function_base_url=BASE_URL))

    outcomes = dispatcher.run_once()

    assert outcomes["sent"] == 2
    assert outcomes["retrying"] == 1
    task_record = next(doc for doc in store.docs("outbox").values() if doc["kind"] == "cloud_task")
    assert task_record["status"] == "pending"


def test_opted_out_contact_step_suppressed(store, mail, tasks, clock):
    store.put("contacts/ct-1", {"opted_out": True})
    store.put("outbox/ob-step", email_record(START) | {"purpose": "sequence_step", "contact_id": "ct-1"})
    suppression = contact_suppression(lambda contact_id: store.get(f"contacts/{contact_id}"))
    dispatcher = Dispatcher(store, mail, tasks, clock, DispatchSettings(function_base_url=BASE_URL),
                            suppression=suppression)

    outcomes = dispatcher.run_once()

    assert outcomes["suppressed"] == 1
    assert mail.sent == {}
    assert store.get("outbox/ob-step")["status"] == "suppressed"


def test_acknowledgement_not_suppressed(store, mail, tasks, clock):
    store.put("contacts/ct-1", {"opted_out": True})
    store.put("outbox/ob-ack", email_record(START) | {"contact_id": "ct-1"})
    suppression = contact_suppression(lambda contact_id: store.get(f"contacts/{contact_id}"))
    dispatcher = Dispatcher(store, mail, tasks, clock, DispatchSettings(function_base_url=BASE_URL),
                            suppression=suppression)

    assert dispatcher.run_once()["sent"] == 1
