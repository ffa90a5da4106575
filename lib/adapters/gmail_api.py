"""Gmail API adapter: delegated credentials, a thin client and a ``MailSender``.

Every call acts as one Workspace user through domain-wide delegation, so the
client takes a factory that builds a Gmail service per user. Tests pass a
factory whose service uses ``googleapiclient.http.HttpMockSequence``.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import google.auth
import google.auth.exceptions
import google.auth.iam
import google.auth.transport.requests
import httplib2
from google.oauth2 import service_account
from googleapiclient.discovery import Resource, build
from googleapiclient.errors import BatchError, HttpError

from lib.adapters.email_build import build_mime, to_raw_base64url
from lib.errors import CrmError, InvalidInputError, PermanentDeliveryError, TransientError
from lib.ports import MailSender, OutboundEmail

logger = logging.getLogger(__name__)

# Scopes. The Workspace admin must grant each one to the service account's
# client id under domain-wide delegation, or the token request fails with
# "unauthorized_client".
GMAIL_SEND = "https://www.googleapis.com/auth/gmail.send"
"""Send mail as the user (messages.send). Grants no read access."""
GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
"""Read messages and history, search with ``q`` and call watch/stop."""
GMAIL_MODIFY = "https://www.googleapis.com/auth/gmail.modify"
"""Everything in readonly plus label changes; needed only to mark or move mail."""

SYNC_SCOPES = (GMAIL_READONLY,)
"""Scopes for inbox sync: history.list, messages.get/list, watch, stop, getProfile."""
SEND_SCOPES = (GMAIL_SEND, GMAIL_READONLY)
"""Scopes for ``GmailSender``: readonly because the duplicate check searches with ``q``."""

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
TOKEN_URI = "https://oauth2.googleapis.com/token"

# Quota units per method, from the Gmail API usage limits page
# (https://developers.google.com/gmail/api/reference/quota). A batch costs the
# units of each call it carries.
QUOTA_UNITS = {
    "messages.send": 100,
    "messages.get": 5,
    "messages.list": 5,
    "history.list": 2,
    "watch": 100,
    "stop": 50,
    "getProfile": 1,
}

MAX_BATCH_SIZE = 100
"""Gmail rejects a batch request with more than 100 calls."""
MAX_PAGE_SIZE = 500
"""Largest ``maxResults`` that history.list and messages.list accept."""
DEFAULT_HISTORY_TYPES = ("messageAdded", "labelAdded", "labelRemoved", "messageDeleted")

# Error reasons that Gmail returns with HTTP 403 when a rate or daily limit is
# reached. Waiting fixes them, so they count as transient like 429.
_RATE_LIMIT_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "dailyLimitExceeded", "quotaExceeded"}
)
_TRANSPORT_ERRORS = (
    httplib2.HttpLib2Error,
    google.auth.exceptions.TransportError,
    socket.timeout,
    ConnectionError,
)


class GmailApiError(CrmError):
    """Gmail rejected a request in a way a retry cannot fix.

    Attributes:
        status: HTTP status, or None when the token request failed.
        reason: Gmail's error reason, e.g. ``"invalidArgument"``, or ``""``.
    """

    def __init__(self, message: str, status: int | None = None, reason: str = ""):
        super().__init__(message)
        self.status = status
        self.reason = reason


class HistoryExpiredError(CrmError):
    """history.list returned 404 because ``startHistoryId`` is too old.

    Gmail keeps history for about a week, sometimes only hours. The caller
    runs a bounded full sync and resets the cursor from ``get_profile``. The
    mailbox itself is fine and needs no re-authorization.
    """

    def __init__(self, start_history_id: int):
        super().__init__(
            f"history starting at historyId {start_history_id} is no longer available; "
            "run a full sync and reset the cursor from users.getProfile"
        )
        self.start_history_id = start_history_id


@dataclasses.dataclass(frozen=True)
class HistoryResult:
    """All history records after a start id, read over every page.

    Attributes:
        records: History records in the order Gmail returned them.
        history_id: The mailbox's current historyId from the last page; store
            it as the next cursor.
        pages: Number of history.list requests made.
    """

    records: list[dict[str, Any]]
    history_id: int
    pages: int


class GmailUsage:
    """Counts of requests and quota units, for benchmarks and logs.

    Attributes:
        http_requests: HTTP requests sent; a batch counts once.
        calls: API calls per method; each call inside a batch counts.
        quota_units: Quota units charged, per ``QUOTA_UNITS``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.http_requests = 0
        self.calls: collections.Counter[str] = collections.Counter()
        self.quota_units = 0

    def record(self, method: str, calls: int = 1) -> None:
        """Add one HTTP request that carries ``calls`` calls of ``method``."""
        with self._lock:
            self.http_requests += 1
            self.calls[method] += calls
            self.quota_units += QUOTA_UNITS[method] * calls

    def snapshot(self) -> dict[str, Any]:
        """Return the counts as a JSON-ready dict."""
        with self._lock:
            return {
                "http_requests": self.http_requests,
                "calls": dict(self.calls),
                "quota_units": self.quota_units,
            }

    def reset(self) -> None:
        with self._lock:
            self.http_requests = 0
            self.calls.clear()
            self.quota_units = 0


