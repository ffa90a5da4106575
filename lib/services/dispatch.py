"""The outbox dispatcher: performs each committed intent (email, delayed task) once.

An intent is claimed in a transaction before it is performed, so two dispatchers
never work on the same record at the same time. A dispatcher that dies after
sending but before recording leaves a claim whose lease expires; the next attempt
asks the adapter, which finds the earlier delivery by its stable id instead of
delivering again (the Gmail adapter searches by Message-ID, the file adapter
finds the file, Cloud Tasks rejects the task name).
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import logging
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

from lib.adapters.cloud_tasks import task_name
from lib.domain.clock import Clock
from lib.errors import InvalidInputError, PermanentDeliveryError, TransientError
from lib.ports import ChatNotifier, MailSender, OutboundEmail, ScheduledTask, TaskScheduler

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
LEASE = dt.timedelta(minutes=5)
BASE_BACKOFF = dt.timedelta(seconds=30)
MAX_BACKOFF = dt.timedelta(hours=1)


def backoff(attempts: int) -> dt.timedelta:
    """Return the wait before attempt ``attempts + 1``: doubling from 30 s, capped at an hour."""
    return min(BASE_BACKOFF * (2 ** max(attempts - 1, 0)), MAX_BACKOFF)


class OutboxStore(abc.ABC):
    @abc.abstractmethod
    def due(self, now: dt.datetime, limit: int) -> list[str]:
        """Return ids of pending records due by ``now`` and of claims whose lease expired."""

    @abc.abstractmethod
    def claim(self, outbox_id: str, now: dt.datetime, lease_until: dt.datetime) -> dict | None:
        """Mark a due record as being sent and return it, or None if it is not due any more."""

    @abc.abstractmethod
    def finish(self, outbox_id: str, fields: dict[str, Any]) -> None:
        """Record the outcome of an attempt."""


@dataclasses.dataclass(frozen=True)
class DispatchSettings:
    function_base_url: str
    tasks_service_account: str | None = None


class Dispatcher:
    def __init__(self, store: OutboxStore, mail: MailSender, tasks: TaskScheduler, clock: Clock,
                 settings: DispatchSettings, chat: ChatNotifier | None = None,
                 suppression: Callable[[dict], str | None] | None = None):
        self._store = store
        self._mail = mail
        self._tasks = tasks
        self._clock = clock
        self._settings = settings
        self._chat = chat
        self._suppression = suppression

    def run_once(self, limit: int = 200) -> Counter:
        """Perform every due intent once; return counts by outcome and purpose."""
        now = self._clock.now()
        outcomes: Counter = Counter()
        for outbox_id in self._store.due(now, limit):
            record = self._store.claim(outbox_id, now, now + LEASE)
            if record is None:
                outcomes["skipped"] += 1
                continue
            outcome = self._attempt(outbox_id, record, now)
            outcomes[outcome] += 1
            outcomes[f"{outcome}:{record.get('purpose', record.get('kind'))}"] += 1
        return outcomes

    def _attempt(self, outbox_id: str, record: dict, now: dt.datetime) -> str:
        attempts = int(record.get("attempts", 0))
        reason = self._suppression(record) if self._suppression else None
        if reason:
            logger.info("outbox record suppressed", extra={"outbox_id": outbox_id, "reason": reason})
            self._store.finish(outbox_id, {"status": "suppressed", "suppressed_reason": reason,
                                           "lease_until": None})
            return "suppressed"
        try:
            provider_id = self._perform(outbox_id, record)
        except TransientError as exc:
            if attempts >= MAX_ATTEMPTS:
                return self._fail(outbox_id, record, f"gave up after {attempts} attempts: {exc}", now)
            retry_at = now + backoff(attempts)
            logger.warning("outbox delivery failed, will retry", extra={
                "outbox_id": outbox_id, "attempts": attempts, "retry_at": retry_at.isoformat(), "error": str(exc)})
            self._store.finish(outbox_id, {"status": "pending", "not_before": retry_at, "last_error": str(exc),
                                           "lease_until": None})
            return "retrying"
        except (PermanentDeliveryError, InvalidInputError) as exc:
            return self._fail(outbox_id, record, str(exc), now)
        except Exception as exc:  # noqa: BLE001 - one broken record must not stop the records behind it.
            logger.exception("outbox delivery raised an unexpected error", extra={"outbox_id": outbox_id})
            if attempts >= MAX_ATTEMPTS:
                return self._fail(outbox_id, record, f"gave up after {attempts} attempts: {exc!r}", now)
            self._store.finish(outbox_id, {"status": "pending", "not_before": now + backoff(attempts),
                                           "last_error": repr(exc), "lease_until": None})
            return "retrying"

        self._store.finish(outbox_id, {"status": "sent", "sent_at": now, "provider_id": provider_id,
                                       "lease_until": None, "last_error": None})
        logger.info("outbox delivered", extra={"outbox_id": outbox_id, "purpose": record.get("purpose"),
                                               "provider_id": provider_id})
        return "sent"

    def _fail(self, outbox_id: str, record: dict, error: str, now: dt.datetime) -> str:
        # NOTE: a permanent failure stays in the outbox as "failed" for an admin to
        # see and retry. It is logged at ERROR, so a log-based alert fires.
        logger.error("outbox delivery failed permanently", extra={
            "outbox_id": outbox_id, "purpose": record.get("purpose"), "error": error})
        self._store.finish(outbox_id, {"status": "failed", "failed_at": now, "last_error": error,
                                       "lease_until": None})
        return "failed"

    def _perform(self, outbox_id: str, record: dict) -> str:
        kind = record.get("kind")
        if kind == "email":
            return self._mail.send(outbound_email(outbox_id, record["email"]))
        if kind == "cloud_task":
            return self._schedule(record["task"])
        if kind == "chat":
            return self._post_chat(outbox_id, record["chat"])
        raise PermanentDeliveryError(
            f"outbox record {outbox_id!r} has unknown kind {kind!r}; expected 'email', 'cloud_task' or 'chat'")

    def _post_chat(self, outbox_id: str, spec: dict) -> str:
        # The webhook URL is a secret, so the record names its environment variable instead.
        if self._chat is None:
            raise PermanentDeliveryError(f"outbox record {outbox_id!r} is a chat message but no chat adapter is set")
        url = os.environ.get(spec["webhook_env"], "")
        if not url:
            raise PermanentDeliveryError(
                f"outbox record {outbox_id!r}: environment variable {spec['webhook_env']!r} with the "
                "Google Chat webhook URL is not set")
        request_id = spec.get("request_id") or outbox_id
        self._chat.post(url, spec["message"], request_id)
        return f"chat:{request_id}"

    def _schedule(self, spec: dict) -> str:
        name = task_name(spec["logical_key"], int(spec["version"]))
        url = f"{self._settings.function_base_url.rstrip('/')}/{spec['target']}"
        task = ScheduledTask(queue=spec["queue"], name=name, url=url, payload=spec["payload"],
                             schedule_time=spec["schedule_time"],
                             oidc_service_account=self._settings.tasks_service_account, audience=url)
        created = self._tasks.schedule(task)
        return f"task:{name}" if created else f"task:{name}:already-existed"


MARKETING_PURPOSES = frozenset({"sequence_step"})


def contact_suppression(read_contact: Callable[[str], dict | None]) -> Callable[[dict], str | None]:
    """Build a check that stops marketing email to a contact who opted out or whose address failed.

    The sequence re-checks the contact when it queues a step, but a step can wait
    in the outbox for minutes, or hours of retries, so the dispatcher checks again.
    """
    def suppression(record: dict) -> str | None:
        if record.get("purpose") not in MARKETING_PURPOSES or not record.get("contact_id"):
            return None
        contact = read_contact(record["contact_id"]) or {}
        if contact.get("opted_out"):
            return "opted_out"
        if contact.get("email_status") in ("bounced", "invalid"):
            return "address_invalid"
        return None

    return suppression


def outbound_email(outbox_id: str, spec: dict) -> OutboundEmail:
    """Build the port's email value from an outbox record's ``email`` map."""
    return OutboundEmail(
        outbox_id=outbox_id,
        sender=spec["sender"],
        sender_name=spec.get("sender_name", ""),
        to=tuple(spec["to"]),
        subject=spec["subject"],
        text_body=spec["text_body"],
        message_id=spec["message_id"],
        html_body=spec.get("html_body"),
        headers=tuple(tuple(pair) for pair in spec.get("headers", [])),
        thread_id=spec.get("thread_id"),
        in_reply_to=spec.get("in_reply_to"),
    )
