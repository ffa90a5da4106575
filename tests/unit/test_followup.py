"""The no-reply check: fires once, stops on reply, drops stale versions, walks business time."""

import datetime as dt
import zoneinfo

import pytest

from lib.adapters.chat_webhook import RecordingChatNotifier
from lib.adapters.cloud_tasks import RecordingTaskScheduler
from lib.adapters.memory_docs import MemoryDocStore
from lib.adapters.memory_store import RecordingMailSender
from lib.config.loader import load_config
from lib.domain.clock import FixedClock
from lib.errors import InvalidInputError
from lib.intake.types import Submission
from lib.services.dispatch import Dispatcher, DispatchSettings
from lib.services.followup import FollowupCheck, FollowupService, parse_check
from lib.services.intake import IntakeService

CONFIG = load_config()
TAIPEI = zoneinfo.ZoneInfo("Asia/Taipei")
BEFORE_LUNAR_NEW_YEAR = dt.datetime(2026, 2, 11, 10, 0, tzinfo=TAIPEI)
AFTER_LUNAR_NEW_YEAR = dt.datetime(2026, 2, 23, 10, 0, tzinfo=TAIPEI)
LEAD = {"name": "王大明", "email": "daming.wang@acme.com.tw", "company": "台灣好物股份有限公司", "message": "報價"}


@pytest.fixture
def clock():
    return FixedClock(BEFORE_LUNAR_NEW_YEAR)


@pytest.fixture
def docs():
    return MemoryDocStore()


@pytest.fixture
def lead(docs, clock):
    submission = Submission(source_id="webflow", event_id="evt-1", submitted_at=clock.now(), fields=dict(LEAD))
    return IntakeService(CONFIG, docs.memory, clock).handle(submission)


def followup_id(lead) -> str:
    return f"fu-{lead.lead_id}-no-reply"


def check(service, lead, version=1, retry_count=0):
    return service.check(FollowupCheck(followup_id(lead), version, retry_count=retry_count))


def test_due_date_skips_lunar_new_year(docs, lead):
    followup = docs.memory.get(f"followups/{followup_id(lead)}")
    assert followup["due_at"] == AFTER_LUNAR_NEW_YEAR
    assert followup["status"] == "scheduled"


def test_check_fires_reminder_once(docs, lead, clock):
    service = FollowupService(CONFIG, docs, clock)
    clock.set(AFTER_LUNAR_NEW_YEAR)
    first = check(service, lead)
    paths_after_first = docs.memory.paths()
    second = check(service, lead)
    retried = check(service, lead, retry_count=2)

    assert first.status == "fired"
    assert second.status == "already_fired"
    assert retried.status == "already_fired"
    assert docs.memory.paths() == paths_after_first
    task = docs.memory.get(f"tasks/tk-{followup_id(lead)}-reminder")
    assert task["owner_id"] == lead.owner_id
    assert task["status"] == "open"
    reminder = docs.memory.get(f"outbox/ob-{followup_id(lead)}-reminder-email")
    assert reminder["email"]["subject"] == "提醒：王大明 尚未回覆"
    assert reminder["email"]["to"] == [CONFIG.member(lead.owner_id).email]
    assert docs.memory.get(f"followups/{followup_id(lead)}")["status"] == "fired"


def test_reply_after_anchor_marks_done(docs, lead, clock):
    contact_path = f"contacts/{lead.contact_id}"
    docs.memory.put(contact_path, docs.memory.get(contact_path) | {"last_reply_at": BEFORE_LUNAR_NEW_YEAR + dt.timedelta(days=1)})
    clock.set(AFTER_LUNAR_NEW_YEAR)

    outcome = check(FollowupService(CONFIG, docs, clock), lead)

    assert outcome.status == "replied"
    followup = docs.memory.get(f"followups/{followup_id(lead)}")
    assert (followup["status"], followup["outcome"]) == ("done", "replied")
    assert docs.memory.get(f"tasks/tk-{followup_id(lead)}-reminder") is None
    assert not [key for key in docs.memory.docs("outbox") if "reminder" in key]


def test_inbound_before_anchor_is_no_reply(docs, lead, clock):
    contact_path = f"contacts/{lead.contact_id}"
    docs.memory.put(contact_path, docs.memory.get(contact_path) | {"last_inbound_at": BEFORE_LUNAR_NEW_YEAR - dt.timedelta(hours=1)})
    clock.set(AFTER_LUNAR_NEW_YEAR)

    assert check(FollowupService(CONFIG, docs, clock), lead).status == "fired"


def test_cancelled_followup_does_nothing(docs, lead, clock):
    path = f"followups/{followup_id(lead)}"
    docs.memory.put(path, docs.memory.get(path) | {"status": "cancelled", "version": 2})
    before = docs.memory.paths()

    outcome = check(FollowupService(CONFIG, docs, clock), lead, version=2)

    assert outcome.status == "cancelled"
    assert docs.memory.paths() == before


