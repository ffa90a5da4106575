import collections
import datetime as dt
import threading
import zoneinfo

import pytest

from lib.adapters.memory_store import ConflictError, MemoryStore
from lib.config.loader import load_config
from lib.domain import ids
from lib.domain.clock import FixedClock
from lib.intake.types import Submission
from lib.services.intake import IntakeService
from lib.services.intake_decide import IntakeDecision, IntakeResult
from lib.services.intake_prepare import prepare
from lib.services.writes import Increment, Write

CONFIG = load_config()
TAIPEI = zoneinfo.ZoneInfo("Asia/Taipei")
SINGAPORE = zoneinfo.ZoneInfo("Asia/Singapore")
FRIDAY_EVENING = dt.datetime(2026, 3, 6, 19, 0, tzinfo=TAIPEI)
MONDAY_MORNING = dt.datetime(2026, 3, 9, 10, 0, tzinfo=TAIPEI)

CHINESE_LEAD = {
    "name": "王大明",
    "email": "daming.wang@acme.com.tw",
    "phone": "0912-345-678",
    "company": "台灣好物股份有限公司",
    "message": "想了解網站改版的報價",
}
ENGLISH_LEAD = {
    "name": "Amy Chen",
    "email": "amy.chen@acme.com",
    "company": "Acme Inc",
    "message": "Interested in SEO",
}
HOT_LEAD = {
    "name": "陳志豪",
    "email": "zhihao.chen@bigcorp.com.tw",
    "phone": "02-2345-6789",
    "company": "大企業股份有限公司",
    "company_size": "1000+",
    "title": "行銷總監",
}


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(FRIDAY_EVENING)


@pytest.fixture
def service(store, clock) -> IntakeService:
    return IntakeService(CONFIG, store, clock)


def submission(fields: dict, event_id: str | None = "evt-1", submitted_at: dt.datetime | None = FRIDAY_EVENING,
               source_id: str = "webflow") -> Submission:
    return Submission(source_id=source_id, event_id=event_id, submitted_at=submitted_at, fields=dict(fields))


def counts(store: MemoryStore) -> collections.Counter:
    """Count stored documents by collection path."""
    return collections.Counter(path.rsplit("/", 1)[0] for path in store.paths())


def outbox(store: MemoryStore, purpose: str) -> list[dict]:
    return [record for record in store.docs("outbox").values() if record["purpose"] == purpose]


# ---------------------------------------------------------------- new lead


def test_new_lead_writes_one_of_each(service, store):
    result = service.handle(submission(CHINESE_LEAD))

    assert result.status == "created"
    assert counts(store) == {
        "contacts": 1, "contact_keys": 2, "leads": 1, "deals": 1,
        f"deals/{result.deal_id}/stage_history": 1, "tasks": 1, "outbox": 3, "followups": 1,
        "member_state": 1, "events": 1, "activities": 1, "companies": 1, "audit": 4,
    }


def test_new_lead_result_ids_match_documents(service, store):
    result = service.handle(submission(CHINESE_LEAD))

    assert store.get(f"contacts/{result.contact_id}") is not None
    assert store.get(f"leads/{result.lead_id}")["contact_id"] == result.contact_id
    assert store.get(f"deals/{result.deal_id}")["lead_id"] == result.lead_id
    assert result.owner_id == "rep-wang"


def test_contact_keys_point_to_contact(service, store):
    result = service.handle(submission(CHINESE_LEAD | {"email": "DaMing.Wang@Acme.com.tw"}))

    assert sorted(store.docs("contact_keys")) == ["email:daming.wang@acme.com.tw", "phone:+886912345678"]
    for key in store.docs("contact_keys").values():
        assert key["contact_id"] == result.contact_id


def test_contact_stores_emails_and_phones(service, store):
    result = service.handle(submission(CHINESE_LEAD))

    contact = store.get(f"contacts/{result.contact_id}")
    assert contact["emails"] == ["daming.wang@acme.com.tw"]
    assert contact["phones"] == ["+886912345678"]
    assert contact["owner_id"] == "rep-wang"
    assert contact["open_lead_id"] == result.lead_id
    assert contact["submissions"] == 1


def test_lead_records_score_and_routing(service, store):
    result = service.handle(submission(CHINESE_LEAD))

    lead = store.get(f"leads/{result.lead_id}")
    assert lead["status"] == "open"
    assert lead["score"] == 40.0
    assert lead["team_id"] == "north"
    assert lead["routing"] == {"rule": "default-team", "strategy": "round_robin", "skipped": []}