def delegated_credentials(
    user_email: str,
    scopes: Sequence[str],
    service_account_email: str | None = None,
) -> service_account.Credentials:
    """Build credentials that act as ``user_email`` through domain-wide delegation.

    With ``GOOGLE_APPLICATION_CREDENTIALS`` set, the key file it names signs
    the token request. Without it, the runtime service account signs through
    the IAM signBlob API, so no key file is needed on Cloud Functions. That
    account needs ``roles/iam.serviceAccountTokenCreator`` on itself.

    Args:
        user_email: The Workspace user to act as.
        scopes: OAuth scopes, e.g. ``SYNC_SCOPES``.
        service_account_email: The account to sign as in keyless mode;
            defaults to the account of the runtime credentials.

    Returns:
        Credentials that fetch a token on first use.

    Raises:
        google.auth.exceptions.DefaultCredentialsError: no credentials are
            available in keyless mode.
    """
    key_file = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if key_file:
        return service_account.Credentials.from_service_account_file(
            key_file, scopes=list(scopes), subject=user_email
        )

    source, _project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    request = google.auth.transport.requests.Request()
    signer_email = service_account_email or _runtime_account_email(source, request)
    signer = google.auth.iam.Signer(request, source, signer_email)
    return service_account.Credentials(
        signer, signer_email, TOKEN_URI, scopes=list(scopes), subject=user_email
    )


def _runtime_account_email(source: Any, request: Any) -> str:
    # Compute Engine credentials report "default" until the first refresh
    # fetches the real account email from the metadata server.
    email = getattr(source, "service_account_email", None)
    if not email or email == "default":
        source.refresh(request)
        email = getattr(source, "service_account_email", None)
    if not email or email == "default":
        raise GmailApiError(
            "missing runtime service account email for keyless delegation: "
            "pass service_account_email or set GOOGLE_APPLICATION_CREDENTIALS"
        )
    return email


def service_factory(scopes: Sequence[str]) -> Callable[[str], Resource]:
    """Return a factory that builds a delegated Gmail service for one user.

    The discovery document ships with google-api-python-client, so building
    makes no network call.
    """

    def build_for_user(user_email: str) -> Resource:
        credentials = delegated_credentials(user_email, scopes)
        return build(
            "gmail", "v1", credentials=credentials, cache_discovery=False, static_discovery=True
        )

    return build_for_user


def redact_address(address: str) -> str:
    """Shorten an address for logs: ``sales@example.com`` becomes ``s***@example.com``."""
    local, at, domain = address.partition("@")
    return f"{local[:1]}***{at}{domain}"


