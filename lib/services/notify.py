"""Notifications to members by email and Google Chat, as outbox records.

A recipient is a configured member, or a ``members/{id}`` document written by
the importer (which may carry ``email``, ``locale``, ``notify_by``,
``chat_webhook_env`` and ``manager_id``). Each channel the recipient chose
becomes one outbox record with a deterministic id, so a repeated run creates
nothing new.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from lib.config.schema import CrmConfig, EmailTemplate
from lib.domain.templates import render_email
from lib.services.writes import Write

logger = logging.getLogger(__name__)

CHANNELS = ("email", "chat")


@dataclasses.dataclass(frozen=True)
class Recipient:
    """A person who receives reminders and digests, with their channel and language choices."""

    id: str
    name: str
    email: str | None
    locale: str
    time_zone: str
    notify_by: tuple[str, ...]
    chat_webhook_env: str | None
    manager_id: str | None


def member_path(member_id: str) -> str:
    return f"members/{member_id}"


def needs_member_doc(config: CrmConfig, member_id: str) -> bool:
    """Tell whether ``member_id`` is unknown to the configuration and must be read from the store."""
    return not any(member.id == member_id for member in config.members)


def resolve_recipient(config: CrmConfig, member_id: str, member_doc: Mapping[str, Any] | None) -> Recipient | None:
    """Build the recipient for ``member_id`` from configuration, else from its document; None when unknown."""
    for member in config.members:
        if member.id == member_id:
            manager = config.team(member.team).manager if member.team else None
            return Recipient(member.id, member.name, member.email, member.locale, member.time_zone,
                             tuple(member.notify_by), member.chat_webhook_env,
                             manager if manager != member.id else None)
    if member_doc is None:
        return None
    org = config.organization
    return Recipient(
        id=member_id,
        name=str(member_doc.get("name") or member_id),
        email=member_doc.get("email") or None,
        locale=member_doc.get("locale") if member_doc.get("locale") in ("zh-TW", "en") else org.default_locale,
        time_zone=member_doc.get("time_zone") or org.time_zone,
        notify_by=tuple(member_doc.get("notify_by") or ("email",)),
        chat_webhook_env=member_doc.get("chat_webhook_env") or None,
        manager_id=member_doc.get("manager_id") or None,
    )


def chat_card(card_id: str, title: str, text: str, thread_key: str | None = None) -> dict[str, Any]:
    """Build a Google Chat message with one cardsV2 card and a plain-text fallback."""
    message: dict[str, Any] = {
        "text": title,
        "cardsV2": [{
            "cardId": card_id,
            "card": {"header": {"title": title}, "sections": [{"widgets": [{"textParagraph": {"text": text}}]}]},
        }],
    }
    if thread_key:
        message["thread"] = {"threadKey": thread_key}
    return message


def notification_writes(config: CrmConfig, recipient: Recipient, key: str, purpose: str,
                        template: EmailTemplate, values: Mapping[str, Any], now: dt.datetime,
                        context: Mapping[str, Any] | None = None) -> list[Write]:
    """Return ``create`` writes of one outbox record per channel the recipient chose.

    Args:
        key: Stable id of the notification; records are ``ob-<key>-email`` and ``ob-<key>-chat``.
        purpose: Outbox purpose, e.g. ``no_reply_reminder``.
        values: Template values; ``rep_name`` defaults to the recipient's name.
        context: Extra fields stored on each record, e.g. ``deal_id``.
    """
    values = {"rep_name": recipient.name, **values}
    subject, body = render_email(template, values, recipient.locale)
    base = {"purpose": purpose, "status": "pending", "attempts": 0, "not_before": now, "created_at": now,
            "locale": recipient.locale, "recipient_id": recipient.id, **(context or {})}
    writes = []
    for channel in _channels(recipient):
        outbox_id = f"ob-{key}-{channel}"
        if channel == "email":
            record = base | {"kind": "email", "email": {
                "sender": recipient.email, "sender_name": recipient.name, "to": [recipient.email],
                "subject": subject, "text_body": body,
                "message_id": f"<{outbox_id}@{config.organization.sender_domain}>"}}
        else:
            record = base | {"kind": "chat", "chat": {
                "webhook_env": recipient.chat_webhook_env, "request_id": outbox_id,
                "message": chat_card(outbox_id, subject, body, thread_key=f"{purpose}-{recipient.id}")}}
        writes.append(Write(f"outbox/{outbox_id}", record, "create"))
    return writes


def _channels(recipient: Recipient) -> list[str]:
    channels = []
    for channel in recipient.notify_by:
        if channel == "email" and recipient.email:
            channels.append("email")
        elif channel == "chat" and recipient.chat_webhook_env:
            channels.append("chat")
    if not channels:
        # NOTE: imported members often have no email yet; their reminders stay as tasks only.
        logger.warning("recipient has no usable notification channel",
                       extra={"member_id": recipient.id, "notify_by": list(recipient.notify_by)})
    return channels
