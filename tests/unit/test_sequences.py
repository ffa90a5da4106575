"""Nurture sequences: enrolment, sending windows, limits that defer, every exit, opt-out."""

import datetime as dt
import zoneinfo

import flask
import pytest

from lib.adapters.memory_docs import MemoryDocStore
from lib.config.loader import load_config
from lib.domain import unsubscribe
from lib.domain.clock import FixedClock
from lib.errors import ConfigError, InvalidInputError
from lib.intake.types import Submission
from lib.services.calendars import member_calendar
from lib.services.intake import IntakeService
from lib.services.sequences import SequenceService, SequenceSettings

CONFIG = load_config()
TAIPEI = zoneinfo.ZoneInfo("Asia/Taipei")
WEDNESDAY = dt.datetime(2026, 2, 11, 10, 0, tzinfo=TAIPEI)
FRIDAY = dt.datetime(2026, 2, 13, 10, 0, tzinfo=TAIPEI)
KEY = b"k" * 32
SETTINGS = SequenceSettings("https://crm.example-crm.tw/unsubscribe", KEY)
SEQUENCE = "welcome-nurture"


def lead_fields(number: int) -> dict:
    return {"name": f"王大明{number}", "email": f"daming{number}@acme.com.tw", "phone": f"0912-345-67{number}",
            "company": "台灣好物股份有限公司", "message": "報價"}


@pytest.fixture
def clock():
    return FixedClock(WEDNESDAY)


@pytest.fixture
def docs():
    return MemoryDocStore()


def make_lead(docs, clock, number=1):
    submission = Submission(source_id="webflow", event_id=f"evt-{number}", submitted_at=clock.now(),
                            fields=lead_fields(number))
    return IntakeService(CONFIG, docs.memory, clock).handle(submission)


def service(docs, clock, config=CONFIG):
    return SequenceService(config, docs, clock, SETTINGS)


def enrolled(docs, clock, number=1, config=CONFIG):
    lead = make_lead(docs, clock, number)
    assert service(docs, clock, config).enrol_lead(lead.lead_id) == [f"{lead.contact_id}-{SEQUENCE}"]
    return lead, f"{lead.contact_id}-{SEQUENCE}"


def step_emails(docs) -> dict:
    return {key: doc for key, doc in docs.memory.docs("outbox").items() if doc.get("purpose") == "sequence_step"}


def test_enrolment_waits_first_delay(docs, clock):
    lead, enrolment_id = enrolled(docs, clock)
    enrolment = docs.memory.get(f"enrolments/{enrolment_id}")
    assert enrolment["status"] == "active"
    assert enrolment["next_send_at"] == FRIDAY
    assert service(docs, clock).advance(enrolment_id) == "not_due"


def test_enrol_twice_creates_one(docs, clock):
    lead, enrolment_id = enrolled(docs, clock)
    assert service(docs, clock).enrol_lead(lead.lead_id) == []


def test_step_sends_from_owner_with_unsubscribe(docs, clock):
    lead, enrolment_id = enrolled(docs, clock)
    clock.set(FRIDAY)

    assert service(docs, clock).advance(enrolment_id) == "sent"

    record = docs.memory.get(f"outbox/ob-enr-{enrolment_id}-s1")
    owner = CONFIG.member(lead.owner_id)
    email = record["email"]
    assert email["sender"] == owner.email
    assert email["to"] == ["daming1@acme.com.tw"]
    assert email["subject"] == "大明1，這是我們協助客戶成長的方式"
    headers = dict(email["headers"])
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = headers["List-Unsubscribe"].strip("<>")
    assert url.startswith(SETTINGS.unsubscribe_url + "?t=")
    assert url in email["text_body"]
    claims = unsubscribe.verify_token(KEY, url.split("?t=")[1])
    assert (claims.contact_id, claims.sequence_id) == (lead.contact_id, SEQUENCE)
    enrolment = docs.memory.get(f"enrolments/{enrolment_id}")
    assert enrolment["step"] == 1
    calendar = member_calendar(CONFIG, owner, 2026)
    assert enrolment["next_send_at"] == calendar.add_business_days(FRIDAY, 5)
    assert enrolment["next_send_at"].astimezone(TAIPEI).date() == dt.date(2026, 3, 2)


def test_repeated_advance_sends_step_once(docs, clock):
    lead, enrolment_id = enrolled(docs, clock)
    clock.set(FRIDAY)
    assert service(docs, clock).advance(enrolment_id) == "sent"
    assert service(docs, clock).advance(enrolment_id) == "not_due"
    assert list(step_emails(docs)) == [f"ob-enr-{enrolment_id}-s1"]


def test_last_step_completes(docs, clock):
    lead, enrolment_id = enrolled(docs, clock)
    clock.set(FRIDAY)
    service(docs, clock).advance(enrolment_id)
    clock.set(docs.memory.get(f"enrolments/{enrolment_id}")["next_send_at"])
    assert service(docs, clock).advance(enrolment_id) == "sent"
    assert docs.memory.get(f"enrolments/{enrolment_id}")["status"] == "completed"
    assert len(step_emails(docs)) == 2


