"""Effects of one logged mail message on the CRM, decided from one consistent read.

``decide`` is pure: from the message's facts and what its transaction read,
it returns the result and every write, audit entries included, so the
message's changes commit together or not at all. Only a prospect's
``personal`` inbound message counts as a reply; auto-replies, bounces, read
receipts, list mail, drafts and spam never do.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from lib.config.schema import CrmConfig
from lib.domain import ids, scoring
from lib.services.intake_decide import MAX_ENGAGEMENT_EVENTS, stale_due_at
from lib.services.mail_link import MessageFacts, MessageSnapshot, Party, message_link_id, thread_link_id
from lib.services.mail_store import Delete, Outcome
from lib.services.writes import Increment, Write

EMAIL_SOURCE_ID = "email"
AUTOMATION_ACTOR = "automation:gmail_sync"
SOFT_BOUNCE_HOLD = dt.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class MessageResult:
    """Outcome of one message.

    Attributes:
        status: ``logged``, ``duplicate`` or ``ignored``.
        kind: The classification kind.
        reason: Why it was ignored, or the classification evidence.
        activity_id: The activity that logs it, when logged.
        contact_id: The contact it was logged to.
        deal_id: The deal it was logged to.
        reply: True when it counted as the prospect's reply.
        effects: Names of the effects applied, e.g. ``followups_cancelled``.
        capture_skipped: Why an unknown sender's personal message did not
            become a lead, such as ``too_old``; None when capture was not
            considered or succeeded.
    """

    status: str
    kind: str
    reason: str
    activity_id: str | None = None
    contact_id: str | None = None
    deal_id: str | None = None
    reply: bool = False
    effects: tuple[str, ...] = ()
    capture_skipped: str | None = None


def captured_lead_id(facts: MessageFacts) -> str:
    """Return the id the lead gets when this message's sender is captured as a lead."""
    return "ld-" + ids.digest(f"{EMAIL_SOURCE_ID}:{facts.capture_event_id}")


def intake_activity_id(facts: MessageFacts) -> str:
    """Return the id of the activity that intake writes for the captured message."""
    return "ev-" + ids.digest(f"{EMAIL_SOURCE_ID}:{facts.capture_event_id}", length=32)


def primary_contact(facts: MessageFacts, snapshot: MessageSnapshot) -> str | None:
    """Pick the contact a message is mostly about: bounce recipient, sender, any party, then a link."""
    if facts.bounce_recipient is not None:
        return snapshot.contact_ids.get(facts.bounce_recipient.canonical)
    if facts.sender is not None and facts.sender.canonical in snapshot.contact_ids:
        return snapshot.contact_ids[facts.sender.canonical]
    for party in facts.parties:
        if party.canonical in snapshot.contact_ids:
            return snapshot.contact_ids[party.canonical]
    return snapshot.link_contact_id


class _Plan:
    """Writes and audit entries collected while deciding one message."""

    def __init__(self, facts: MessageFacts, now: dt.datetime):
        self.facts = facts
        self.now = now
        self.writes: list[Write | Delete] = []
        self.effects: list[str] = []
        self._audits = 0

    def audit(self, action: str, target: str, rule: str, before: Any, after: Any) -> None:
        self.writes.append(Write(f"audit/{self.facts.activity_id}-{self._audits:02d}", {
            "action": action, "target": target, "rule": rule, "event_key": self.facts.event_key,
            "before": before, "after": after, "actor": AUTOMATION_ACTOR, "at": self.now,
        }))
        self._audits += 1