class GmailClient:
    """Gmail API calls for delegated users, with errors mapped to ``lib.errors``.

    Each method takes the user's address, builds (once per thread) that user's
    service with ``service_factory`` and calls the API as ``userId="me"``.
    No method retries: a ``TransientError`` goes to the caller, whose
    trigger decides whether to retry.

    Args:
        service_factory: Builds the Gmail service for a user address.
        batch_size: Calls per batch request in ``get_messages``, at most 100.
    """

    def __init__(self, service_factory: Callable[[str], Resource], batch_size: int = MAX_BATCH_SIZE):
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise InvalidInputError("batch_size", f"an integer from 1 to {MAX_BATCH_SIZE}", batch_size)
        self._service_factory = service_factory
        self._batch_size = batch_size
        # NOTE: httplib2 connections are not thread-safe, so each thread
        # builds and keeps its own services.
        self._local = threading.local()
        self.usage = GmailUsage()

    def send_raw(self, user: str, raw_b64url: str, thread_id: str | None = None) -> str:
        """Send a message that is already encoded, and return its Gmail id.

        Args:
            user: Sending mailbox.
            raw_b64url: The RFC 5322 message in URL-safe base64.
            thread_id: Gmail thread to add the message to, if any.

        Raises:
            TransientError: HTTP 429, 5xx, a rate-limit 403 or a network failure.
            GmailApiError: any other error status; ``status`` is 400 for an
                invalid message or recipient.
        """
        body: dict[str, Any] = {"raw": raw_b64url}
        if thread_id:
            body["threadId"] = thread_id
        request = self._service(user).users().messages().send(userId="me", body=body)
        response = self._execute(request, "messages.send")
        logger.info("gmail sent message id=%s mailbox=%s", response["id"], redact_address(user))
        return response["id"]

    def find_by_rfc822_id(self, user: str, message_id: str) -> str | None:
        """Return the Gmail id of the message with this Message-ID header, or None.

        Spam and trash are searched too, so a sent message the user has since
        deleted is still found.
        """
        search_id = message_id.strip().removeprefix("<").removesuffix(">")
        request = self._service(user).users().messages().list(
            userId="me", q=f"rfc822msgid:{search_id}", includeSpamTrash=True, maxResults=1
        )
        response = self._execute(request, "messages.list")
        messages = response.get("messages") or []
        return messages[0]["id"] if messages else None

    def list_history(
        self,
        user: str,
        start_history_id: int,
        history_types: Iterable[str] = DEFAULT_HISTORY_TYPES,
    ) -> HistoryResult:
        """Read every history record after ``start_history_id``, over all pages.

        A page without a ``history`` key contributes no records. The result
        exists only when every page succeeded, so a caller that stores
        ``history_id`` never skips records.

        Raises:
            HistoryExpiredError: Gmail returned 404 for ``start_history_id``.
            TransientError: HTTP 429, 5xx, a rate-limit 403 or a network failure.
            GmailApiError: any other error status, or a page token repeated.
        """
        history = self._service(user).users().history()
        params = {
            "userId": "me",
            "startHistoryId": str(int(start_history_id)),
            "historyTypes": list(history_types),
            "maxResults": MAX_PAGE_SIZE,
        }
        records: list[dict[str, Any]] = []
        seen_tokens: set[str] = set()
        pages = 0
        while True:
            try:
                response = self._execute(history.list(**params), "history.list")
            except GmailApiError as exc:
                if exc.status == 404:
                    raise HistoryExpiredError(start_history_id) from exc
                raise
            pages += 1
            records.extend(response.get("history", []))
            token = response.get("nextPageToken")
            if not token:
                break
            if token in seen_tokens:
                raise GmailApiError(f"history.list returned pageToken {token!r} twice, so paging stopped to avoid a loop")
            seen_tokens.add(token)
            params["pageToken"] = token

        history_id = int(response.get("historyId", start_history_id))
        logger.info(
            "gmail history read records=%d pages=%d start=%d end=%d",
            len(records), pages, start_history_id, history_id,
        )
        return HistoryResult(records=records, history_id=history_id, pages=pages)

    def get_messages(
        self,
        user: str,
        ids: Iterable[str],
        fmt: str = "metadata",
        metadata_headers: Sequence[str] | None = None,
    ) -> dict[str, dict[str, Any] | None]:
        """Fetch messages with batch requests of at most ``batch_size`` calls.

        Args:
            user: Mailbox to read.
            ids: Gmail message ids; duplicates are fetched once.
            fmt: ``"metadata"``, ``"full"`` or ``"raw"``, Gmail's ``format``.
            metadata_headers: Headers to return when ``fmt`` is ``"metadata"``.

        Returns:
            Each distinct id in first-seen order, mapped to the message
            resource, or to None when Gmail returned 404 (message deleted).

        Raises:
            InvalidInputError: ``fmt`` is not one of the three formats.
            TransientError: the batch failed, or any call in it failed with
                a status other than 404. It is raised after the whole batch
                has been read.
        """
        if fmt not in ("metadata", "full", "raw"):
            raise InvalidInputError("fmt", "'metadata', 'full' or 'raw'", fmt)
        unique_ids = list(dict.fromkeys(ids))
        results: dict[str, dict[str, Any] | None] = {}
        for start in range(0, len(unique_ids), self._batch_size):
            chunk = unique_ids[start : start + self._batch_size]
            results.update(self._get_message_batch(user, chunk, fmt, metadata_headers))
        return {message_id: results[message_id] for message_id in unique_ids}

    def _get_message_batch(
        self, user: str, ids: list[str], fmt: str, metadata_headers: Sequence[str] | None
    ) -> dict[str, dict[str, Any] | None]:
        service = self._service(user)
        results: dict[str, dict[str, Any] | None] = {}
        failures: dict[str, HttpError] = {}

        def on_response(request_id: str, response: Any, exception: HttpError | None) -> None:
            if exception is None:
                results[request_id] = response
            elif exception.resp.status == 404:
                results[request_id] = None
            else:
                failures[request_id] = exception

        # 1. Queue one messages.get per id; the id doubles as the batch part id.
        batch = service.new_batch_http_request(callback=on_response)
        extra = {"metadataHeaders": list(metadata_headers)} if metadata_headers else {}
        for message_id in ids:
            request = service.users().messages().get(userId="me", id=message_id, format=fmt, **extra)
            batch.add(request, request_id=message_id)

        # 2. Send the batch; a failure of the batch request itself is mapped like any call.
        self.usage.record("messages.get", calls=len(ids))
        self._call(batch.execute)

        # 3. Report per-call failures only after every response was read.
        if failures:
            statuses = sorted({str(exc.resp.status) for exc in failures.values()})
            logger.warning(
                "gmail batch get failed for %d of %d messages statuses=%s first_id=%s",
                len(failures), len(ids), ",".join(statuses), next(iter(failures)),
            )
            # NOTE: every non-404 status counts as transient here, including
            # a 400 for a malformed id, so a bad id keeps failing on retry.
            raise TransientError(
                f"messages.get failed for {len(failures)} of {len(ids)} messages "
                f"with HTTP {', '.join(statuses)}; retry the batch"
            )
        return results

    def watch(
        self, user: str, topic: str, label_ids: Sequence[str] = ("INBOX", "SENT")
    ) -> tuple[int, dt.datetime]:
        """Start or renew push notifications to a Pub/Sub topic.

        Args:
            user: Mailbox to watch.
            topic: Full topic name, ``projects/<project>/topics/<topic>``.
            label_ids: Only changes to messages with one of these labels notify.

        Returns:
            The mailbox's current historyId and the watch expiration as an
            aware UTC datetime. Renew before it expires (Gmail sets 7 days).
        """
        body = {"topicName": topic, "labelIds": list(label_ids), "labelFilterBehavior": "include"}
        request = self._service(user).users().watch(userId="me", body=body)
        response = self._execute(request, "watch")
        expiration_ms = int(response["expiration"])
        expiration = dt.datetime.fromtimestamp(expiration_ms / 1000, tz=dt.timezone.utc)
        return int(response["historyId"]), expiration

    def stop(self, user: str) -> None:
        """Stop push notifications for the mailbox."""
        self._execute(self._service(user).users().stop(userId="me"), "stop")

    def get_profile(self, user: str) -> dict[str, Any]:
        """Return the profile: ``emailAddress``, ``messagesTotal``, ``threadsTotal``, ``historyId``."""
        return self._execute(self._service(user).users().getProfile(userId="me"), "getProfile")

    def list_message_ids(self, user: str, query: str, max_results: int) -> list[str]:
        """Return up to ``max_results`` message ids that match a Gmail search, newest first.

        Args:
            user: Mailbox to search.
            query: Gmail search syntax, e.g. ``"newer_than:7d -in:chats"``.
            max_results: Maximum ids returned; pages stop once it is reached.

        Raises:
            InvalidInputError: ``max_results`` is below 1.
        """
        if max_results < 1:
            raise InvalidInputError("max_results", "an integer of at least 1", max_results)
        messages = self._service(user).users().messages()
        ids: list[str] = []
        page_token = None
        while len(ids) < max_results:
            page_size = min(MAX_PAGE_SIZE, max_results - len(ids))
            request = messages.list(userId="me", q=query, maxResults=page_size, pageToken=page_token)
            response = self._execute(request, "messages.list")
            ids.extend(item["id"] for item in response.get("messages", []))
            page_token = response.get("nextPageToken")
            if not page_token:
                break
        return ids[:max_results]

    def _service(self, user: str) -> Resource:
        services = getattr(self._local, "services", None)
        if services is None:
            services = self._local.services = {}
        if user not in services:
            services[user] = self._service_factory(user)
        return services[user]

    def _execute(self, request: Any, method: str) -> Any:
        self.usage.record(method)
        return self._call(request.execute)

    def _call(self, execute: Callable[[], Any]) -> Any:
        try:
            return execute()
        except BatchError as exc:
            # BatchError subclasses HttpError, so it is caught first.
            raise TransientError(f"invalid batch response from Gmail: {exc}") from exc
        except HttpError as exc:
            raise _translate_http_error(exc) from exc
        except google.auth.exceptions.RefreshError as exc:
            if exc.retryable:
                raise TransientError(f"token refresh failed and may succeed on retry: {exc}") from exc
            raise GmailApiError(
                f"token request failed: {exc}; check that domain-wide delegation grants the scopes"
            ) from exc
        except _TRANSPORT_ERRORS as exc:
            raise TransientError(f"network error calling Gmail: {exc!r}") from exc