def test_missing_followup_is_dropped(docs, clock):
    outcome = FollowupService(CONFIG, docs, clock).check(FollowupCheck("fu-deleted-no-reply", 1))
    assert outcome.status == "missing"
    assert docs.memory.paths() == []


def test_reschedule_supersedes_old_version(docs, lead, clock):
    service = FollowupService(CONFIG, docs, clock)
    new_due = AFTER_LUNAR_NEW_YEAR + dt.timedelta(days=1)

    version = service.reschedule(followup_id(lead), new_due)
    clock.set(new_due)

    assert version == 2
    task = docs.memory.get(f"outbox/ob-{followup_id(lead)}-v2")["task"]
    assert task["schedule_time"] == new_due
    assert task["payload"]["version"] == 2
    assert check(service, lead, version=1).status == "superseded"
    assert check(service, lead, version=2).status == "fired"


def test_reschedule_task_name_changes_with_version(docs, lead, clock):
    service = FollowupService(CONFIG, docs, clock)
    service.reschedule(followup_id(lead), AFTER_LUNAR_NEW_YEAR)
    tasks = RecordingTaskScheduler()
    dispatcher = Dispatcher(docs.memory, RecordingMailSender(), tasks, clock, DispatchSettings("http://127.0.0.1:1"))

    dispatcher.run_once()

    names = sorted(task.name for task in tasks.tasks)
    assert len(names) == 2
    assert names[0].endswith("-v1") or names[1].endswith("-v1")
    assert any(name.endswith("-v2") for name in names)


def test_english_owner_in_singapore_gets_english(docs, clock):
    docs.memory.put("contacts/ct-1", {"display_name": "Amy Chen", "company_name": "Acme", "last_inbound_at": None})
    docs.memory.put("followups/fu-ld-1-no-reply", {
        "kind": "no_reply", "contact_id": "ct-1", "lead_id": "ld-1", "owner_id": "rep-emily", "status": "scheduled",
        "version": 1, "anchor_at": BEFORE_LUNAR_NEW_YEAR, "due_at": AFTER_LUNAR_NEW_YEAR, "business_days": 3})

    FollowupService(CONFIG, docs, clock).check(FollowupCheck("fu-ld-1-no-reply", 1))

    email = docs.memory.get("outbox/ob-fu-ld-1-no-reply-reminder-email")["email"]
    assert email["subject"] == "Reminder: Amy Chen has not replied"
    assert docs.memory.get("tasks/tk-fu-ld-1-no-reply-reminder")["title"] == "Follow up: Amy Chen has not replied"


def test_chat_preference_posts_card_once(docs, lead, clock, monkeypatch):
    owner = CONFIG.member(lead.owner_id).model_copy(update={"notify_by": ("email", "chat"), "chat_webhook_env": "CHAT_URL_REP"})
    config = CONFIG.model_copy(update={"members": tuple(owner if m.id == owner.id else m for m in CONFIG.members)})
    monkeypatch.setenv("CHAT_URL_REP", "https://chat.googleapis.com/v1/spaces/AAA/messages?key=k&token=t")
    chat = RecordingChatNotifier()
    dispatcher = Dispatcher(docs.memory, RecordingMailSender(), RecordingTaskScheduler(), clock,
                            DispatchSettings("http://127.0.0.1:1"), chat)
    clock.set(AFTER_LUNAR_NEW_YEAR)

    FollowupService(config, docs, clock).check(FollowupCheck(followup_id(lead), 1))
    dispatcher.run_once()
    dispatcher.run_once()

    request_id = f"ob-{followup_id(lead)}-reminder-chat"
    assert list(chat.posted) == [request_id]
    assert chat.calls == 1
    message = chat.posted[request_id][1]
    assert message["cardsV2"][0]["card"]["header"]["title"] == "提醒：王大明 尚未回覆"
    assert docs.memory.get(f"outbox/{request_id}")["status"] == "sent"


def test_parse_fixture_reminder_shape():
    body = {"type": "followup_reminder", "lead_id": "lead_01HZX3EXAMPLE", "step": 2,
            "due_at": "2025-06-03T01:00:00Z", "tz": "Asia/Taipei", "idempotency_key": "lead_01HZX3EXAMPLE:step2"}
    command = parse_check(body, retry_count=2)
    assert command.followup_id == "fu-lead_01HZX3EXAMPLE-no-reply"
    assert command.version is None
    assert command.idempotency_key == "lead_01HZX3EXAMPLE:step2"
    assert command.retry_count == 2


@pytest.mark.parametrize("body", [
    {"type": "other", "followup_id": "fu-1"},
    {"type": "no_reply_check"},
    {"type": "no_reply_check", "followup_id": "a/b", "version": 1},
    {"type": "no_reply_check", "followup_id": "fu-1", "version": "1"},
])
def test_parse_rejects_bad_body(body):
    with pytest.raises(InvalidInputError):
        parse_check(body)