def decide(config: CrmConfig, facts: MessageFacts, snapshot: MessageSnapshot,
           now: dt.datetime) -> Outcome[MessageResult]:
    """Decide what one message does, given what its transaction read."""
    if snapshot.activity is not None:
        return Outcome(MessageResult("duplicate", facts.kind, "already logged", facts.activity_id))
    if snapshot.own_link and snapshot.own_link.get("activity_id") != facts.activity_id:
        return _seen_in_other_mailbox(facts, snapshot, now)
    if facts.kind == "draft":
        return Outcome(MessageResult("ignored", facts.kind, "draft"))

    primary = primary_contact(facts, snapshot)
    if primary is None and snapshot.deal_id is None:
        return Outcome(MessageResult("ignored", facts.kind, "no matching contact or deal"))

    plan = _Plan(facts, now)
    contact = snapshot.contacts.get(primary) if primary else None
    captured = bool(contact) and contact.get("open_lead_id") == captured_lead_id(facts)
    reply = _is_reply(config, facts, snapshot, primary, captured)

    _log_activity(plan, snapshot, primary, contact, captured, reply)
    if contact is not None:
        _contact_effects(config, plan, snapshot, primary, contact, reply)
    # Auto-replies, bounces, receipts, list mail and spam are no real activity on a
    # deal, so they must not reset its stale clock.
    if snapshot.deal_id and snapshot.deal is not None and facts.kind == "personal":
        _deal_effects(config, plan, snapshot, reply)
    if snapshot.company is not None and contact is not None:
        _company_effects(plan, contact["company_id"], snapshot.company)

    result = MessageResult("logged", facts.kind, facts.classification.reason, facts.activity_id, primary,
                           snapshot.deal_id, reply, tuple(plan.effects))
    return Outcome(result, plan.writes)


def _seen_in_other_mailbox(facts: MessageFacts, snapshot: MessageSnapshot,
                           now: dt.datetime) -> Outcome[MessageResult]:
    """Log nothing for a message another connected mailbox logged, but link this mailbox's thread."""
    link = snapshot.own_link or {}
    writes = []
    if facts.thread_id and (link.get("deal_id") or link.get("contact_id")):
        writes.append(Write(f"thread_links/{thread_link_id(facts.mailbox, facts.thread_id)}", {
            "mailbox": facts.mailbox, "thread_id": facts.thread_id, "deal_id": link.get("deal_id"),
            "contact_id": link.get("contact_id"), "updated_at": now}, "merge"))
    result = MessageResult("duplicate", facts.kind, "logged from another mailbox", link.get("activity_id"),
                           link.get("contact_id"), link.get("deal_id"))
    return Outcome(result, writes)


def _is_internal(config: CrmConfig, party: Party) -> bool:
    return party.canonical.rsplit("@", 1)[-1] in config.organization.internal_domains


def _is_reply(config: CrmConfig, facts: MessageFacts, snapshot: MessageSnapshot, primary: str | None,
              captured: bool) -> bool:
    sender = facts.sender
    if facts.direction != "inbound" or facts.kind != "personal" or captured or sender is None:
        return False
    return snapshot.contact_ids.get(sender.canonical) == primary and not _is_internal(config, sender)


# ---------------------------------------------------------------------------
# The activity and its links
# ---------------------------------------------------------------------------


def _log_activity(plan: _Plan, snapshot: MessageSnapshot, primary: str | None, contact: dict | None,
                  captured: bool, reply: bool) -> None:
    facts, now = plan.facts, plan.now
    activity = {
        "kind": "email", "direction": facts.direction, "mail_kind": facts.kind,
        "reason": facts.classification.reason, "mailbox": facts.mailbox, "gmail_id": facts.gmail_id,
        "thread_id": facts.thread_id, "message_id": facts.message_id, "contact_id": primary,
        "contact_ids": sorted(set(snapshot.contact_ids.values())), "deal_id": snapshot.deal_id,
        "company_id": (contact or {}).get("company_id"), "subject": facts.subject, "summary": facts.snippet,
        "occurred_at": facts.occurred_at, "recorded_at": now, "event_key": facts.event_key,
        "counts_as_reply": reply, "hidden": facts.kind == "spam", "spam": facts.kind == "spam",
        "labels": sorted(facts.labels),
    }
    if captured:
        # Intake logged the enquiry as a form activity; this activity replaces it.
        activity |= {"lead_id": captured_lead_id(facts), "source_id": EMAIL_SOURCE_ID}
        plan.writes.append(Delete(f"activities/{intake_activity_id(facts)}"))
        plan.effects.append("lead_captured")
    plan.writes.append(Write(f"activities/{facts.activity_id}", activity, "set"))
    plan.audit("activity.logged", f"activities/{facts.activity_id}", f"mail:{facts.kind}:{facts.direction}",
               None, {"contact_id": primary, "deal_id": snapshot.deal_id, "counts_as_reply": reply})

    link = {"activity_id": facts.activity_id, "mailbox": facts.mailbox, "gmail_id": facts.gmail_id,
            "thread_id": facts.thread_id, "message_id": facts.message_id, "contact_id": primary,
            "deal_id": snapshot.deal_id, "created_at": now}
    if facts.message_id:
        plan.writes.append(Write(f"message_links/{message_link_id(facts.message_id)}", link, "set"))
    if facts.thread_id:
        plan.writes.append(Write(f"thread_links/{thread_link_id(facts.mailbox, facts.thread_id)}", {
            "mailbox": facts.mailbox, "thread_id": facts.thread_id, "contact_id": primary,
            "deal_id": snapshot.deal_id, "updated_at": now}, "merge"))


