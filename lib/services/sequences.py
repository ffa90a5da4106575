"""Nurture sequences: enrolment, paced sending from the owner's mailbox, exits and opt-out.

``tick`` runs on a schedule (the ``sequence_tick`` function, every few
minutes). It enrols leads created since its cursor whose rules match, then
advances every active enrolment that is due. Each advance is one transaction
that re-reads the enrolment, the contact, the deal and the sender's quota, so a
concurrent or repeated tick sends each step at most once.

A step is sent only inside the sender's working hours on a working day of the
team calendar, under the sender's daily cap and per-minute pace. A step that
does not fit moves ``next_send_at`` to the next allowed moment: it is deferred,
never dropped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import zoneinfo
from collections import Counter
from collections.abc import Mapping
from typing import Any

from lib.config.schema import CrmConfig, Member, Sequence
from lib.domain import unsubscribe
from lib.domain.clock import Clock
from lib.domain.templates import render_email
from lib.errors import ConfigError, CrmError
from lib.services.calendars import member_calendar
from lib.services.docstore import DocReader, DocStore
from lib.services.followup import replied_after
from lib.services.writes import Write

logger = logging.getLogger(__name__)

CURSOR_PATH = "automation_state/sequence_enrolment"
FIRST_RUN_LOOKBACK = dt.timedelta(days=1)
ENROL_BATCH = 200
ACTIVE = "active"
MEETING_STAGES = frozenset({"meeting"})
FOOTER = {
    "zh-TW": "\n\n—\n若不想再收到這類郵件，請點此取消訂閱：{url}\n",
    "en": "\n\n—\nTo stop receiving these emails, unsubscribe here: {url}\n",
}


@dataclasses.dataclass(frozen=True)
class SequenceSettings:
    """Deployment settings: the public unsubscribe URL and the key that signs its tokens."""

    unsubscribe_url: str
    unsubscribe_key: bytes | None


def enrolment_id(contact_id: str, sequence_id: str) -> str:
    return f"{contact_id}-{sequence_id}"


def rule_matches(sequence: Sequence, lead: Mapping[str, Any], deal: Mapping[str, Any] | None) -> bool:
    """Tell whether a lead (and its deal) meets every condition of the sequence's enrolment rule."""
    rule = sequence.enrol
    score = float(lead.get("score") or 0)
    if rule.sources and lead.get("source_id") not in rule.sources:
        return False
    if rule.min_score is not None and score < rule.min_score:
        return False
    if rule.max_score is not None and score > rule.max_score:
        return False
    return not rule.stages or (deal is not None and deal.get("stage_id") in rule.stages)


def exit_reason(enrolment: Mapping[str, Any], contact: Mapping[str, Any] | None,
                deal: Mapping[str, Any] | None) -> str | None:
    """Return why an enrolment must stop (replied, bounced, opted_out, meeting_booked, ...), or None."""
    if contact is None:
        return "contact_missing"
    if contact.get("opted_out"):
        return "opted_out"
    if contact.get("email_status") in ("bounced", "invalid"):
        return "bounced"
    if replied_after(contact, enrolment["enrolled_at"]):
        return "replied"
    meeting_at = [doc.get("last_meeting_at") for doc in (contact, deal or {})]
    if any(isinstance(at, dt.datetime) and at > enrolment["enrolled_at"] for at in meeting_at):
        return "meeting_booked"
    if deal is not None and deal.get("stage_id") in MEETING_STAGES:
        return "meeting_booked"
    if deal is not None and deal.get("status") in ("won", "lost"):
        return "deal_closed"
    return None


