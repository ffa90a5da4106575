"""Handlers of the Gmail functions: push notifications in, watch renewal on a schedule.

A notification is acknowledged (2xx, or a normal return for a CloudEvent)
whenever a retry cannot help: undecodable data, an unconnected mailbox, a
historyId that is not newer than the cursor, or a Gmail rejection that needs
an admin. Only a transient failure makes Pub/Sub deliver again. The stored cursor
has not moved then, so nothing is lost either way.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
from collections.abc import Mapping
from typing import Any

import flask
import google.auth.exceptions

from lib.bootstrap import App
from lib.entrypoints.auth import serve_private
from lib.errors import CrmError, TransientError
from lib.logs import mask_email
from lib.web import bind_request_context, error_response, json_response, method_not_allowed

logger = logging.getLogger(__name__)

MAX_PUSH_BYTES = 64 * 1024
ERROR_NOT_ENVELOPE = "expected a Pub/Sub envelope with message.data as base64 JSON, found {found}"
ERROR_BAD_DATA = "message.data is not base64 JSON with emailAddress and historyId: {error}"


class NotificationError(CrmError):
    """A push delivery cannot be decoded; retrying it cannot help."""


@dataclasses.dataclass(frozen=True)
class GmailNotification:
    """A decoded Gmail push notification.

    Attributes:
        email_address: The mailbox that changed.
        history_id: The mailbox's historyId after the change.
        message_id: Pub/Sub's message id, for logs.
    """

    email_address: str
    history_id: int
    message_id: str | None


def decode_notification(envelope: Any) -> GmailNotification:
    """Decode ``{"message": {"data", "messageId"}, "subscription"}`` into a notification.

    ``historyId`` may be a JSON string or number; it is compared as an integer.

    Raises:
        NotificationError: the envelope, the base64 or the JSON is malformed,
            or a field is missing.
    """
    message = envelope.get("message") if isinstance(envelope, Mapping) else None
    if not isinstance(message, Mapping) or not message.get("data"):
        raise NotificationError(ERROR_NOT_ENVELOPE.format(found=type(envelope).__name__))
    try:
        data = json.loads(base64.b64decode(str(message["data"]), validate=False).decode("utf-8"))
        address = str(data["emailAddress"]).strip().lower()
        history_id = int(str(data["historyId"]))
    except (binascii.Error, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise NotificationError(ERROR_BAD_DATA.format(error=exc)) from exc
    if "@" not in address or history_id <= 0:
        raise NotificationError(ERROR_BAD_DATA.format(error=f"invalid values {mask_email(address)!r}, {history_id}"))
    return GmailNotification(address, history_id, message.get("messageId") or message.get("message_id"))


def process_envelope(envelope: Any, app: App) -> dict[str, Any]:
    """Decode and sync one notification.

    Returns:
        A JSON-ready summary; ``status`` is ``dropped``, ``failed`` or the sync status.

    Raises:
        TransientError: a retry can fix the failure.
    """
    try:
        notification = decode_notification(envelope)
    except NotificationError as exc:
        logger.warning("gmail push dropped: %s", exc)
        return {"status": "dropped", "reason": str(exc)}
    try:
        report = app.mail_sync.handle_notification(notification.email_address, notification.history_id)
    except TransientError:
        raise
    except (CrmError, google.auth.exceptions.GoogleAuthError) as exc:
        # NOTE: a rejection such as missing delegation needs an admin; the
        # cursor stays, so the next notification after the fix resumes from it.
        logger.error("gmail sync failed and will not be retried", extra={
            "mailbox": mask_email(notification.email_address), "error": str(exc),
            "pubsub_message_id": notification.message_id})
        return {"status": "failed", "reason": str(exc)}
    return {"status": report.status, "cursor": report.cursor, "rounds": report.rounds, "counts": report.counts()}


def handle_cloud_event(event: Any, app: App) -> None:
    """Handle the Pub/Sub CloudEvent that a 2nd-gen function receives.

    Raises:
        TransientError: so that Eventarc delivers the event again.
    """
    summary = process_envelope(getattr(event, "data", None), app)
    logger.info("gmail push handled", extra={"ce_id": event["id"] if _has_id(event) else None, **summary})


def _has_id(event: Any) -> bool:
    try:
        return bool(event["id"])
    except (KeyError, TypeError):
        return False


def handle_push_http(request: flask.Request, app: App) -> flask.Response:
    """Serve ``POST /gmail_push`` with a plain Pub/Sub push envelope (the local router's path)."""
    bind_request_context(request, app.project)
    if request.method != "POST":
        return method_not_allowed(request.method)
    raw = request.get_data(cache=False)[:MAX_PUSH_BYTES + 1]
    try:
        envelope = json.loads(raw) if len(raw) <= MAX_PUSH_BYTES else None
    except ValueError:
        envelope = None
    try:
        summary = process_envelope(envelope, app)
    except TransientError as exc:
        logger.warning("gmail push failed, Pub/Sub will retry", extra={"error": str(exc)})
        return error_response(exc)
    return json_response(200, summary)


def handle_watch(request: flask.Request, app: App) -> flask.Response:
    """Serve ``POST /gmail_watch``: renew Gmail push for every connected mailbox (Cloud Scheduler, daily)."""
    def renew() -> dict:
        results = app.watch_renewer.renew_all()
        return {"mailboxes": [result.as_dict() for result in results], "ok": all(result.ok for result in results)}

    return serve_private(request, app.project, "gmail_watch", renew)