def test_deal_opened_in_first_stage(service, store):
    result = service.handle(submission(CHINESE_LEAD))

    deal = store.get(f"deals/{result.deal_id}")
    assert deal["stage_id"] == "new"
    assert deal["owner_id"] == "rep-wang"
    assert deal["name"] == "台灣好物股份有限公司 商機"
    assert deal["qualification_rule"] == "qualified-with-company"


def test_low_score_lead_has_no_deal(service, store):
    result = service.handle(submission({"name": "林小華", "email": "xiaohua.lin@gmail.com"}))

    assert store.get(f"leads/{result.lead_id}")["score"] == 10.0
    assert result.deal_id is None
    assert store.docs("deals") == {}


def test_first_contact_due_monday_morning(service, store):
    result = service.handle(submission(CHINESE_LEAD))

    task = store.get(f"tasks/tk-{result.lead_id}-first-contact")
    assert task["due_at"] == dt.datetime(2026, 3, 9, 13, 0, tzinfo=TAIPEI)
    assert task["owner_id"] == "rep-wang"
    assert task["title"] == "首次聯繫：王大明"


def test_first_contact_due_in_working_hours(service, store):
    result = service.handle(submission(CHINESE_LEAD))

    due_local = store.get(f"tasks/tk-{result.lead_id}-first-contact")["due_at"].astimezone(TAIPEI)
    assert due_local.weekday() < 5
    assert dt.time(9, 0) <= due_local.time() <= dt.time(18, 0)


def test_first_contact_due_same_working_day(service, store, clock):
    clock.set(MONDAY_MORNING)

    result = service.handle(submission(CHINESE_LEAD, submitted_at=MONDAY_MORNING))

    task = store.get(f"tasks/tk-{result.lead_id}-first-contact")
    assert task["due_at"] == dt.datetime(2026, 3, 9, 14, 0, tzinfo=TAIPEI)


def test_chinese_lead_gets_chinese_ack(service, store):
    service.handle(submission(CHINESE_LEAD))

    [ack] = outbox(store, "acknowledgement")
    assert ack["locale"] == "zh-TW"
    assert ack["email"]["to"] == ["daming.wang@acme.com.tw"]
    assert ack["email"]["subject"] == "感謝您的來信，王大明！我們已收到您的需求"
    assert ack["status"] == "pending"


def test_latin_lead_gets_english_ack(service, store):
    service.handle(submission(ENGLISH_LEAD))

    [ack] = outbox(store, "acknowledgement")
    assert ack["locale"] == "en"
    assert ack["email"]["to"] == ["amy.chen@acme.com"]
    assert ack["email"]["subject"] == "Thanks, Amy — we received your request"


def test_ack_sent_as_owner(service, store):
    service.handle(submission(CHINESE_LEAD))

    [ack] = outbox(store, "acknowledgement")
    assert ack["email"]["sender"] == "mei.wang@example-crm.tw"
    assert ack["email"]["message_id"].endswith("@example-crm.tw>")


def test_assignment_notice_goes_to_rep(service, store):
    service.handle(submission(ENGLISH_LEAD))

    [notice] = outbox(store, "assignment")
    assert notice["email"]["to"] == ["mei.wang@example-crm.tw"]
    assert notice["locale"] == "zh-TW"
    assert notice["email"]["subject"] == "新潛在客戶：Amy Chen（Acme Inc）"
    assert "2026-03-09 13:00 (Asia/Taipei)" in notice["email"]["text_body"]


def test_assignment_notice_in_rep_locale(service, store):
    result = service.handle(submission(HOT_LEAD))

    [notice] = outbox(store, "assignment")
    [ack] = outbox(store, "acknowledgement")
    assert result.owner_id == "rep-emily"
    assert notice["locale"] == "en"
    assert notice["email"]["subject"] == "New lead: 陳志豪 (大企業股份有限公司)"
    assert ack["locale"] == "zh-TW"


def test_hot_lead_due_in_owner_hours(service, store):
    result = service.handle(submission(HOT_LEAD))

    task = store.get(f"tasks/tk-{result.lead_id}-first-contact")
    assert task["due_at"] == dt.datetime(2026, 3, 9, 13, 30, tzinfo=SINGAPORE)
    assert task["title"] == "First contact: 陳志豪"