def test_weekend_defers_to_monday_morning(docs, clock):
    lead, enrolment_id = enrolled(docs, clock)
    saturday = dt.datetime(2026, 3, 7, 11, 0, tzinfo=TAIPEI)
    path = f"enrolments/{enrolment_id}"
    docs.memory.put(path, docs.memory.get(path) | {"next_send_at": saturday})
    clock.set(saturday)

    assert service(docs, clock).advance(enrolment_id) == "deferred_hours"

    enrolment = docs.memory.get(path)
    assert enrolment["status"] == "active"
    assert enrolment["next_send_at"] == dt.datetime(2026, 3, 9, 9, 0, tzinfo=TAIPEI)
    assert step_emails(docs) == {}


def test_evening_in_singapore_sender_defers(docs, clock):
    lead, enrolment_id = enrolled(docs, clock)
    path = f"enrolments/{enrolment_id}"
    # Singapore and Taipei are both UTC+8; 18:40 is after Emily's 18:30 end of day.
    evening = dt.datetime(2026, 3, 9, 18, 40, tzinfo=TAIPEI)
    docs.memory.put(path, docs.memory.get(path) | {"owner_id": "rep-emily", "next_send_at": evening})
    clock.set(evening)

    assert service(docs, clock).advance(enrolment_id) == "deferred_hours"
    assert docs.memory.get(path)["next_send_at"] == dt.datetime(2026, 3, 10, 9, 30, tzinfo=TAIPEI)


def capped(daily=1500, per_minute=20):
    return CONFIG.model_copy(update={"sending": CONFIG.sending.model_copy(
        update={"daily_cap_per_mailbox": daily, "per_minute_per_mailbox": per_minute})})


def two_enrolments_same_owner(docs, clock, config):
    first_lead, first = enrolled(docs, clock, 1, config)
    second_lead, second = enrolled(docs, clock, 2, config)
    path = f"enrolments/{second}"
    docs.memory.put(path, docs.memory.get(path) | {"owner_id": first_lead.owner_id})
    clock.set(FRIDAY)
    return first, second


def test_daily_cap_defers_to_next_working_day(docs, clock):
    config = capped(daily=1)
    first, second = two_enrolments_same_owner(docs, clock, config)

    assert service(docs, clock, config).advance(first) == "sent"
    assert service(docs, clock, config).advance(second) == "deferred_daily"

    # Friday 13 February is followed by the weekend and the Lunar New Year holidays.
    assert docs.memory.get(f"enrolments/{second}")["next_send_at"] == dt.datetime(2026, 2, 23, 9, 0, tzinfo=TAIPEI)
    assert docs.memory.get(f"enrolments/{second}")["status"] == "active"
    owner_email = docs.memory.get(f"outbox/ob-enr-{first}-s1")["email"]["sender"]
    assert docs.memory.get(f"send_quota/{owner_email}:2026-02-13")["count"] == 1


def test_minute_pace_defers_to_next_minute(docs, clock):
    config = capped(per_minute=1)
    first, second = two_enrolments_same_owner(docs, clock, config)

    assert service(docs, clock, config).advance(first) == "sent"
    assert service(docs, clock, config).advance(second) == "deferred_minute"
    assert docs.memory.get(f"enrolments/{second}")["next_send_at"] == FRIDAY + dt.timedelta(minutes=1)

    clock.set(FRIDAY + dt.timedelta(minutes=1))
    assert service(docs, clock, config).advance(second) == "sent"


@pytest.mark.parametrize("exit_kind, contact_update, deal_update", [
    ("replied", {"last_reply_at": FRIDAY - dt.timedelta(hours=1)}, {}),
    ("bounced", {"email_status": "bounced"}, {}),
    ("opted_out", {"opted_out": True}, {}),
    ("meeting_booked", {}, {"stage_id": "meeting"}),
    ("meeting_booked", {"last_meeting_at": FRIDAY - dt.timedelta(hours=2)}, {}),
    ("deal_closed", {}, {"status": "lost", "stage_id": "lost"}),
])
def test_exit_stops_sequence(docs, clock, exit_kind, contact_update, deal_update):
    lead, enrolment_id = enrolled(docs, clock)
    contact_path, deal_path = f"contacts/{lead.contact_id}", f"deals/{lead.deal_id}"
    docs.memory.put(contact_path, docs.memory.get(contact_path) | contact_update)
    docs.memory.put(deal_path, docs.memory.get(deal_path) | deal_update)
    clock.set(FRIDAY)

    assert service(docs, clock).advance(enrolment_id) == exit_kind
    assert docs.memory.get(f"enrolments/{enrolment_id}")["status"] == exit_kind
    assert step_emails(docs) == {}


def test_reply_before_enrolment_does_not_stop(docs, clock):
    lead, enrolment_id = enrolled(docs, clock)
    contact_path = f"contacts/{lead.contact_id}"
    docs.memory.put(contact_path, docs.memory.get(contact_path) | {"last_inbound_at": WEDNESDAY - dt.timedelta(days=1)})
    clock.set(FRIDAY)
    assert service(docs, clock).advance(enrolment_id) == "sent"


