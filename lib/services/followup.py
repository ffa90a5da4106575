"""The no-reply check: when a follow-up falls due, remind the owner once unless the contact replied.

Cloud Tasks calls the ``followup`` function at the due time, at least once. The
check runs in one transaction that reads the follow-up and moves it out of
``scheduled``, so a retried or duplicated call finds it ``fired`` or ``done``
and does nothing. The reminder task and the notifications have ids derived from
the follow-up id, so even a replay of the writes cannot create a second copy.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from lib.config.schema import DEFAULT_NO_REPLY_REMINDER, CrmConfig
from lib.domain.clock import Clock
from lib.errors import InvalidInputError
from lib.services import notify
from lib.services.docstore import DocReader, DocStore
from lib.services.writes import Write

logger = logging.getLogger(__name__)

AUTOMATION_ACTOR = "automation:followup"
# Fields that mail sync sets when a contact writes personally (not an auto-reply or bounce).
REPLY_FIELDS = ("last_inbound_at", "last_reply_at")


@dataclasses.dataclass(frozen=True)
class FollowupCheck:
    """One call of the ``followup`` function.

    Attributes:
        followup_id: Id of the ``followups`` document.
        version: Version the task was scheduled for, or None to accept the current one.
        idempotency_key: Caller's key, stored on the follow-up for tracing.
        retry_count: ``X-CloudTasks-TaskRetryCount`` of the call.
    """

    followup_id: str
    version: int | None
    idempotency_key: str | None = None
    retry_count: int = 0


@dataclasses.dataclass(frozen=True)
class CheckOutcome:
    status: str
    followup_id: str
    task_id: str | None = None
    outbox_ids: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_check(body: Mapping[str, Any], retry_count: int = 0) -> FollowupCheck:
    """Read a task body: ``no_reply_check`` with ``followup_id``, or ``followup_reminder`` with ``lead_id``.

    Raises:
        InvalidInputError: the type is unknown, the id is missing, or the version is not an integer.
    """
    kind = body.get("type")
    if kind == "no_reply_check":
        followup_id = body.get("followup_id")
    elif kind == "followup_reminder":
        followup_id = body.get("followup_id") or (f"fu-{body['lead_id']}-no-reply" if body.get("lead_id") else None)
    else:
        raise InvalidInputError("type", "'no_reply_check' or 'followup_reminder'", kind)
    if not isinstance(followup_id, str) or not followup_id or "/" in followup_id:
        raise InvalidInputError("followup_id", "a follow-up document id (or lead_id)", followup_id)

    version = body.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise InvalidInputError("version", "an integer", version)
    return FollowupCheck(followup_id, version, body.get("idempotency_key"), retry_count)


def replied_after(contact: Mapping[str, Any], anchor: dt.datetime) -> bool:
    """Tell whether the contact wrote personally after ``anchor``."""
    return any(isinstance(contact.get(field), dt.datetime) and contact[field] > anchor for field in REPLY_FIELDS)


class FollowupService:
    def __init__(self, config: CrmConfig, store: DocStore, clock: Clock):
        self._config = config
        self._store = store
        self._clock = clock

    def check(self, command: FollowupCheck) -> CheckOutcome:
        """Run the no-reply check once for ``command``; see the module docstring.

        Raises:
            TransientError: the store stayed unavailable; the caller should retry.
        """
        now = self._clock.now()
        outcome = self._store.transact(lambda reader: self._decide(reader, command, now),
                                       f"followup {command.followup_id!r}")
        logger.info("followup check finished", extra={
            "followup_id": command.followup_id, "status": outcome.status, "version": command.version,
            "retry_count": command.retry_count, "idempotency_key": command.idempotency_key})
        return outcome

    def _decide(self, reader: DocReader, command: FollowupCheck, now: dt.datetime) -> tuple[CheckOutcome, list[Write]]:
        # 1. Load the follow-up and drop calls it no longer expects.
        path = f"followups/{command.followup_id}"
        followup = reader.get_all([path])[path]
        skipped = _skip_reason(followup, command)
        if skipped:
            return CheckOutcome(skipped, command.followup_id), []

        # 2. Load the contact and, for an imported owner, the owner's document.
        owner_id = followup.get("owner_id") or self._config.routing.fallback_owner
        paths = [f"contacts/{followup.get('contact_id')}"]
        if notify.needs_member_doc(self._config, owner_id):
            paths.append(notify.member_path(owner_id))
        docs = reader.get_all(paths)
        contact = docs[paths[0]]
        if contact is None:
            update = {"status": "cancelled", "cancel_reason": "contact_missing", "updated_at": now}
            return CheckOutcome("missing", command.followup_id), [Write(path, update, "merge")]

        # 3. A personal reply after the anchor ends the follow-up quietly.
        if replied_after(contact, followup["anchor_at"]):
            update = {"status": "done", "outcome": "replied", "done_at": now, "updated_at": now}
            return CheckOutcome("replied", command.followup_id), [Write(path, update, "merge")]

        # 4. Otherwise remind the owner once: a task, the notifications and the state change.
        recipient = notify.resolve_recipient(self._config, owner_id, docs.get(notify.member_path(owner_id)))
        return self._remind(command, followup, contact, recipient, owner_id, now)

    def _remind(self, command: FollowupCheck, followup: dict, contact: dict, recipient: notify.Recipient | None,
                owner_id: str, now: dt.datetime) -> tuple[CheckOutcome, list[Write]]:
        followup_id = command.followup_id
        task_id = f"tk-{followup_id}-reminder"
        name = contact.get("display_name") or contact.get("company_name") or followup.get("lead_id")
        locale = recipient.locale if recipient else self._config.organization.default_locale
        titles = {"zh-TW": f"跟進：{name} 尚未回覆", "en": f"Follow up: {name} has not replied"}
        task = {"kind": "no_reply_followup", "owner_id": owner_id, "contact_id": followup.get("contact_id"),
                "lead_id": followup.get("lead_id"), "deal_id": followup.get("deal_id"), "followup_id": followup_id,
                "status": "open", "due_at": now, "created_at": now, "title": titles[locale]}
        writes = [Write(f"tasks/{task_id}", task, "create")]
        if recipient is not None:
            template = self._config.templates.no_reply_reminder or DEFAULT_NO_REPLY_REMINDER
            values = {"name": name, "company": contact.get("company_name") or "-",
                      "days": followup.get("business_days", self._config.followup.no_reply_business_days)}
            writes += notify.notification_writes(self._config, recipient, f"{followup_id}-reminder",
                                                 "no_reply_reminder", template, values, now,
                                                 {"lead_id": followup.get("lead_id"), "followup_id": followup_id})
        writes.append(Write(f"followups/{followup_id}", {
            "status": "fired", "fired_at": now, "fired_version": followup.get("version"), "task_id": task_id,
            "idempotency_key": command.idempotency_key, "updated_at": now}, "merge"))
        writes.append(Write(f"audit/{followup_id}-reminder", {
            "action": "followup.fired", "target": f"followups/{followup_id}", "rule": "no_reply_business_days",
            "before": {"status": "scheduled"}, "after": {"status": "fired", "task_id": task_id},
            "actor": AUTOMATION_ACTOR, "at": now}, "create"))
        outbox_ids = tuple(write.path.split("/", 1)[1] for write in writes if write.path.startswith("outbox/"))
        return CheckOutcome("fired", followup_id, task_id, outbox_ids), writes

    def reschedule(self, followup_id: str, due_at: dt.datetime) -> int | None:
        """Move a scheduled follow-up to ``due_at`` under a new version and queue its new task.

        The task of the old version still runs, but the check drops it because
        its version is no longer current.

        Returns:
            The new version, or None when the follow-up is missing or not scheduled.
        """
        now = self._clock.now()
        queue = self._config.followup.queue

        def body(reader: DocReader) -> tuple[int | None, Sequence[Write]]:
            path = f"followups/{followup_id}"
            followup = reader.get_all([path])[path]
            if not followup or followup.get("status") != "scheduled":
                return None, []
            version = int(followup.get("version", 1)) + 1
            task = {"kind": "cloud_task", "purpose": "no_reply_check", "status": "pending", "attempts": 0,
                    "not_before": now, "created_at": now, "lead_id": followup.get("lead_id"),
                    "task": {"queue": queue, "logical_key": followup_id, "version": version, "target": "followup",
                             "schedule_time": due_at,
                             "payload": {"type": "no_reply_check", "followup_id": followup_id, "version": version}}}
            return version, [Write(path, {"version": version, "due_at": due_at, "updated_at": now}, "merge"),
                             Write(f"outbox/ob-{followup_id}-v{version}", task, "create")]

        return self._store.transact(body, f"reschedule of followup {followup_id!r}")


def _skip_reason(followup: dict | None, command: FollowupCheck) -> str | None:
    if followup is None:
        return "missing"
    status = followup.get("status")
    if status == "cancelled":
        return "cancelled"
    if status != "scheduled":
        return f"already_{status}"
    if command.version is not None and command.version != followup.get("version"):
        return "superseded"
    return None