def test_no_reply_check_after_three_business_days(service, store):
    result = service.handle(submission(CHINESE_LEAD))

    [check] = outbox(store, "no_reply_check")
    followup_id = f"fu-{result.lead_id}-no-reply"
    assert check["kind"] == "cloud_task"
    assert check["task"]["schedule_time"] == dt.datetime(2026, 3, 12, 9, 0, tzinfo=TAIPEI)
    assert check["task"]["logical_key"] == followup_id
    assert check["task"]["payload"] == {"type": "no_reply_check", "followup_id": followup_id, "version": 1}
    assert store.get(f"followups/{followup_id}")["due_at"] == check["task"]["schedule_time"]


def test_member_state_incremented(service, store, clock):
    service.handle(submission(CHINESE_LEAD))

    state = store.get("member_state/rep-wang")
    assert state["open_leads"] == 1
    assert state["assigned_total"] == 1
    assert state["last_assigned_at"] == clock.now()


def test_next_lead_goes_to_next_rep(service, store):
    service.handle(submission(CHINESE_LEAD))

    second = service.handle(submission(ENGLISH_LEAD, event_id="evt-2"))

    assert second.owner_id == "rep-lin"
    assert store.get("member_state/rep-lin")["assigned_total"] == 1


def test_audit_entries_name_rules(service, store):
    result = service.handle(submission(CHINESE_LEAD))

    entries = {entry["action"]: entry for entry in store.docs("audit").values()}
    assert sorted(entries) == ["contact.created", "deal.opened", "lead.assigned", "lead.created"]
    assigned = entries["lead.assigned"]
    assert assigned["rule"] == "default-team/round_robin"
    assert assigned["event_key"] == "webflow:evt-1"
    assert assigned["target"] == f"leads/{result.lead_id}"
    assert assigned["before"] is None
    assert assigned["after"] == {"team_id": "north", "owner_id": "rep-wang"}
    assert entries["deal.opened"]["rule"] == "qualified-with-company"


# ---------------------------------------------------------------- duplicates and matches


def test_same_submission_is_duplicate(service, store):
    first = service.handle(submission(CHINESE_LEAD))
    before = store.paths()

    again = service.handle(submission(CHINESE_LEAD))

    assert again.status == "duplicate"
    assert again.duplicate
    assert (again.contact_id, again.lead_id, again.deal_id, again.owner_id) == (
        first.contact_id, first.lead_id, first.deal_id, first.owner_id)
    assert store.paths() == before


def test_duplicate_changes_no_document(service, store):
    service.handle(submission(CHINESE_LEAD))
    before = {path: store.get(path) for path in store.paths()}

    service.handle(submission(CHINESE_LEAD))

    assert {path: store.get(path) for path in store.paths()} == before


def test_gmail_variant_matches_contact(service, store):
    first = service.handle(submission({"name": "陳小安", "email": "xiaoan.chen@gmail.com"}))

    second = service.handle(submission({"name": "陳小安", "email": "Xiao.An.Chen+ads@gmail.com"}, event_id="evt-2"))

    assert second.status == "matched"
    assert second.contact_id == first.contact_id
    assert second.lead_id == first.lead_id
    assert len(store.docs("leads")) == 1
    assert len(store.docs("contacts")) == 1


def test_matched_submission_counts_on_lead(service, store):
    first = service.handle(submission({"name": "陳小安", "email": "xiaoan.chen@gmail.com"}))

    service.handle(submission({"name": "陳小安", "email": "Xiao.An.Chen+ads@gmail.com"}, event_id="evt-2"))

    contact = store.get(f"contacts/{first.contact_id}")
    assert store.get(f"leads/{first.lead_id}")["submissions"] == 2
    assert contact["submissions"] == 2
    assert contact["emails"] == ["xiao.an.chen+ads@gmail.com", "xiaoan.chen@gmail.com"]


def test_matched_by_phone_without_email(service, store):
    first = service.handle(submission(CHINESE_LEAD))

    second = service.handle(submission({"name": "王大明", "phone": "+886 912 345 678"}, event_id="evt-2"))

    assert second.status == "matched"
    assert second.contact_id == first.contact_id


def test_hash_keyed_repeat_is_duplicate(service, store):
    first = service.handle(submission(CHINESE_LEAD, event_id=None, source_id="cf7"))
    before = store.paths()

    again = service.handle(submission(CHINESE_LEAD, event_id=None, source_id="cf7"))

    assert again.status == "duplicate"
    assert again.lead_id == first.lead_id
    assert store.paths() == before


