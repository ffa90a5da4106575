"""A Gmail API stand-in for local runs and tests: recorded responses served from a folder.

LOCAL USE ONLY. ``CRM_GMAIL_ADAPTER=replay:<folder>`` makes the functions read
Gmail through ``ReplayHttp`` instead of the network. The real
google-api-python-client still builds every request, batch requests included;
only the HTTP layer is replaced, as ``HttpMockSequence`` does in unit tests.

Folder layout (each file is ``{"status": 200, "response": {...}}``, the shape
of the recorded API calls):

- ``history-<startHistoryId>.json``: users.history.list from that cursor;
  ``history-<startHistoryId>-<pageToken>.json`` for later pages.
- ``messages/<id>.json``: users.messages.get; a missing file returns 404.
- ``profile.json``: users.getProfile.
- ``watch.json``: users.watch.
- ``messages-list.json``: users.messages.list.
"""

from __future__ import annotations

import email.parser
import json
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import httplib2
from googleapiclient.discovery import Resource, build

BOUNDARY = "replay_batch"
_NOT_FOUND = {"status": 404, "response": {"error": {"code": 404, "message": "Requested entity was not found.",
                                                    "errors": [{"reason": "notFound"}]}}}


class ReplayHttp:
    """An ``httplib2.Http`` stand-in that serves Gmail API responses from files.

    Attributes:
        requests: ``(method, uri)`` of every request received, batch parts included.
    """

    def __init__(self, folder: Path):
        self._folder = Path(folder)
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []

    def request(self, uri, method="GET", body=None, headers=None, redirections=1, connection_type=None):
        """Return the recorded response to one request as ``httplib2.Http.request`` does: ``(response, content bytes)``."""
        with self._lock:
            self.requests.append((method, uri))
        if urllib.parse.urlsplit(uri).path.endswith("/batch"):
            return self._batch(body, headers or {})
        recorded = self._lookup(method, uri)
        return _response(recorded["status"], "application/json; charset=UTF-8"), _json(recorded)

    def _lookup(self, method: str, uri: str) -> dict:
        parts = urllib.parse.urlsplit(uri)
        query = urllib.parse.parse_qs(parts.query)
        path = parts.path
        if path.endswith("/history"):
            name = f"history-{query['startHistoryId'][0]}"
            if "pageToken" in query:
                name += f"-{query['pageToken'][0]}"
            return self._read(f"{name}.json")
        if path.endswith("/profile"):
            return self._read("profile.json")
        if path.endswith("/watch"):
            return self._read("watch.json")
        if path.endswith("/messages") and method == "GET":
            return self._read("messages-list.json")
        if "/messages/" in path:
            message_id = urllib.parse.unquote(path.rsplit("/", 1)[1])
            return self._read(f"messages/{message_id}.json")
        return _NOT_FOUND

    def _read(self, name: str) -> dict:
        path = self._folder / name
        if not path.is_file():
            return _NOT_FOUND
        return json.loads(path.read_text(encoding="utf-8"))

    def _batch(self, body: bytes | str, headers: dict) -> tuple[httplib2.Response, bytes]:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        content_type = {key.lower(): value for key, value in headers.items()}["content-type"]
        message = email.parser.Parser().parsestr(f"content-type: {content_type}\r\n\r\n{text}")
        chunks = []
        for part in message.get_payload():
            method, uri, _version = part.get_payload().split("\n", 1)[0].strip().split(" ")
            with self._lock:
                self.requests.append((method, uri))
            recorded = self._lookup(method, uri)
            status = recorded["status"]
            chunks.append(
                f"--{BOUNDARY}\r\nContent-Type: application/http\r\n"
                f"Content-ID: <response-{part['Content-ID'][1:-1]}>\r\n\r\n"
                f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                "Content-Type: application/json; charset=UTF-8\r\n\r\n"
                f"{_json(recorded).decode('utf-8')}\r\n"
            )
        content = "".join(chunks) + f"--{BOUNDARY}--\r\n"
        return _response(200, f"multipart/mixed; boundary={BOUNDARY}"), content.encode("utf-8")


def _json(recorded: dict) -> bytes:
    return json.dumps(recorded["response"], ensure_ascii=False).encode("utf-8")


def _response(status: int, content_type: str) -> httplib2.Response:
    return httplib2.Response({"status": str(status), "content-type": content_type})


def replay_service_factory(folder: Path) -> Callable[[str], Resource]:
    """Return a ``service_factory`` for ``GmailClient`` whose services read ``folder``.

    Every mailbox reads the same folder.
    """
    http = ReplayHttp(folder)

    def build_for_user(user_email: str) -> Resource:
        return build("gmail", "v1", http=http, cache_discovery=False, static_discovery=True)

    build_for_user.http = http
    return build_for_user
