"""Ports: the abstract boundaries between services and the outside world.

Each port has a real adapter under ``lib/adapters`` and a file-based or in-memory
adapter for local runs and unit tests.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
from typing import Any


@dataclasses.dataclass(frozen=True)
class OutboundEmail:
    """An email the CRM sends on someone's behalf.

    Attributes:
        outbox_id: Id of the outbox record; adapters use it to stay idempotent.
        sender: Mailbox the message is sent from (the rep, through delegation).
        sender_name: Display name of the sender.
        to: Recipient addresses.
        subject: Subject line, already rendered in the recipient's language.
        text_body: Plain-text body.
        message_id: RFC 5322 Message-ID, angle brackets included, unique per outbox record.
        html_body: Optional HTML alternative.
        headers: Extra headers, e.g. ``List-Unsubscribe``.
        thread_id: Gmail thread to reply in, if any.
        in_reply_to: Message-ID this replies to, if any.
    """

    outbox_id: str
    sender: str
    sender_name: str
    to: tuple[str, ...]
    subject: str
    text_body: str
    message_id: str
    html_body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    thread_id: str | None = None
    in_reply_to: str | None = None


@dataclasses.dataclass(frozen=True)
class ScheduledTask:
    """A delayed HTTP call carried by Cloud Tasks.

    Attributes:
        queue: Short queue name, e.g. ``"crm-followups"``.
        name: Task id within the queue; the same name twice schedules once.
        url: Target URL of the HTTP function.
        payload: JSON body.
        schedule_time: When the call is due, aware UTC.
        oidc_service_account: Service account whose OIDC token signs the call.
        audience: OIDC audience; defaults to ``url`` when None.
    """

    queue: str
    name: str
    url: str
    payload: dict[str, Any]
    schedule_time: dt.datetime
    oidc_service_account: str | None = None
    audience: str | None = None


class MailSender(abc.ABC):
    @abc.abstractmethod
    def send(self, email: OutboundEmail) -> str:
        """Send ``email`` once and return the provider's message id.

        Sending the same ``outbox_id`` again must not deliver a second copy:
        the adapter checks for an earlier send before it sends.

        Raises:
            TransientError: the provider failed in a way a retry can fix.
            PermanentDeliveryError: the message can never be sent.
        """


class TaskScheduler(abc.ABC):
    @abc.abstractmethod
    def schedule(self, task: ScheduledTask) -> bool:
        """Create ``task`` and return True, or return False if it already exists.

        Raises:
            TransientError: the queue service failed in a way a retry can fix.
        """

    @abc.abstractmethod
    def cancel(self, queue: str, name: str) -> bool:
        """Delete a scheduled task; return False if it did not exist."""


class ChatNotifier(abc.ABC):
    @abc.abstractmethod
    def post(self, webhook_url: str, message: dict[str, Any], request_id: str) -> None:
        """Post a Google Chat message; ``request_id`` makes a repeat a no-op.

        Raises:
            TransientError: the webhook failed in a way a retry can fix.
            PermanentDeliveryError: the webhook rejected the message.
        """