def test_hash_key_ignores_spacing_and_case(service, store):
    service.handle(submission(CHINESE_LEAD, event_id=None, source_id="cf7"))
    retyped = CHINESE_LEAD | {"email": "DaMing.Wang@acme.com.tw ", "message": "想了解網站改版的報價 "}

    assert service.handle(submission(retyped, event_id=None, source_id="cf7")).status == "duplicate"


def test_hash_keyed_repeat_across_window_edge(service, store, clock):
    window = CONFIG.intake.duplicate_window_seconds
    bucket_end = (int(clock.now().timestamp()) // window + 1) * window
    clock.set(dt.datetime.fromtimestamp(bucket_end - 1, dt.timezone.utc))
    service.handle(submission(CHINESE_LEAD, event_id=None, source_id="cf7"))

    clock.advance(dt.timedelta(seconds=2))
    again = service.handle(submission(CHINESE_LEAD, event_id=None, source_id="cf7"))

    assert again.status == "duplicate"
    assert len(store.docs("leads")) == 1


def test_hash_keyed_after_window_is_new_event(service, store, clock):
    service.handle(submission(CHINESE_LEAD, event_id=None, source_id="cf7"))

    clock.advance(dt.timedelta(seconds=2 * CONFIG.intake.duplicate_window_seconds))
    later = service.handle(submission(CHINESE_LEAD, event_id=None, source_id="cf7"))

    assert later.status == "matched"
    assert len(store.docs("events")) == 2
    assert len(store.docs("leads")) == 1


# ---------------------------------------------------------------- edited responses


def edit(service, clock, fields: dict, minutes: int) -> object:
    clock.advance(dt.timedelta(minutes=minutes))
    later = FRIDAY_EVENING + dt.timedelta(minutes=minutes)
    return service.handle(submission(fields, event_id="resp-1", submitted_at=later, source_id="google_forms"))


def test_edited_response_updates_lead(service, store, clock):
    first = service.handle(submission(CHINESE_LEAD, event_id="resp-1", source_id="google_forms"))

    updated = edit(service, clock, CHINESE_LEAD | {"phone": "02-2345-6789"}, minutes=30)

    lead = store.get(f"leads/{first.lead_id}")
    assert updated.status == "updated"
    assert not updated.duplicate
    assert updated.lead_id == first.lead_id
    assert lead["phone"] == "+886223456789"
    assert lead["fields"]["phone"] == "02-2345-6789"
    assert len(store.docs("leads")) == 1


def test_edited_response_is_audited(service, store, clock):
    service.handle(submission(CHINESE_LEAD, event_id="resp-1", source_id="google_forms"))

    edit(service, clock, CHINESE_LEAD | {"phone": "02-2345-6789"}, minutes=30)

    [entry] = [entry for entry in store.docs("audit").values() if entry["action"] == "lead.updated"]
    assert entry["rule"] == "form_response_edited"
    assert entry["event_key"] == "google_forms:resp-1"
    assert entry["before"]["phone"] == "0912-345-678"
    assert entry["after"]["phone"] == "02-2345-6789"


def test_edited_response_adds_phone_key(service, store, clock):
    first = service.handle(submission(CHINESE_LEAD, event_id="resp-1", source_id="google_forms"))

    edit(service, clock, CHINESE_LEAD | {"phone": "02-2345-6789"}, minutes=30)

    assert store.get("contact_keys/phone:+886223456789")["contact_id"] == first.contact_id


def test_second_edit_keeps_first_audit(service, store, clock):
    service.handle(submission(CHINESE_LEAD, event_id="resp-1", source_id="google_forms"))

    edit(service, clock, CHINESE_LEAD | {"phone": "02-2345-6789"}, minutes=30)
    edit(service, clock, CHINESE_LEAD | {"phone": "04-2345-6789"}, minutes=60)

    afters = [entry["after"]["phone"] for entry in store.docs("audit").values() if entry["action"] == "lead.updated"]
    assert afters == ["02-2345-6789", "04-2345-6789"]


def test_edit_removing_answer_drops_it(service, store, clock):
    first = service.handle(submission(CHINESE_LEAD, event_id="resp-1", source_id="google_forms"))
    without_company = {key: value for key, value in CHINESE_LEAD.items() if key != "company"}

    edit(service, clock, without_company, minutes=30)

    assert "company" not in store.get(f"leads/{first.lead_id}")["fields"]


def test_resubmit_same_time_is_duplicate(service, store, clock):
    service.handle(submission(CHINESE_LEAD, event_id="resp-1", source_id="google_forms"))
    clock.advance(dt.timedelta(minutes=30))

    again = service.handle(submission(CHINESE_LEAD, event_id="resp-1", source_id="google_forms"))

    assert again.status == "duplicate"


def test_redelivery_without_submit_time_is_duplicate(service, store, clock):
    service.handle(submission(CHINESE_LEAD, submitted_at=None))
    before = store.paths()
    clock.advance(dt.timedelta(minutes=5))

    again = service.handle(submission(CHINESE_LEAD, submitted_at=None))

    assert again.status == "duplicate"
    assert store.paths() == before


# ---------------------------------------------------------------- partial submissions


def test_empty_submission_writes_nothing(service, store):
    result = service.handle(submission({"name": "", "email": ""}))

    assert result.status == "empty"
    assert store.paths() == []


def test_phone_only_lead_keyed_by_phone(service, store):
    result = service.handle(submission({"name": "王大明", "phone": "0912-345-678"}))

    assert result.status == "created"
    assert sorted(store.docs("contact_keys")) == ["phone:+886912345678"]
    assert result.contact_id == "ct-" + ids.digest("phone:+886912345678")
    assert store.get(f"leads/{result.lead_id}")["status"] == "open"


def test_phone_only_lead_gets_no_ack(service, store):
    service.handle(submission({"name": "王大明", "phone": "0912-345-678"}))

    assert outbox(store, "acknowledgement") == []
    assert outbox(store, "no_reply_check") == []
    assert len(outbox(store, "assignment")) == 1


def test_no_email_or_phone_is_incomplete(service, store):
    result = service.handle(submission({"name": "王大明", "company": "台灣好物", "message": "請回電"}))

    lead = store.get(f"leads/{result.lead_id}")
    assert result.incomplete
    assert lead["status"] == "incomplete"
    assert store.docs("contact_keys") == {}
    assert store.get(f"tasks/tk-{result.lead_id}-first-contact")["title"] == "補齊聯絡資料：王大明"


def test_incomplete_lead_gets_no_ack(service, store):
    service.handle(submission({"name": "王大明", "company": "台灣好物", "message": "請回電"}))

    assert outbox(store, "acknowledgement") == []
    assert len(outbox(store, "assignment")) == 1


def test_invalid_email_is_recorded(service, store):
    result = service.handle(submission({"name": "王大明", "email": "daming.wang@", "phone": "0912345678"}))

    assert store.get(f"leads/{result.lead_id}")["invalid_fields"] == ["email"]
    assert outbox(store, "acknowledgement") == []


def test_internal_domain_has_no_company(service, store):
    result = service.handle(submission({"name": "張測試", "email": "qa.test@example-crm.tw"}))

    assert store.docs("companies") == {}
    assert store.get(f"leads/{result.lead_id}")["company_id"] is None


def test_free_mail_domain_has_no_company(service, store):
    result = service.handle(submission({"name": "林小華", "email": "xiaohua.lin@gmail.com"}))

    assert store.docs("companies") == {}
    assert store.get(f"leads/{result.lead_id}")["company_id"] is None


def test_business_domain_names_company(service, store):
    service.handle(submission(CHINESE_LEAD))

    assert store.get("companies/co-acme-com-tw")["domain"] == "acme.com.tw"


# ---------------------------------------------------------------- concurrency


def test_concurrent_deliveries_create_one_lead(service, store):
    barrier = threading.Barrier(10)
    statuses: list[str] = []

    def deliver() -> None:
        barrier.wait()
        statuses.append(service.handle(submission(CHINESE_LEAD)).status)

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert collections.Counter(statuses) == {"created": 1, "duplicate": 9}
    assert len(store.docs("leads")) == 1
    assert store.get("member_state/rep-wang")["assigned_total"] == 1


# ---------------------------------------------------------------- MemoryStore writes


def commit(store: MemoryStore, *writes: Write) -> None:
    """Apply ``writes`` through ``commit_intake``, whatever the snapshot holds."""
    prepared = prepare(CONFIG, submission(CHINESE_LEAD), FRIDAY_EVENING.astimezone(dt.timezone.utc))
    store.commit_intake(prepared, lambda snapshot: IntakeDecision(IntakeResult("created", False), writes))


def test_store_create_conflict_applies_nothing(store):
    store.put("leads/ld-1", {"status": "open"})

    with pytest.raises(ConflictError, match="document already exists: leads/ld-1"):
        commit(store, Write("contacts/ct-1", {"name": "x"}, "create"), Write("leads/ld-1", {"status": "new"}, "create"))

    assert store.get("contacts/ct-1") is None
    assert store.get("leads/ld-1") == {"status": "open"}


def test_store_merge_keeps_other_fields(store):
    store.put("contacts/ct-1", {"name": "x", "score": {"fit": 10, "total": 20}, "utm": {"utm_source": "fb"}})

    commit(store, Write("contacts/ct-1", {"score": {"total": 30}, "utm": {}}, "merge"))

    assert store.get("contacts/ct-1") == {"name": "x", "score": {"fit": 10, "total": 30}, "utm": {}}


def test_store_set_replaces_document(store):
    store.put("contacts/ct-1", {"name": "x", "title": "CEO"})

    commit(store, Write("contacts/ct-1", {"name": "y"}, "set"))

    assert store.get("contacts/ct-1") == {"name": "y"}


def test_store_increment_adds_or_starts(store):
    store.put("member_state/rep-wang", {"open_leads": 2})

    commit(store, Write("member_state/rep-wang", {"open_leads": Increment(1), "assigned_total": Increment(1)}, "merge"))

    assert store.get("member_state/rep-wang") == {"open_leads": 3, "assigned_total": 1}


def test_store_docs_skips_subcollections(store):
    store.put("deals/dl-1", {"name": "a"})
    store.put("deals/dl-1/stage_history/00", {"stage_id": "new"})

    assert store.docs("deals") == {"dl-1": {"name": "a"}}
    assert store.docs("deals/dl-1/stage_history") == {"00": {"stage_id": "new"}}


def test_store_returns_copies(store):
    store.put("leads/ld-1", {"fields": {"email": "a@example.com"}})

    store.get("leads/ld-1")["fields"]["email"] = "changed"

    assert store.get("leads/ld-1")["fields"]["email"] == "a@example.com"


def test_webhook_redelivery_later_time_is_duplicate(service, store, clock):
    first = service.handle(submission(CHINESE_LEAD, event_id="wf-1", source_id="webflow"))
    clock.advance(dt.timedelta(minutes=30))
    later = FRIDAY_EVENING + dt.timedelta(minutes=30)

    again = service.handle(submission(CHINESE_LEAD | {"phone": "02-2345-6789"}, event_id="wf-1",
                                      submitted_at=later, source_id="webflow"))

    assert again.status == "duplicate"
    assert again.lead_id == first.lead_id
    assert store.get(f"leads/{first.lead_id}")["fields"] == CHINESE_LEAD


def test_edited_phone_added_to_contact(service, store, clock):
    first = service.handle(submission(CHINESE_LEAD, event_id="resp-1", source_id="google_forms"))

    edit(service, clock, CHINESE_LEAD | {"phone": "02-2345-6789"}, minutes=30)

    phones = store.get(f"contacts/{first.contact_id}")["phones"]
    assert phones == ["+886223456789", "+886912345678"]


def test_shared_phone_different_email_new_contact(service, store):
    alice = service.handle(submission({"email": "alice.chen@acme-example.com", "name": "陳愛麗",
                                       "phone": "02-2700-1234"}, event_id="evt-alice"))
    bob = service.handle(submission({"email": "bob.lin@acme-example.com", "name": "林大寶",
                                     "phone": "(02) 2700-1234"}, event_id="evt-bob"))

    assert bob.status == "created"
    assert bob.contact_id != alice.contact_id
    assert store.get(f"contacts/{alice.contact_id}")["display_name"] == "陳愛麗"
    assert store.get(f"contacts/{bob.contact_id}")["display_name"] == "林大寶"


def test_phone_only_contact_gains_email(service, store):
    first = service.handle(submission({"name": "王大明", "phone": "02-2345-6789"}, event_id="evt-phone"))
    second = service.handle(submission({"name": "王大明", "phone": "02-2345-6789",
                                        "email": "daming@example.com"}, event_id="evt-email"))

    assert second.contact_id == first.contact_id
    assert store.get(f"contacts/{first.contact_id}")["emails"] == ["daming@example.com"]


def test_repeat_submission_keeps_known_name(service, store):
    first = service.handle(submission(CHINESE_LEAD, event_id="evt-1"))
    service.handle(submission(CHINESE_LEAD | {"name": "王小明"}, event_id="evt-2"))

    assert store.get(f"contacts/{first.contact_id}")["display_name"] == "王大明"