def _translate_http_error(exc: HttpError) -> CrmError:
    status = exc.resp.status
    reason, message = _error_reason(exc)
    text = f"Gmail returned HTTP {status} ({reason or 'no reason'}): {message}"
    if status == 429 or status >= 500 or (status == 403 and reason in _RATE_LIMIT_REASONS):
        return TransientError(text)
    return GmailApiError(text, status=status, reason=reason)


def _error_reason(exc: HttpError) -> tuple[str, str]:
    try:
        error = json.loads(exc.content.decode("utf-8"))["error"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return "", exc.resp.reason or ""
    details = error.get("errors") or [{}]
    return details[0].get("reason", ""), error.get("message", "")


class GmailSender(MailSender):
    """``MailSender`` that sends through Gmail as ``email.sender``.

    A resend of the same outbox record finds the earlier message by its
    Message-ID and returns that id instead of sending again.
    """

    def __init__(self, client: GmailClient):
        self._client = client

    def send(self, email: OutboundEmail) -> str:
        """Send ``email`` once and return the Gmail message id.

        Raises:
            TransientError: Gmail or the network failed in a way a retry can fix.
            PermanentDeliveryError: the record is invalid or Gmail rejected
                the message with HTTP 400.
            GmailApiError: another error, e.g. delegation is not authorized.
        """
        try:
            raw = to_raw_base64url(build_mime(email))
        except InvalidInputError as exc:
            raise PermanentDeliveryError(f"outbox {email.outbox_id} cannot be sent: {exc}") from exc

        # NOTE: the check relies on Gmail keeping our Message-ID header and on
        # its search index, which can lag a few seconds behind a send.
        existing = self._client.find_by_rfc822_id(email.sender, email.message_id)
        if existing:
            logger.info("gmail send skipped outbox_id=%s existing_id=%s", email.outbox_id, existing)
            return existing

        try:
            return self._client.send_raw(email.sender, raw, thread_id=email.thread_id)
        except GmailApiError as exc:
            if exc.status == 400:
                raise PermanentDeliveryError(
                    f"Gmail rejected outbox {email.outbox_id}: {exc}; fix the recipients or content"
                ) from exc
            raise
