"""Google Chat adapters of the ``ChatNotifier`` port: incoming webhooks, and JSON files for local runs.

An incoming webhook URL calls ``spaces.messages.create``. The adapter adds the
``requestId`` query parameter, with which Chat returns the message created
earlier under the same id instead of posting a second one, and
``messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD`` when the message
names a ``thread.threadKey``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

import requests

from lib.errors import PermanentDeliveryError, TransientError
from lib.ports import ChatNotifier

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 15
# Chat documents requestId as at most 100 characters of letters, digits, "-" and "_".
_REQUEST_ID = re.compile(r"[^A-Za-z0-9_-]")
MAX_REQUEST_ID_CHARS = 100


def chat_request_id(value: str) -> str:
    """Return ``value`` reduced to the characters and length Chat accepts as ``requestId``."""
    return _REQUEST_ID.sub("-", value)[-MAX_REQUEST_ID_CHARS:]


def _with_query(url: str, extra: dict[str, str]) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(key, value) for key, value in query if key not in extra] + list(extra.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


class WebhookChatNotifier(ChatNotifier):
    """Post messages to Google Chat incoming webhooks with ``requests``."""

    def __init__(self, session: requests.Session | None = None):
        self._session = session or requests.Session()

    def post(self, webhook_url: str, message: dict[str, Any], request_id: str) -> None:
        """Post ``message``; a repeat with the same ``request_id`` does not post again.

        Raises:
            TransientError: the request failed to connect or timed out, or Chat
                answered 429 or 5xx.
            PermanentDeliveryError: Chat responded with another 4xx (bad URL, revoked
                webhook, invalid card).
        """
        params = {"requestId": chat_request_id(request_id)}
        if (message.get("thread") or {}).get("threadKey"):
            params["messageReplyOption"] = "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
        url = _with_query(webhook_url, params)
        try:
            response = self._session.post(url, json=message, timeout=TIMEOUT_SECONDS,
                                          headers={"Content-Type": "application/json; charset=UTF-8"})
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientError(f"Google Chat webhook request {params['requestId']!r} failed: {type(exc).__name__}") from exc

        # The webhook URL carries a key and token, so messages name only the request id.
        status = response.status_code
        if status == 429 or status >= 500:
            raise TransientError(f"Google Chat webhook responded with {status} for request {params['requestId']!r}")
        if status >= 400:
            raise PermanentDeliveryError(
                f"Google Chat webhook rejected request {params['requestId']!r} with {status}: {response.text[:200]}")
        logger.info("chat message posted", extra={"request_id": params["requestId"]})


class FileChatNotifier(ChatNotifier):
    """Write each message as ``<folder>/<request_id>.json``; an existing file means already posted."""

    def __init__(self, folder: Path):
        self._folder = Path(folder)

    def post(self, webhook_url: str, message: dict[str, Any], request_id: str) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        path = self._folder / f"{chat_request_id(request_id)}.json"
        if path.exists():
            return
        data = json.dumps({"request_id": request_id, "message": message}, ensure_ascii=False, indent=2)
        handle, temporary = tempfile.mkstemp(dir=self._folder, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(data)
        os.replace(temporary, path)


class RecordingChatNotifier(ChatNotifier):
    """Keep posted messages by request id, for unit tests; ``fail_with`` makes the next post raise."""

    def __init__(self) -> None:
        self.posted: dict[str, tuple[str, dict[str, Any]]] = {}
        self.calls = 0
        self.fail_with: Exception | None = None

    def post(self, webhook_url: str, message: dict[str, Any], request_id: str) -> None:
        self.calls += 1
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None
            raise error
        self.posted.setdefault(request_id, (webhook_url, message))