class SequenceService:
    def __init__(self, config: CrmConfig, store: DocStore, clock: Clock, settings: SequenceSettings):
        self._config = config
        self._store = store
        self._clock = clock
        self._settings = settings

    # ------------------------------------------------------------ enrolment

    def enrol_lead(self, lead_id: str) -> list[str]:
        """Enrol the lead's contact in every active sequence whose rule matches; return new enrolment ids.

        Safe to call more than once: an existing enrolment is left alone.
        Intake may call it right after its commit; ``tick`` calls it for every new lead.
        """
        now = self._clock.now()
        return self._store.transact(lambda reader: self._enrol(reader, lead_id, now), f"enrolment of {lead_id!r}")

    def _enrol(self, reader: DocReader, lead_id: str, now: dt.datetime) -> tuple[list[str], list[Write]]:
        lead = reader.get_all([f"leads/{lead_id}"])[f"leads/{lead_id}"]
        if not lead or not lead.get("contact_id"):
            return [], []
        contact_id = lead["contact_id"]
        candidates = [seq for seq in self._config.sequences if seq.active]
        paths = [f"contacts/{contact_id}"] + [f"enrolments/{enrolment_id(contact_id, seq.id)}" for seq in candidates]
        if lead.get("deal_id"):
            paths.append(f"deals/{lead['deal_id']}")
        docs = reader.get_all(paths)
        contact, deal = docs[paths[0]], docs.get(f"deals/{lead.get('deal_id')}")
        if not contact or contact.get("opted_out") or not contact.get("primary_email"):
            return [], []

        created, writes = [], []
        for seq in candidates:
            doc_id = enrolment_id(contact_id, seq.id)
            if docs[f"enrolments/{doc_id}"] is not None or not rule_matches(seq, lead, deal):
                continue
            owner = self._sender(lead.get("owner_id"))
            first_at = member_calendar(self._config, owner, now.year).add_business_days(now, seq.steps[0].delay_business_days)
            writes.append(Write(f"enrolments/{doc_id}", {
                "contact_id": contact_id, "lead_id": lead_id, "deal_id": lead.get("deal_id"), "sequence_id": seq.id,
                "owner_id": owner.id, "status": ACTIVE, "step": 0, "enrolled_at": now, "next_send_at": first_at,
                "sent": [], "created_at": now, "updated_at": now}, "create"))
            created.append(doc_id)
        return created, writes

    def _sender(self, owner_id: str | None) -> Member:
        for member in self._config.members:
            if member.id == owner_id and member.active:
                return member
        # NOTE: imported owners have no mailbox the CRM can send from, so the fallback owner sends.
        return self._config.member(self._config.routing.fallback_owner)

    # ------------------------------------------------------------ tick

    def tick(self, limit: int = 100) -> Counter:
        """Enrol new leads, then advance every due enrolment; return counts by outcome."""
        outcomes: Counter = Counter()
        for lead_id in self._new_leads():
            outcomes["enrolled"] += len(self.enrol_lead(lead_id))
        due = self._store.query("enrolments", [("status", "==", ACTIVE), ("next_send_at", "<=", self._clock.now())],
                                order_by="next_send_at", limit=limit)
        for doc_id, _ in list(due):
            try:
                outcomes[self.advance(doc_id)] += 1
            except CrmError as exc:
                logger.error("sequence step failed", extra={"enrolment_id": doc_id, "error": str(exc)})
                outcomes["error"] += 1
        return outcomes

    def _new_leads(self) -> list[str]:
        now = self._clock.now()
        cursor = self._store.transact(lambda reader: (reader.get_all([CURSOR_PATH])[CURSOR_PATH], []), "cursor")
        after = (cursor or {}).get("after") or now - FIRST_RUN_LOOKBACK
        rows = list(self._store.query("leads", [("created_at", ">", after)], order_by="created_at", limit=ENROL_BATCH))
        if rows:
            newest = max(lead["created_at"] for _, lead in rows)
            self._store.write_batch([Write(CURSOR_PATH, {"after": newest, "updated_at": now}, "merge")])
        return [lead_id for lead_id, _ in rows]

    # ------------------------------------------------------------ sending

    def advance(self, doc_id: str) -> str:
        """Send the enrolment's due step, defer it, or end the enrolment; return the outcome.

        Raises:
            ConfigError: ``CRM_UNSUBSCRIBE_KEY`` is not set, so no sequence email may be sent.
            TransientError: the store stayed unavailable.
        """
        if not self._settings.unsubscribe_key:
            raise ConfigError(f"{unsubscribe.KEY_ENV} is not set; sequence emails need a signed unsubscribe link")
        now = self._clock.now()
        return self._store.transact(lambda reader: self._advance(reader, doc_id, now), f"enrolment {doc_id!r}")

    def _advance(self, reader: DocReader, doc_id: str, now: dt.datetime) -> tuple[str, list[Write]]:
        # 1. Load the enrolment and what decides whether it may continue.
        path = f"enrolments/{doc_id}"
        enrolment = reader.get_all([path])[path]
        if not enrolment or enrolment.get("status") != ACTIVE or enrolment["next_send_at"] > now:
            return "not_due", []
        sequence = self._config.sequence(enrolment["sequence_id"])
        if sequence is None or not sequence.active:
            return "stopped", [Write(path, {"status": "stopped", "exit_reason": "sequence_removed", "updated_at": now}, "merge")]
        paths = [f"contacts/{enrolment['contact_id']}"] + ([f"deals/{enrolment['deal_id']}"] if enrolment.get("deal_id") else [])
        docs = reader.get_all(paths)
        contact, deal = docs[paths[0]], docs.get(paths[-1]) if len(paths) > 1 else None

        # 2. Stop on reply, bounce, opt-out, meeting or a closed deal.
        reason = exit_reason(enrolment, contact, deal)
        if reason:
            return reason, [Write(path, {"status": reason, "exit_reason": reason, "ended_at": now, "updated_at": now}, "merge")]

        # 3. Defer while a temporary bounce holds sends to the contact, when outside
        # the sender's working time, or when over the sender's limits.
        hold = (contact or {}).get("hold_sends_until")
        if isinstance(hold, dt.datetime) and hold > now:
            return "deferred_hold", [self._defer(path, hold, "temporary_bounce_hold", now)]
        sender = self._sender(enrolment.get("owner_id"))
        calendar = member_calendar(self._config, sender, now.year)
        if not calendar.is_working_time(now):
            return "deferred_hours", [self._defer(path, calendar.next_working_moment(now), "outside_working_hours", now)]
        local_day = now.astimezone(zoneinfo.ZoneInfo(sender.time_zone)).date()
        quota_path = f"send_quota/{sender.email.lower()}:{local_day.isoformat()}"
        quota = reader.get_all([quota_path])[quota_path] or {}
        deferred = self._over_limit(quota, calendar, local_day, now)
        if deferred is not None:
            kind, until = deferred
            return f"deferred_{kind}", [self._defer(path, until, f"{kind}_limit", now)]

        # 4. Send the step and book it against the quota.
        return "sent", self._send(path, doc_id, enrolment, sequence, contact, sender, quota_path, quota, calendar, now)

    def _over_limit(self, quota: Mapping[str, Any], calendar, local_day: dt.date,
                    now: dt.datetime) -> tuple[str, dt.datetime] | None:
        limits = self._config.sending
        if int(quota.get("count", 0)) >= limits.daily_cap_per_mailbox:
            day_end = calendar.working_day_window(local_day)[1]
            return "daily", calendar.next_working_moment(day_end)
        minute = now.replace(second=0, microsecond=0)
        if quota.get("minute") == minute.isoformat() and int(quota.get("minute_count", 0)) >= limits.per_minute_per_mailbox:
            return "minute", calendar.next_working_moment(minute + dt.timedelta(minutes=1))
        return None

    @staticmethod
    def _defer(path: str, until: dt.datetime, reason: str, now: dt.datetime) -> Write:
        return Write(path, {"next_send_at": until, "deferred_reason": reason, "updated_at": now}, "merge")

    def _send(self, path: str, doc_id: str, enrolment: dict, sequence: Sequence, contact: dict, sender: Member,
              quota_path: str, quota: Mapping[str, Any], calendar, now: dt.datetime) -> list[Write]:
        step_index = int(enrolment.get("step", 0))
        outbox_id = f"ob-enr-{doc_id}-s{step_index + 1}"
        email = self._email(outbox_id, sequence, step_index, enrolment, contact, sender)
        minute = now.replace(second=0, microsecond=0).isoformat()
        same_minute = quota.get("minute") == minute
        sent = list(enrolment.get("sent", [])) + [{"step": step_index + 1, "outbox_id": outbox_id, "at": now}]
        update: dict[str, Any] = {"step": step_index + 1, "sent": sent, "last_sent_at": now, "updated_at": now,
                                  "deferred_reason": None}
        if step_index + 1 >= len(sequence.steps):
            update |= {"status": "completed", "ended_at": now}
        else:
            update["next_send_at"] = calendar.add_business_days(now, sequence.steps[step_index + 1].delay_business_days)
        return [
            Write(f"outbox/{outbox_id}", {
                "kind": "email", "purpose": "sequence_step", "status": "pending", "attempts": 0, "not_before": now,
                "created_at": now, "lead_id": enrolment.get("lead_id"), "enrolment_id": doc_id,
                "contact_id": enrolment["contact_id"],
                "sequence_id": sequence.id, "step": step_index + 1, "email": email}, "create"),
            Write(quota_path, {"mailbox": sender.email.lower(), "count": int(quota.get("count", 0)) + 1,
                               "minute": minute, "minute_count": int(quota.get("minute_count", 0)) + 1 if same_minute else 1,
                               "updated_at": now}, "merge"),
            Write(path, update, "merge"),
        ]

    def _email(self, outbox_id: str, sequence: Sequence, step_index: int, enrolment: dict, contact: dict,
               sender: Member) -> dict[str, Any]:
        locale = contact.get("locale") if contact.get("locale") in ("zh-TW", "en") else self._config.organization.default_locale
        url = self.unsubscribe_link(enrolment["contact_id"], sequence.id)
        values = {"name": contact.get("display_name") or "", "first_name": contact.get("given_name") or contact.get("display_name") or "",
                  "company": contact.get("company_name") or "", "rep_name": sender.name,
                  "organization": self._config.organization.name, "unsubscribe_url": url}
        subject, body = render_email(sequence.steps[step_index].template, values, locale)
        return {"sender": sender.email, "sender_name": sender.name, "to": [contact["primary_email"]],
                "subject": subject, "text_body": body + FOOTER[locale].format(url=url),
                "message_id": f"<{outbox_id}@{self._config.organization.sender_domain}>",
                "headers": [["List-Unsubscribe", f"<{url}>"], ["List-Unsubscribe-Post", "List-Unsubscribe=One-Click"]]}

    # ------------------------------------------------------------ unsubscribe and manual stop

    def unsubscribe_link(self, contact_id: str, sequence_id: str | None) -> str:
        """Return the signed one-click unsubscribe URL for the contact.

        Raises:
            ConfigError: ``CRM_UNSUBSCRIBE_KEY`` is missing or shorter than 16 bytes.
        """
        if not self._settings.unsubscribe_key:
            raise ConfigError(f"{unsubscribe.KEY_ENV} is not set; sequence emails need a signed unsubscribe link")
        token = unsubscribe.make_token(self._settings.unsubscribe_key, contact_id, sequence_id)
        return f"{self._settings.unsubscribe_url}?t={token}"

    def verify_unsubscribe(self, token: str) -> unsubscribe.UnsubscribeClaims:
        """Check a token from an unsubscribe link.

        Raises:
            InvalidInputError: the token is malformed or not signed with this deployment's key.
            ConfigError: ``CRM_UNSUBSCRIBE_KEY`` is not set.
        """
        if not self._settings.unsubscribe_key:
            raise ConfigError(f"{unsubscribe.KEY_ENV} is not set")
        return unsubscribe.verify_token(self._settings.unsubscribe_key, token)

    def opt_out(self, contact_id: str, sequence_id: str | None, reason: str) -> int:
        """Mark the contact opted out of all sequence email and end its active enrolments; return how many ended."""
        now = self._clock.now()
        active = [doc_id for doc_id, _ in self._store.query(
            "enrolments", [("contact_id", "==", contact_id), ("status", "==", ACTIVE)])]

        def body(reader: DocReader) -> tuple[int, list[Write]]:
            contact_path = f"contacts/{contact_id}"
            if reader.get_all([contact_path])[contact_path] is None:
                return 0, []
            writes = [Write(contact_path, {"opted_out": True, "opted_out_at": now, "opt_out_reason": reason,
                                           "opt_out_sequence_id": sequence_id, "updated_at": now}, "merge")]
            writes += [Write(f"enrolments/{doc_id}", {"status": "opted_out", "exit_reason": "opted_out",
                                                      "ended_at": now, "updated_at": now}, "merge") for doc_id in active]
            return len(active), writes

        ended = self._store.transact(body, f"opt-out of contact {contact_id!r}")
        logger.info("contact opted out", extra={"contact_id": contact_id, "sequence_id": sequence_id,
                                                "reason": reason, "enrolments_ended": ended})
        return ended

    def stop(self, doc_id: str, actor: str) -> bool:
        """End an active enrolment by hand; return False when it was not active."""
        now = self._clock.now()

        def body(reader: DocReader) -> tuple[bool, list[Write]]:
            path = f"enrolments/{doc_id}"
            enrolment = reader.get_all([path])[path]
            if not enrolment or enrolment.get("status") != ACTIVE:
                return False, []
            return True, [Write(path, {"status": "stopped", "exit_reason": "manual", "stopped_by": actor,
                                       "ended_at": now, "updated_at": now}, "merge")]

        return self._store.transact(body, f"stop of enrolment {doc_id!r}")
