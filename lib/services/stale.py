"""The daily stale-deal check: one digest per owner and manager, one task per stale deal.

An open deal is stale at run time ``T`` when ``stale_due_at <= T`` (its last
activity plus the stage's idle limit) and no activity is scheduled after ``T``.
The check queries only those deals (``status == 'open' and stale_due_at <= T``,
served by the composite index deals(status, stale_due_at)), so its reads grow
with the number of stale deals, not with all deals.

``T`` is the Cloud Scheduler schedule time, so a retried or overlapping run for
the same schedule computes the same result. Digest and task ids derive from the
job, the local run date and the recipient or deal, and the digest document is
created in a transaction before anything else, so a repeated run sends nothing twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from lib.config.schema import CrmConfig
from lib.domain.clock import Clock
from lib.services import notify
from lib.services.docstore import DocReader, DocStore, DocumentExistsError
from lib.services.writes import Write

logger = logging.getLogger(__name__)

TASK_BATCH = 400
MAX_IDS_STORED = 500
STATUS_WRITING_TASKS = "writing_tasks"
STATUS_COMPLETE = "complete"


@dataclasses.dataclass(frozen=True)
class StaleDeal:
    id: str
    name: str
    owner_id: str
    stage_id: str
    last_activity_at: dt.datetime | None


@dataclasses.dataclass(frozen=True)
class StaleRun:
    """Outcome of one stale-check run.

    Attributes:
        digests: Per recipient id, ``created`` or ``already_sent``.
    """

    job: str
    run_date: dt.date
    schedule_time: dt.datetime
    flagged: tuple[str, ...]
    digests: dict[str, str]
    tasks_created: int
    reads: int

    def as_dict(self) -> dict[str, Any]:
        return {"job": self.job, "run_date": self.run_date.isoformat(), "schedule_time": self.schedule_time.isoformat(),
                "flagged": len(self.flagged), "digests": self.digests, "tasks_created": self.tasks_created,
                "reads": self.reads}


def is_stale(deal: dict, at: dt.datetime) -> bool:
    """Tell whether an open deal is stale at ``at``: past its idle limit and nothing scheduled after ``at``."""
    due = deal.get("stale_due_at")
    if deal.get("status") != "open" or not isinstance(due, dt.datetime) or due > at:
        return False
    upcoming = deal.get("next_activity_at")
    return not (isinstance(upcoming, dt.datetime) and upcoming > at)


class StaleService:
    def __init__(self, config: CrmConfig, store: DocStore, clock: Clock):
        self._config = config
        self._store = store
        self._clock = clock
        self._zone = zoneinfo.ZoneInfo(config.stale.time_zone or config.organization.time_zone)

    def find_stale(self, at: dt.datetime) -> list[StaleDeal]:
        """Query the open deals due by ``at`` and keep those with no activity scheduled after ``at``."""
        rows = self._store.query("deals", [("status", "==", "open"), ("stale_due_at", "<=", at)])
        return [StaleDeal(deal_id, deal.get("name") or deal_id, deal.get("owner_id") or "", deal.get("stage_id") or "",
                          deal.get("last_activity_at"))
                for deal_id, deal in rows if is_stale(deal, at)]

    def run(self, schedule_time: dt.datetime, job: str | None = None) -> StaleRun:
        """Run the check for ``schedule_time``; see the module docstring.

        Raises:
            TransientError: the store stayed unavailable; the caller should retry.
        """
        job = job or self._config.stale.job_name
        run_date = schedule_time.astimezone(self._zone).date()
        reads_before = self._store.reads

        # 1. Find the stale deals and the people to tell.
        deals = self.find_stale(schedule_time)
        own: dict[str, list[StaleDeal]] = defaultdict(list)
        for deal in deals:
            own[deal.owner_id].append(deal)
        recipients = self._recipients(own)
        team = self._team_deals(own, recipients) if self._config.stale.notify_managers else {}

        # 2. One digest per recipient, then the owner's tasks.
        digests, tasks_created = {}, 0
        for recipient_id in sorted(set(own) | set(team)):
            recipient = recipients.get(recipient_id) or _unknown(recipient_id, self._config)
            state = self._create_digest(job, run_date, schedule_time, recipient, own.get(recipient_id, []),
                                        team.get(recipient_id, []))
            digests[recipient_id] = "created" if state == "created" else "already_sent"
            if state in ("created", STATUS_WRITING_TASKS):
                tasks_created += self._write_tasks(job, run_date, schedule_time, recipient, own.get(recipient_id, []))

        result = StaleRun(job, run_date, schedule_time, tuple(deal.id for deal in deals), digests, tasks_created,
                          self._store.reads - reads_before)
        logger.info("stale check finished", extra=result.as_dict())
        return result

    def _recipients(self, own: dict[str, list[StaleDeal]]) -> dict[str, notify.Recipient]:
        found = self._load_recipients(own)
        managers = {recipient.manager_id for recipient in found.values() if recipient.manager_id}
        if self._config.stale.notify_managers:
            found |= self._load_recipients(managers - set(found))
        return found

    def _load_recipients(self, member_ids: Iterable[str]) -> dict[str, notify.Recipient]:
        ids = sorted(member_ids)
        paths = [notify.member_path(member_id) for member_id in ids if notify.needs_member_doc(self._config, member_id)]
        docs = self._store.transact(lambda reader: (reader.get_all(paths), []), "member lookup") if paths else {}
        found = {}
        for member_id in ids:
            recipient = notify.resolve_recipient(self._config, member_id, docs.get(notify.member_path(member_id)))
            if recipient is not None:
                found[member_id] = recipient
        return found

    def _team_deals(self, own: dict[str, list[StaleDeal]],
                    recipients: dict[str, notify.Recipient]) -> dict[str, list[StaleDeal]]:
        team: dict[str, list[StaleDeal]] = defaultdict(list)
        for owner_id, deals in own.items():
            owner = recipients.get(owner_id)
            if owner and owner.manager_id and owner.manager_id != owner_id:
                team[owner.manager_id].extend(deals)
        return team

    def _create_digest(self, job: str, run_date: dt.date, schedule_time: dt.datetime, recipient: notify.Recipient,
                       own: Sequence[StaleDeal], team: Sequence[StaleDeal]) -> str:
        digest_id = f"dg-{job}-{run_date.isoformat()}-{recipient.id}"
        path = f"digests/{digest_id}"
        now = self._clock.now()

        def body(reader: DocReader) -> tuple[str, list[Write]]:
            existing = reader.get_all([path])[path]
            if existing is not None:
                return existing.get("status", STATUS_COMPLETE), []
            digest = {"job": job, "run_date": run_date.isoformat(), "schedule_time": schedule_time,
                      "recipient_id": recipient.id, "own_count": len(own), "team_count": len(team),
                      "own_deal_ids": [deal.id for deal in own][:MAX_IDS_STORED],
                      "team_deal_ids": [deal.id for deal in team][:MAX_IDS_STORED],
                      "status": STATUS_WRITING_TASKS if own else STATUS_COMPLETE, "created_at": now}
            values = {"date": run_date.isoformat(), "count": len(own) + len(team),
                      "deals": self._listing(recipient.locale, own, team)}
            writes = [Write(path, digest, "create")]
            writes += notify.notification_writes(self._config, recipient, digest_id, "stale_digest",
                                                 self._config.stale.digest, values, now, {"digest_id": digest_id})
            return "created", writes

        return self._store.transact(body, f"digest {digest_id!r}")

    def _listing(self, locale: str, own: Sequence[StaleDeal], team: Sequence[StaleDeal]) -> str:
        limit = self._config.stale.max_deals_listed
        headings = {"zh-TW": ("您的商機", "團隊商機", "另有 {n} 筆未列出"),
                    "en": ("Your deals", "Your team's deals", "and {n} more")}[locale]
        lines = []
        for heading, deals in ((headings[0], own), (headings[1], team)):
            if not deals:
                continue
            lines.append(f"{heading} ({len(deals)}):")
            lines += [self._line(locale, deal) for deal in deals[:limit]]
            if len(deals) > limit:
                lines.append("  " + headings[2].format(n=len(deals) - limit))
        return "\n".join(lines)

    def _line(self, locale: str, deal: StaleDeal) -> str:
        try:
            stage = self._config.pipeline.stage(deal.stage_id).name.get(locale)
        except KeyError:
            stage = deal.stage_id
        since = deal.last_activity_at.astimezone(self._zone).date().isoformat() if deal.last_activity_at else "?"
        idle = "最後活動" if locale == "zh-TW" else "last activity"
        return f"- {deal.name} [{stage}] {idle} {since}"

    def _write_tasks(self, job: str, run_date: dt.date, schedule_time: dt.datetime, recipient: notify.Recipient,
                     deals: Sequence[StaleDeal]) -> int:
        now = self._clock.now()
        created = 0
        for start in range(0, len(deals), TASK_BATCH):
            writes = [self._task_write(recipient, deal, run_date, schedule_time, now)
                      for deal in deals[start:start + TASK_BATCH]]
            try:
                self._store.write_batch(writes)
                created += len(writes)
            except DocumentExistsError:
                # An earlier, interrupted run wrote some of these tasks: create only the missing ones.
                created += self._store.transact(lambda reader, chunk=writes: _missing_only(reader, chunk),
                                                f"stale tasks of {recipient.id!r}")
        if deals:
            digest_path = f"digests/dg-{job}-{run_date.isoformat()}-{recipient.id}"
            self._store.write_batch([Write(digest_path, {"status": STATUS_COMPLETE, "completed_at": now}, "merge")])
        return created

    def _task_write(self, recipient: notify.Recipient, deal: StaleDeal, run_date: dt.date,
                    schedule_time: dt.datetime, now: dt.datetime) -> Write:
        titles = {"zh-TW": "停滯商機：安排下一步（{name}）", "en": "Stale deal: plan the next step ({name})"}
        return Write(f"tasks/tk-stale-{deal.id}-{run_date.isoformat()}", {
            "kind": "stale_deal", "owner_id": deal.owner_id, "deal_id": deal.id, "status": "open",
            "due_at": schedule_time, "created_at": now, "run_date": run_date.isoformat(),
            "title": titles[recipient.locale].format(name=deal.name)}, "create")


def _missing_only(reader: DocReader, writes: list[Write]) -> tuple[int, list[Write]]:
    docs = reader.get_all([write.path for write in writes])
    missing = [write for write in writes if docs[write.path] is None]
    return len(missing), missing


def _unknown(member_id: str, config: CrmConfig) -> notify.Recipient:
    # NOTE: an owner id with no member anywhere still gets tasks, but no message.
    return notify.Recipient(member_id, member_id, None, config.organization.default_locale,
                            config.organization.time_zone, (), None, None)