# ---------------------------------------------------------------------------
# Contact: timestamps, reply effects, bounces
# ---------------------------------------------------------------------------


def _later(current: Any, candidate: dt.datetime) -> dt.datetime:
    return candidate if not isinstance(current, dt.datetime) or candidate > current else current


def _contact_effects(config: CrmConfig, plan: _Plan, snapshot: MessageSnapshot, contact_id: str,
                     contact: dict, reply: bool) -> None:
    facts = plan.facts
    path = f"contacts/{contact_id}"
    update: dict[str, Any] = {"updated_at": plan.now, "last_activity_at": _later(
        contact.get("last_activity_at"), facts.occurred_at)}
    # Only mail the contact wrote counts as inbound from them: a message they were
    # merely copied on is no sign that they answered.
    sender_is_contact = facts.sender is not None and snapshot.contact_ids.get(facts.sender.canonical) == contact_id
    if facts.kind == "personal" and facts.direction == "outbound":
        update["last_outbound_at"] = _later(contact.get("last_outbound_at"), facts.occurred_at)
    elif facts.kind == "personal" and sender_is_contact:
        update["last_inbound_at"] = _later(contact.get("last_inbound_at"), facts.occurred_at)
    _same_person_addresses(plan, snapshot, contact_id, contact, update)
    if reply:
        _reply_effects(config, plan, snapshot, contact_id, contact, update)
    if facts.kind == "bounce":
        _bounce_effects(plan, snapshot, contact_id, contact, update)
    plan.writes.append(Write(path, update, "merge"))


def _same_person_addresses(plan: _Plan, snapshot: MessageSnapshot, contact_id: str, contact: dict,
                           update: dict[str, Any]) -> None:
    """Add a Reply-To address that is the sender's own plus-address to the sender's contact."""
    facts = plan.facts
    sender = facts.sender
    if facts.direction != "inbound" or sender is None or snapshot.contact_ids.get(sender.canonical) != contact_id:
        return
    emails = set(contact.get("emails", []))
    for party in facts.parties:
        if party.header != "Reply-To" or party.canonical in snapshot.contact_ids:
            continue
        if _base_address(party.address) == _base_address(sender.address):
            emails.add(party.address)
            key = ids.key_doc_id("email", party.canonical)
            plan.writes.append(Write(f"contact_keys/{key}", {"contact_id": contact_id, "created_at": plan.now},
                                     "create"))
            plan.audit("contact.email_added", f"contacts/{contact_id}", "reply_to_plus_address",
                       None, {"key": key})
    if emails != set(contact.get("emails", [])):
        update["emails"] = sorted(emails)


def _base_address(address: str) -> str:
    local, _, domain = address.lower().partition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def _reply_effects(config: CrmConfig, plan: _Plan, snapshot: MessageSnapshot, contact_id: str, contact: dict,
                   update: dict[str, Any]) -> None:
    now = plan.now
    for followup_id, followup in snapshot.followups.items():
        if followup.get("kind") != "no_reply":
            continue
        version = int(followup.get("version", 1)) + 1
        plan.writes.append(Write(f"followups/{followup_id}", {
            "status": "cancelled", "version": version, "cancelled_at": now, "cancel_reason": "replied",
            "cancelled_by": plan.facts.event_key}, "merge"))
        plan.audit("followup.cancelled", f"followups/{followup_id}", "reply_cancels_no_reply_check",
                   {"status": followup.get("status"), "version": followup.get("version")},
                   {"status": "cancelled", "version": version})
        plan.effects.append("followup_cancelled")
    _stop_enrolments(plan, snapshot, "replied", "reply_stops_sequence")

    engagement = list(contact.get("engagement", []))
    engagement.append({"kind": "email_reply", "at": now})
    engagement = engagement[-MAX_ENGAGEMENT_EVENTS:]
    points = scoring.engagement_score(config.scoring, [(e["kind"], e["at"]) for e in engagement], now)
    before = contact.get("score") or {}
    fit = float(before.get("fit", 0.0))
    total = round(fit + points, 1)
    update |= {"engagement": engagement, "last_reply_at": now, "replies": Increment(1),
               "score": {**before, "fit": fit, "engagement": points, "total": total, "computed_at": now}}
    plan.audit("contact.scored", f"contacts/{contact_id}", "engagement:email_reply",
               {"score": before.get("total")}, {"score": total})
    plan.effects.append("engagement_added")


