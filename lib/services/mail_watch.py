"""Daily renewal of Gmail push (``users.watch``) for every connected mailbox.

Gmail stops publishing to Pub/Sub about seven days after the last watch call,
so a daily renewal keeps every mailbox connected. A failed renewal, or an
expiration less than a day away, is logged at ERROR and emailed to the admins
once per mailbox per day.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import zoneinfo
from typing import Any, Protocol

from lib.config.schema import CrmConfig, Member
from lib.domain import ids
from lib.domain.clock import Clock
from lib.errors import CrmError
from lib.logs import mask_email
from lib.services.mail_lease import mailbox_path
from lib.services.mail_store import MailStore, Outcome, TransactionReader
from lib.services.writes import Write

logger = logging.getLogger(__name__)

EXPIRY_WARNING = dt.timedelta(days=1)
ALERT_TEXTS = {
    "zh-TW": ("Gmail 同步需要處理：{mailbox}",
              "{name} 您好：\n\n信箱 {mailbox} 的 Gmail 推播續訂失敗或即將到期（到期時間：{expiration}）。\n"
              "錯誤：{error}\n\n請確認網域範圍委派仍授權 gmail.readonly，並檢查 Pub/Sub 主題的發布權限。\n"),
    "en": ("Gmail sync needs attention: {mailbox}",
           "Hello {name},\n\nRenewing Gmail push for {mailbox} failed or the watch expires soon "
           "(expiration: {expiration}).\nError: {error}\n\nCheck that domain-wide delegation still grants "
           "gmail.readonly and that Gmail may publish to the Pub/Sub topic.\n"),
}


class GmailWatcher(Protocol):
    def watch(self, user: str, topic: str) -> tuple[int, dt.datetime]: ...


@dataclasses.dataclass(frozen=True)
class WatchResult:
    """The renewal of one mailbox.

    Attributes:
        mailbox: The mailbox address.
        ok: True when the watch was renewed and does not expire within a day.
        expiration: The new expiration, when renewed.
        error: What failed, when the renewal failed.
        alerted: True when this call queued the admin alert.
    """

    mailbox: str
    ok: bool
    expiration: dt.datetime | None = None
    error: str | None = None
    alerted: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"mailbox": mask_email(self.mailbox), "ok": self.ok, "expiration": self.expiration,
                "error": self.error, "alerted": self.alerted}


class WatchRenewer:
    """Renew Gmail push for every connected mailbox and alert the admins about failures."""

    def __init__(self, config: CrmConfig, store: MailStore, gmail: GmailWatcher, clock: Clock, project: str):
        self._config = config
        self._store = store
        self._gmail = gmail
        self._clock = clock
        self._topic = config.mail.pubsub_topic.replace("{project}", project)

    def renew_all(self) -> list[WatchResult]:
        """Renew each mailbox; one mailbox's failure does not stop the others."""
        return [self.renew(mailbox) for mailbox in self._config.connected_mailboxes()]

    def renew(self, mailbox: str) -> WatchResult:
        """Call ``users.watch`` for one mailbox, store its expiration and a missing cursor."""
        now = self._clock.now()
        try:
            history_id, expiration = self._gmail.watch(mailbox, self._topic)
        except CrmError as exc:
            return self._problem(mailbox, None, f"{type(exc).__name__}: {exc}", now)

        self._store.transact(f"watch of {mailbox_path(mailbox)}",
                             lambda reader: _record_watch(reader, mailbox, history_id, expiration, now))
        if expiration - now < EXPIRY_WARNING:
            return self._problem(mailbox, expiration, "watch expires within a day", now)
        logger.info("gmail watch renewed", extra={"mailbox": mask_email(mailbox), "expiration": expiration})
        return WatchResult(mailbox, True, expiration)

    def _problem(self, mailbox: str, expiration: dt.datetime | None, error: str, now: dt.datetime) -> WatchResult:
        logger.error("gmail watch renewal failed", extra={"mailbox": mask_email(mailbox), "error": error,
                                                           "expiration": expiration})
        alerted = self._store.transact(f"watch alert for {mask_email(mailbox)}",
                                       lambda reader: self._alert(reader, mailbox, expiration, error, now))
        return WatchResult(mailbox, False, expiration, error, alerted)

    def _alert(self, reader: TransactionReader, mailbox: str, expiration: dt.datetime | None, error: str,
               now: dt.datetime) -> Outcome[bool]:
        day = now.astimezone(zoneinfo.ZoneInfo(self._config.organization.time_zone)).date().isoformat()
        admins = [member for member in self._config.members if member.role == "admin" and member.active]
        paths = {member.id: f"outbox/ob-watch-{ids.digest(mailbox, member.id, day)}" for member in admins}
        existing = reader.get(paths.values())
        writes = [self._alert_email(paths[member.id], member, mailbox, expiration, error, now)
                  for member in admins if existing[paths[member.id]] is None]
        return Outcome(bool(writes), writes)

    def _alert_email(self, path: str, admin: Member, mailbox: str, expiration: dt.datetime | None, error: str,
                     now: dt.datetime) -> Write:
        subject, body = ALERT_TEXTS[admin.locale]
        values = {"name": admin.name, "mailbox": mailbox, "expiration": expiration or "-", "error": error}
        outbox_id = path.split("/", 1)[1]
        return Write(path, {
            "kind": "email", "purpose": "gmail_watch_alert", "status": "pending", "attempts": 0,
            "not_before": now, "created_at": now, "locale": admin.locale,
            "email": {"sender": admin.email, "sender_name": admin.name, "to": [admin.email],
                      "subject": subject.format(**values), "text_body": body.format(**values),
                      "message_id": f"<{outbox_id}@{self._config.organization.sender_domain}>"},
        }, "create")


def _record_watch(reader: TransactionReader, mailbox: str, history_id: int, expiration: dt.datetime,
                  now: dt.datetime) -> Outcome[None]:
    path = mailbox_path(mailbox)
    doc = reader.get([path])[path] or {}
    update: dict[str, Any] = {"watch_expiration": expiration, "watched_at": now, "address": mailbox}
    if doc.get("history_id") is None:
        # Only a mailbox without a cursor starts from the watch's historyId; a stored cursor never moves back.
        update["history_id"] = history_id
    return Outcome(None, [Write(path, update, "merge")])