def test_status_set_by_mail_sync_stops_tick(docs, clock):
    lead, enrolment_id = enrolled(docs, clock)
    path = f"enrolments/{enrolment_id}"
    docs.memory.put(path, docs.memory.get(path) | {"status": "replied"})
    clock.set(FRIDAY)
    assert service(docs, clock).tick() == {}
    assert step_emails(docs) == {}


def test_manual_stop(docs, clock):
    lead, enrolment_id = enrolled(docs, clock)
    assert service(docs, clock).stop(enrolment_id, "member:rep-wang") is True
    assert service(docs, clock).stop(enrolment_id, "member:rep-wang") is False
    clock.set(FRIDAY)
    assert service(docs, clock).advance(enrolment_id) == "not_due"
    assert docs.memory.get(f"enrolments/{enrolment_id}")["status"] == "stopped"


def test_opt_out_ends_enrolments_and_blocks_new(docs, clock):
    lead, enrolment_id = enrolled(docs, clock)

    assert service(docs, clock).opt_out(lead.contact_id, SEQUENCE, "unsubscribe_link") == 1

    assert docs.memory.get(f"contacts/{lead.contact_id}")["opted_out"] is True
    assert docs.memory.get(f"enrolments/{enrolment_id}")["status"] == "opted_out"
    docs.memory._docs.pop(f"enrolments/{enrolment_id}")
    assert service(docs, clock).enrol_lead(lead.lead_id) == []


def test_tick_enrols_new_leads_then_sends(docs, clock):
    make_lead(docs, clock)
    first = service(docs, clock).tick()
    clock.set(FRIDAY)
    second = service(docs, clock).tick()
    assert first == {"enrolled": 1}
    assert second == {"sent": 1}


def test_rule_mismatch_skips_enrolment(docs, clock):
    config = CONFIG.model_copy(update={"sequences": tuple(
        seq.model_copy(update={"enrol": seq.enrol.model_copy(update={"sources": ("hubspot",)})})
        for seq in CONFIG.sequences)})
    lead = make_lead(docs, clock)
    assert service(docs, clock, config).enrol_lead(lead.lead_id) == []


def test_missing_key_refuses_to_send(docs, clock):
    lead, enrolment_id = enrolled(docs, clock)
    clock.set(FRIDAY)
    with pytest.raises(ConfigError):
        SequenceService(CONFIG, docs, clock, SequenceSettings(SETTINGS.unsubscribe_url, None)).advance(enrolment_id)


def test_token_tampering_is_rejected():
    token = unsubscribe.make_token(KEY, "ct-1", SEQUENCE)
    payload, signature = token.split(".")
    forged = unsubscribe.make_token(b"x" * 32, "ct-2", SEQUENCE).split(".")[0]
    with pytest.raises(InvalidInputError):
        unsubscribe.verify_token(KEY, f"{forged}.{signature}")
    with pytest.raises(InvalidInputError):
        unsubscribe.verify_token(b"y" * 32, token)
    with pytest.raises(InvalidInputError):
        unsubscribe.verify_token(KEY, "no-dot")
    with pytest.raises(ConfigError):
        unsubscribe.make_token(b"short", "ct-1", None)


def test_unsubscribe_page_get_then_one_click_post(docs, clock):
    from lib.bootstrap import App
    from lib.entrypoints.followups import handle_unsubscribe

    lead, enrolment_id = enrolled(docs, clock)
    app = App(CONFIG, "demo", None, None, clock, sequences=service(docs, clock))
    token = unsubscribe.make_token(KEY, lead.contact_id, SEQUENCE)
    web = flask.Flask(__name__)

    with web.test_request_context(f"/unsubscribe?t={token}", method="GET"):
        page = handle_unsubscribe(flask.request, app)
    assert page.status_code == 200
    assert "<form" in page.get_data(as_text=True)
    assert not docs.memory.get(f"contacts/{lead.contact_id}").get("opted_out")

    with web.test_request_context(f"/unsubscribe?t={token}", method="POST", data={"List-Unsubscribe": "One-Click"}):
        done = handle_unsubscribe(flask.request, app)
    assert done.status_code == 200
    assert docs.memory.get(f"contacts/{lead.contact_id}")["opted_out"] is True

    with web.test_request_context("/unsubscribe?t=bad.token", method="POST"):
        assert handle_unsubscribe(flask.request, app).status_code == 400


def test_temporary_bounce_hold_defers_step(docs, clock):
    lead, enrolment_id = enrolled(docs, clock)
    hold_until = FRIDAY + dt.timedelta(days=1)
    docs.memory.put(f"contacts/{lead.contact_id}", docs.memory.get(f"contacts/{lead.contact_id}")
                    | {"hold_sends_until": hold_until})
    clock.set(FRIDAY)

    outcome = service(docs, clock).advance(enrolment_id)

    assert outcome == "deferred_hold"
    assert docs.memory.get(f"enrolments/{enrolment_id}")["next_send_at"] == hold_until