def _stop_enrolments(plan: _Plan, snapshot: MessageSnapshot, status: str, rule: str) -> None:
    for enrolment_id in snapshot.enrolments:
        plan.writes.append(Write(f"enrolments/{enrolment_id}", {
            "status": status, "stopped_at": plan.now, "stopped_by": plan.facts.event_key}, "merge"))
        plan.audit(f"enrolment.{status}", f"enrolments/{enrolment_id}", rule, {"status": "active"},
                   {"status": status})
        plan.effects.append(f"enrolment_{status}")


def _address_failed(status: str | None) -> bool:
    """Return True when a permanent bounce says the address itself is bad.

    RFC 3463 classes 5.3 (mail system), 5.4 (network) and 5.7 (security or
    policy, such as a spam block) reject the message, not the address, so they
    only hold sends like a temporary bounce.
    """
    return not (status or "").startswith(("5.3.", "5.4.", "5.7."))


def _bounce_effects(plan: _Plan, snapshot: MessageSnapshot, contact_id: str, contact: dict,
                    update: dict[str, Any]) -> None:
    facts, now = plan.facts, plan.now
    bounce = facts.classification.bounce
    recipient = facts.bounce_recipient
    if bounce is None or recipient is None:
        return
    path = f"contacts/{contact_id}"
    if bounce.permanent and _address_failed(bounce.status):
        invalid = sorted(set(contact.get("invalid_emails", [])) | {recipient.address})
        update |= {"email_status": "invalid", "invalid_emails": invalid, "bounced_at": now}
        plan.audit("contact.email_invalid", path, f"bounce:{bounce.status or 'permanent'}",
                   {"email_status": contact.get("email_status")}, {"email_status": "invalid"})
        plan.effects.append("email_invalid")
        _stop_enrolments(plan, snapshot, "bounced", "hard_bounce_stops_sequence")
        return
    hold = now + SOFT_BOUNCE_HOLD
    update |= {"soft_bounces": Increment(1), "hold_sends_until": hold}
    plan.audit("contact.sends_held", path, f"bounce:{bounce.status or 'temporary'}",
               {"hold_sends_until": contact.get("hold_sends_until")}, {"hold_sends_until": hold})
    plan.effects.append("sends_held")


# ---------------------------------------------------------------------------
# Deal and company roll-ups
# ---------------------------------------------------------------------------


def _deal_effects(config: CrmConfig, plan: _Plan, snapshot: MessageSnapshot, reply: bool) -> None:
    facts, now, deal = plan.facts, plan.now, snapshot.deal or {}
    path = f"deals/{snapshot.deal_id}"
    last = _later(deal.get("last_activity_at"), facts.occurred_at)
    stage_id = deal.get("stage_id", "")
    update: dict[str, Any] = {"last_activity_at": last, "updated_at": now}
    if facts.thread_id and facts.thread_id not in deal.get("threads", []):
        update["threads"] = [*deal.get("threads", []), facts.thread_id]

    rule = config.mail.stage_on_reply
    if reply and rule and deal.get("status", "open") == "open" and stage_id in rule.from_stages:
        stage = config.pipeline.stage(rule.to)
        update |= {"stage_id": stage.id, "stage_entered_at": now, "win_probability": stage.win_probability}
        plan.writes.append(Write(f"{path}/stage_history/{facts.activity_id}", {
            "stage_id": stage.id, "entered_at": now, "rule": "stage_on_reply", "event_key": facts.event_key}))
        plan.audit("deal.stage_changed", path, "stage_on_reply", {"stage_id": stage_id}, {"stage_id": stage.id})
        plan.effects.append("stage_changed")
        stage_id = stage.id
    update["stale_due_at"] = stale_due_at(config, stage_id, last)
    plan.writes.append(Write(path, update, "merge"))


def _company_effects(plan: _Plan, company_id: str, company: dict) -> None:
    last = _later(company.get("last_activity_at"), plan.facts.occurred_at)
    plan.writes.append(Write(f"companies/{company_id}", {"last_activity_at": last}, "merge"))
