"""Steps 2 to 7 of the lead pipeline, decided from one consistent read of the store.

``decide`` is pure: given what the transaction read, it returns the result and
every document write, including the outbox intents that a dispatcher performs
later. The store applies the writes in the same transaction, so a lead never
exists without its acknowledgement, notice, task and follow-up check.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from typing import Any

from lib.config.schema import CrmConfig, Member
from lib.domain import routing, scoring
from lib.domain.templates import render_email, render_text
from lib.services.calendars import member_calendar
from lib.services.intake_prepare import PreparedLead
from lib.services.writes import Increment, Write

EVENT_TTL = dt.timedelta(days=30)
MAX_ENGAGEMENT_EVENTS = 50
AUTOMATION_ACTOR = "automation:intake"


@dataclasses.dataclass(frozen=True)
class IntakeSnapshot:
    """Documents the intake transaction read.

    Attributes:
        events: Event documents by id (None when absent).
        keys: Uniqueness key documents by id (None when absent).
        contact_id: Id of the existing contact the keys point to, if any.
        contact: That contact's document, if any.
        loads: Routing load of each candidate member.
        company: The company document, if any.
        deal: The contact's open deal, if it has one.
    """

    events: dict[str, dict | None]
    keys: dict[str, dict | None]
    contact_id: str | None
    contact: dict | None
    loads: dict[str, routing.MemberLoad]
    company: dict | None
    deal: dict | None = None


@dataclasses.dataclass(frozen=True)
class IntakeResult:
    """Outcome of one submission, as the intake endpoints report it."""

    status: str
    duplicate: bool
    contact_id: str | None = None
    lead_id: str | None = None
    deal_id: str | None = None
    owner_id: str | None = None
    incomplete: bool = False
    event_key: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class IntakeDecision:
    result: IntakeResult
    writes: tuple[Write, ...]


def _audit(prepared: PreparedLead, index: int, action: str, path: str, rule: str,
           before: Any, after: Any, now: dt.datetime) -> Write:
    doc_id = f"{prepared.event_doc_ids[0]}-{index:02d}"
    return Write(f"audit/{doc_id}", {
        "action": action, "target": path, "rule": rule, "event_key": prepared.event_key,
        "before": before, "after": after, "actor": AUTOMATION_ACTOR, "at": now,
    })


def _existing_event(prepared: PreparedLead, snapshot: IntakeSnapshot) -> dict | None:
    for doc_id in prepared.event_doc_ids:
        if snapshot.events.get(doc_id):
            return snapshot.events[doc_id]
    return None


def _contact_fields(prepared: PreparedLead) -> dict[str, Any]:
    fields = {
        "display_name": prepared.name.full if prepared.name else None,
        "given_name": prepared.name.given if prepared.name else None,
        "family_name": prepared.name.family if prepared.name else None,
        "company_name": prepared.company_name,
        "company_id": prepared.company_id,
        "title": prepared.fields.get("title"),
        "locale": prepared.locale,
        "region": prepared.region,
    }
    return {key: value for key, value in fields.items() if value}


def _engagement(contact: dict | None, now: dt.datetime) -> list[dict]:
    events = list((contact or {}).get("engagement", []))
    events.append({"kind": "form_submission", "at": now})
    return events[-MAX_ENGAGEMENT_EVENTS:]


def _score(config: CrmConfig, prepared: PreparedLead, engagement: list[dict], now: dt.datetime) -> scoring.ScoreResult:
    history = [(event["kind"], event["at"]) for event in engagement]
    return scoring.ScoreResult(
        fit=prepared.fit_points,
        engagement=scoring.engagement_score(config.scoring, history, now),
        matched_rules=prepared.fit_rules,
    )


def _lead_values(config: CrmConfig, prepared: PreparedLead, owner: Member, score: float,
                 locale: str) -> dict[str, Any]:
    source = config.source(prepared.submission.source_id)
    # A Chinese name is addressed in full; a given name alone reads wrongly.
    first_name = None
    if prepared.name:
        first_name = prepared.name.full if prepared.name.script == "han" else (prepared.name.given or prepared.name.full)
    return {
        "name": prepared.name.full if prepared.name else None,
        "first_name": first_name,
        "company": prepared.company_name,
        "source_name": source.display_name(locale) if source else prepared.submission.source_id,
        "rep_name": owner.name,
        "organization": config.organization.name,
        "score": f"{score:g}",
    }


def _qualifying_rule(config: CrmConfig, prepared: PreparedLead, score: float) -> Any:
    facts = routing.RoutingFacts(prepared.submission.source_id, prepared.region, prepared.products, score)
    for rule in config.qualification.rules:
        if routing.condition_holds(rule.when, facts):
            return rule
    return None


def _duplicate(stored: dict, prepared: PreparedLead) -> IntakeDecision:
    result = dict(stored.get("result") or {})
    result.update(status="duplicate", duplicate=True, event_key=prepared.event_key)
    return IntakeDecision(IntakeResult(**result), ())


def _edit(config: CrmConfig, prepared: PreparedLead, stored: dict, snapshot: IntakeSnapshot,
          now: dt.datetime) -> IntakeDecision:
    """Apply an edited form response (same response id, later submit time) to its lead."""
    result = IntakeResult(**{**stored["result"], "status": "updated", "duplicate": False})
    lead_path = f"leads/{result.lead_id}"
    before = stored.get("fields", {})
    after = _jsonable(prepared.fields)
    event_path = f"events/{prepared.event_doc_ids[0]}"
    writes = [
        Write(lead_path, {"fields": after, "submitted_at": prepared.submitted_at, "updated_at": now,
                          "phone": prepared.phone, "utm": prepared.utm}, "replace_fields"),
        Write(event_path, {"submitted_at": prepared.submitted_at, "fields": after, "updated_at": now},
              "replace_fields"),
        Write(event_path, {"edits": Increment(1)}, "merge"),
        _audit(prepared, _edit_index(stored), "lead.updated", lead_path, "form_response_edited", before, after, now),
    ]
    if result.contact_id:
        contact_update = _contact_fields(prepared) | {"updated_at": now}
        known = snapshot.contact if snapshot.contact_id == result.contact_id else None
        if known is not None:
            emails, phones = set(known.get("emails", [])), set(known.get("phones", []))
            emails |= {prepared.email.address} if prepared.email else set()
            phones |= {prepared.phone} if prepared.phone else set()
            contact_update |= {"emails": sorted(emails), "phones": sorted(phones)}
        writes.append(Write(f"contacts/{result.contact_id}", contact_update, "merge"))
        for key in prepared.identity_keys:
            if snapshot.keys.get(key) is None:
                writes.append(Write(f"contact_keys/{key}", {"contact_id": result.contact_id, "created_at": now}, "create"))
    return IntakeDecision(result, tuple(writes))


def _edit_index(stored: dict) -> int:
    # Audit ids of an edit start after the entries of the original submission.
    return 50 + int(stored.get("edits", 0))


def _jsonable(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: (list(value) if isinstance(value, (list, tuple)) else value) for key, value in fields.items()}


def decide(config: CrmConfig, prepared: PreparedLead, snapshot: IntakeSnapshot, now: dt.datetime) -> IntakeDecision:
    """Decide what one submission does, given what the transaction read.

    Returns:
        The result and the writes. A repeated delivery returns the stored result
        with ``duplicate=True`` and no writes.
    """
    stored = _existing_event(prepared, snapshot)
    if stored is not None:
        return _edit(config, prepared, stored, snapshot, now) if _is_edit(config, prepared, stored) \
            else _duplicate(stored, prepared)

    contact = snapshot.contact
    if contact and contact.get("open_lead_id"):
        return _repeat_submission(config, prepared, snapshot, now)
    return _new_lead(config, prepared, snapshot, now)


def _is_edit(config: CrmConfig, prepared: PreparedLead, stored: dict) -> bool:
    """Return True for an edited Google Form response: same response id, later submit time.

    Only Google Forms lets a respondent edit a response under the same id. Other
    vendors resend an event unchanged, and parsers fill a missing submit time
    with the receive time, so a later copy from them is a retry, not an edit.
    """
    source = config.source(prepared.submission.source_id)
    if source is None or source.vendor != "google_forms" or prepared.hash_keyed:
        return False
    if prepared.submission.submitted_at is None or not stored.get("submitted_at"):
        return False
    return prepared.submitted_at > stored["submitted_at"]


def _event_write(prepared: PreparedLead, result: IntakeResult, now: dt.datetime) -> Write:
    return Write(f"events/{prepared.event_doc_ids[0]}", {
        "event_key": prepared.event_key,
        "source_id": prepared.submission.source_id,
        "submitted_at": prepared.submitted_at,
        "received_at": prepared.received_at,
        "fields": _jsonable(prepared.fields),
        "result": {k: v for k, v in result.as_dict().items() if k not in ("status", "duplicate", "event_key")},
        "expires_at": now + EVENT_TTL,
    }, "create")


def _key_writes(prepared: PreparedLead, snapshot: IntakeSnapshot, contact_id: str, now: dt.datetime) -> list[Write]:
    return [Write(f"contact_keys/{key}", {"contact_id": contact_id, "created_at": now}, "create")
            for key in prepared.identity_keys if snapshot.keys.get(key) is None]


def _activity(prepared: PreparedLead, contact_id: str, lead_id: str, deal_id: str | None, now: dt.datetime) -> Write:
    return Write(f"activities/{prepared.event_doc_ids[0]}", {
        "kind": "form_submission", "direction": "inbound", "contact_id": contact_id, "lead_id": lead_id,
        "deal_id": deal_id, "company_id": prepared.company_id, "source_id": prepared.submission.source_id,
        "occurred_at": prepared.submitted_at, "recorded_at": now, "event_key": prepared.event_key,
        "summary": str(prepared.fields.get("message") or prepared.fields.get("subject") or "")[:500],
    })


def _contact_write(prepared: PreparedLead, contact_id: str, contact: dict | None, owner_id: str | None,
                   lead_id: str, deal_id: str | None, score: scoring.ScoreResult, engagement: list[dict],
                   now: dt.datetime) -> Write:
    # A new submission fills what the contact lacks; it never renames a known person.
    known = {key: value for key, value in _contact_fields(prepared).items() if not (contact or {}).get(key)}
    data: dict[str, Any] = known | {
        "updated_at": now,
        "last_submission_at": prepared.submitted_at,
        "submissions": Increment(1),
        "engagement": engagement,
        "score": {"fit": score.fit, "engagement": score.engagement, "total": score.total,
                  "rules": list(score.matched_rules), "computed_at": now},
        "open_lead_id": lead_id,
        "sources": sorted(set((contact or {}).get("sources", [])) | {prepared.submission.source_id}),
    }
    emails = set((contact or {}).get("emails", []))
    phones = set((contact or {}).get("phones", []))
    if prepared.email:
        emails.add(prepared.email.address)
        data.setdefault("primary_email", (contact or {}).get("primary_email") or prepared.email.address)
    if prepared.phone:
        phones.add(prepared.phone)
    data |= {"emails": sorted(emails), "phones": sorted(phones)}
    if deal_id:
        data["open_deal_id"] = deal_id
    if contact is None:
        data |= {"created_at": now, "owner_id": owner_id, "status": "lead", "email_status": "valid",
                 "first_source_id": prepared.submission.source_id, "incomplete": prepared.incomplete,
                 "last_inbound_at": None, "last_outbound_at": None}
    elif not contact.get("owner_id"):
        data["owner_id"] = owner_id
    return Write(f"contacts/{contact_id}", data, "merge")


def _repeat_submission(config: CrmConfig, prepared: PreparedLead, snapshot: IntakeSnapshot,
                       now: dt.datetime) -> IntakeDecision:
    """Log a new submission by a contact who already has an open lead."""
    contact = snapshot.contact or {}
    contact_id = snapshot.contact_id or prepared.contact_id
    lead_id, deal_id = contact["open_lead_id"], contact.get("open_deal_id")
    engagement = _engagement(contact, now)
    score = _score(config, prepared, engagement, now)
    result = IntakeResult("matched", False, contact_id, lead_id, deal_id, contact.get("owner_id"),
                          prepared.incomplete, prepared.event_key)
    contact_path = f"contacts/{contact_id}"
    writes = [
        _event_write(prepared, result, now),
        _contact_write(prepared, contact_id, contact, contact.get("owner_id"), lead_id, deal_id, score, engagement, now),
        *_key_writes(prepared, snapshot, contact_id, now),
        _activity(prepared, contact_id, lead_id, deal_id, now),
        Write(f"leads/{lead_id}", {"submissions": Increment(1), "last_submission_at": prepared.submitted_at,
                                   "score": score.total, "updated_at": now}, "merge"),
        _audit(prepared, 0, "contact.updated", contact_path, "repeat_submission",
               {"score": (contact.get("score") or {}).get("total")}, {"score": score.total}, now),
    ]
    if deal_id and snapshot.deal:
        writes.append(Write(f"deals/{deal_id}", _deal_activity(config, snapshot.deal, now), "merge"))
    return IntakeDecision(result, tuple(writes))


def stale_due_at(config: CrmConfig, stage_id: str, last_activity_at: dt.datetime) -> dt.datetime | None:
    """Return when a deal in ``stage_id`` becomes stale without further activity."""
    try:
        stage = config.pipeline.stage(stage_id)
    except KeyError:
        return None
    if stage.status != "open" or stage.stale_after_days is None:
        return None
    return last_activity_at + dt.timedelta(days=stage.stale_after_days)


def _deal_activity(config: CrmConfig, deal: dict, now: dt.datetime) -> dict[str, Any]:
    return {"last_activity_at": now, "updated_at": now,
            "stale_due_at": stale_due_at(config, deal.get("stage_id", ""), now)}


def _deal_writes(config: CrmConfig, prepared: PreparedLead, rule: Any, deal_id: str, contact_id: str,
                 owner_id: str, lead_id: str, next_activity_at: dt.datetime, now: dt.datetime) -> list[Write]:
    stage = config.pipeline.stages[0]
    values = {"company": prepared.company_name or (prepared.name.full if prepared.name else None)}
    locale = config.organization.default_locale
    name = render_text(rule.deal_name.get(locale), values, locale) if rule.deal_name else (values["company"] or lead_id)
    deal = {
        "name": name, "contact_id": contact_id, "company_id": prepared.company_id, "lead_id": lead_id,
        "owner_id": owner_id, "stage_id": stage.id, "status": "open", "win_probability": stage.win_probability,
        "amount": None, "currency": config.organization.currency, "source_id": prepared.submission.source_id,
        "products": list(prepared.products), "created_at": now, "updated_at": now, "stage_entered_at": now,
        "last_activity_at": now, "next_activity_at": next_activity_at,
        "stale_due_at": stale_due_at(config, stage.id, now), "qualification_rule": rule.id, "threads": [],
    }
    history = {"stage_id": stage.id, "entered_at": now, "rule": rule.id, "event_key": prepared.event_key}
    return [Write(f"deals/{deal_id}", deal, "create"), Write(f"deals/{deal_id}/stage_history/00", history, "create")]


def _outbox_email(config: CrmConfig, outbox_id: str, kind: str, template: Any, values: dict, locale: str,
                  sender: Member, to: str, prepared: PreparedLead, now: dt.datetime) -> Write:
    subject, body = render_email(template, values, locale)
    return Write(f"outbox/{outbox_id}", {
        "kind": "email", "purpose": kind, "status": "pending", "attempts": 0, "not_before": now,
        "created_at": now, "event_key": prepared.event_key, "lead_id": prepared.lead_id, "locale": locale,
        "email": {"sender": sender.email, "sender_name": sender.name, "to": [to], "subject": subject,
                  "text_body": body, "message_id": f"<{outbox_id}@{config.organization.sender_domain}>"},
    }, "create")


def _no_reply_writes(config: CrmConfig, prepared: PreparedLead, owner: Member, contact_id: str, lead_id: str,
                     deal_id: str | None, now: dt.datetime) -> list[Write]:
    followup_id = f"fu-{lead_id}-no-reply"
    days = config.followup.no_reply_business_days
    due_at = member_calendar(config, owner, now.year).add_business_days(now, days)
    followup = {"kind": "no_reply", "contact_id": contact_id, "lead_id": lead_id, "deal_id": deal_id,
                "owner_id": owner.id, "anchor_at": now, "due_at": due_at, "business_days": days,
                "status": "scheduled", "version": 1, "created_at": now}
    task = {"kind": "cloud_task", "purpose": "no_reply_check", "status": "pending", "attempts": 0,
            "not_before": now, "created_at": now, "event_key": prepared.event_key, "lead_id": lead_id,
            "task": {"queue": config.followup.queue, "logical_key": followup_id, "version": 1,
                     "target": "followup", "schedule_time": due_at,
                     "payload": {"type": "no_reply_check", "followup_id": followup_id, "version": 1}}}
    return [Write(f"followups/{followup_id}", followup, "create"), Write(f"outbox/ob-{lead_id}-no-reply", task, "create")]


def _task_write(config: CrmConfig, prepared: PreparedLead, owner: Member, contact_id: str, lead_id: str,
                deal_id: str | None, due_at: dt.datetime, now: dt.datetime) -> Write:
    titles = {"zh-TW": "首次聯繫：{name}", "en": "First contact: {name}"}
    if prepared.incomplete:
        titles = {"zh-TW": "補齊聯絡資料：{name}", "en": "Complete contact details: {name}"}
    name = prepared.name.full if prepared.name else None
    return Write(f"tasks/tk-{lead_id}-first-contact", {
        "kind": "first_contact", "owner_id": owner.id, "contact_id": contact_id, "lead_id": lead_id,
        "deal_id": deal_id, "status": "open", "due_at": due_at, "created_at": now,
        "title": render_text(titles[owner.locale], {"name": name}, owner.locale), "event_key": prepared.event_key,
    }, "create")


def _load_write(owner_id: str, now: dt.datetime) -> Write:
    return Write(f"member_state/{owner_id}", {"open_leads": Increment(1), "assigned_total": Increment(1),
                                              "last_assigned_at": now}, "merge")


def _new_lead(config: CrmConfig, prepared: PreparedLead, snapshot: IntakeSnapshot, now: dt.datetime) -> IntakeDecision:
    """Create the lead and everything it causes: deal, task, messages, check, audit."""
    contact, contact_id = snapshot.contact, snapshot.contact_id or prepared.contact_id
    lead_id, engagement = prepared.lead_id, _engagement(snapshot.contact, now)
    score = _score(config, prepared, engagement, now)

    # Route and qualify.
    local_day = now.astimezone(_zone(config)).date()
    facts = routing.RoutingFacts(prepared.submission.source_id, prepared.region, prepared.products, score.total)
    assignment = routing.route(config, facts, snapshot.loads, local_day,
                               preferred_owner=(contact or {}).get("owner_id"))
    owner = config.member(assignment.owner_id)
    rule = _qualifying_rule(config, prepared, score.total)
    deal_id = ("dl-" + lead_id[3:]) if rule else None
    calendar = member_calendar(config, owner, now.year)
    task_due = calendar.add_working_hours(now, config.followup.first_contact_within_hours)

    result = IntakeResult("created", False, contact_id, lead_id, deal_id, owner.id, prepared.incomplete,
                          prepared.event_key)
    lead_path = f"leads/{lead_id}"
    lead = {
        "contact_id": contact_id, "company_id": prepared.company_id, "source_id": prepared.submission.source_id,
        "form_id": prepared.submission.form_id, "event_key": prepared.event_key, "status": "incomplete"
        if prepared.incomplete else "open", "owner_id": owner.id, "team_id": assignment.team_id,
        "routing": {"rule": assignment.rule_id, "strategy": assignment.strategy,
                    "skipped": [{"member_id": member, "reason": why} for member, why in assignment.skipped]},
        "score": score.total, "fit_rules": list(score.matched_rules), "fields": _jsonable(prepared.fields),
        "extra": _jsonable(prepared.submission.extra), "utm": prepared.utm, "locale": prepared.locale,
        "region": prepared.region, "invalid_fields": list(prepared.invalid_fields), "deal_id": deal_id,
        "phone": prepared.phone, "email": prepared.email.address if prepared.email else None,
        "submitted_at": prepared.submitted_at, "created_at": now, "updated_at": now, "submissions": 1,
        "first_contact_due_at": task_due,
    }
    writes = [
        _event_write(prepared, result, now),
        *_key_writes(prepared, snapshot, contact_id, now),
        _contact_write(prepared, contact_id, contact, owner.id, lead_id, deal_id, score, engagement, now),
        Write(lead_path, lead, "create"),
        _activity(prepared, contact_id, lead_id, deal_id, now),
        _task_write(config, prepared, owner, contact_id, lead_id, deal_id, task_due, now),
        _load_write(owner.id, now),
    ]
    if prepared.company_id and snapshot.company is None:
        writes.append(Write(f"companies/{prepared.company_id}", {
            "name": prepared.company_name or prepared.company_domain, "domain": prepared.company_domain,
            "source": "intake", "created_at": now, "updated_at": now}, "merge"))
    if prepared.company_id:
        writes.append(Write(f"companies/{prepared.company_id}", {"last_activity_at": now}, "merge"))
    if deal_id:
        writes += _deal_writes(config, prepared, rule, deal_id, contact_id, owner.id, lead_id, task_due, now)
    writes += _messages(config, prepared, owner, assignment, score.total, task_due, contact_id, lead_id, deal_id, now)
    writes += _audits(prepared, contact, contact_id, lead_path, assignment, rule, deal_id, owner.id, score.total,
                      config.pipeline.stages[0].id, now)
    return IntakeDecision(result, tuple(writes))


def _zone(config: CrmConfig) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(config.organization.time_zone)


def _messages(config: CrmConfig, prepared: PreparedLead, owner: Member, assignment: routing.Assignment,
              score: float, task_due: dt.datetime, contact_id: str, lead_id: str, deal_id: str | None,
              now: dt.datetime) -> list[Write]:
    values = _lead_values(config, prepared, owner, score, prepared.locale)
    writes = []
    if prepared.email and not prepared.incomplete:
        writes.append(_outbox_email(config, f"ob-{lead_id}-ack", "acknowledgement",
                                    config.templates.acknowledgement, values, prepared.locale, owner,
                                    prepared.email.original, prepared, now))
    due_local = task_due.astimezone(_member_zone(owner)).strftime("%Y-%m-%d %H:%M")
    notice_values = _lead_values(config, prepared, owner, score, owner.locale) | {
        "rule": assignment.rule_id, "due_local": f"{due_local} ({owner.time_zone})"}
    writes.append(_outbox_email(config, f"ob-{lead_id}-assignment", "assignment", config.templates.assignment,
                                notice_values, owner.locale, owner, owner.email, prepared, now))
    if prepared.email:
        writes += _no_reply_writes(config, prepared, owner, contact_id, lead_id, deal_id, now)
    return writes


def _member_zone(member: Member) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(member.time_zone)


def _audits(prepared: PreparedLead, contact: dict | None, contact_id: str, lead_path: str,
            assignment: routing.Assignment, rule: Any, deal_id: str | None, owner_id: str, score: float,
            first_stage: str, now: dt.datetime) -> list[Write]:
    contact_path = f"contacts/{contact_id}"
    entries = [
        ("contact.updated" if contact else "contact.created", contact_path, "dedupe_by_email_or_phone",
         {"owner_id": contact.get("owner_id")} if contact else None, {"owner_id": owner_id}),
        ("lead.created", lead_path, f"source:{prepared.submission.source_id}", None, {"score": score}),
        ("lead.assigned", lead_path, f"{assignment.rule_id}/{assignment.strategy}", None,
         {"team_id": assignment.team_id, "owner_id": owner_id}),
    ]
    if deal_id:
        entries.append(("deal.opened", f"deals/{deal_id}", rule.id, None, {"stage_id": first_stage}))
    return [_audit(prepared, index, *entry, now) for index, entry in enumerate(entries)]
