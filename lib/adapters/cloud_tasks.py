"""Cloud Tasks adapter of the ``TaskScheduler`` port, and an in-memory fake.

``CloudTasksScheduler`` talks to Cloud Tasks, or to the local emulator when
``CLOUD_TASKS_EMULATOR_HOST`` is set. ``RecordingTaskScheduler`` keeps tasks in
memory for unit tests.
"""

from __future__ import annotations

import functools
import datetime as dt
import hashlib
import json
import logging
import os
import re
import time
import urllib.parse
from pathlib import Path

import google.auth.crypt
import google.auth.jwt
import grpc
from google.api_core import exceptions as core_exceptions
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from lib.errors import ConfigError, InvalidInputError, TransientError
from lib.ports import ScheduledTask, TaskScheduler

logger = logging.getLogger(__name__)

EMULATOR_HOST_ENV = "CLOUD_TASKS_EMULATOR_HOST"
# Local signer key for emulated calls; see ``local_oidc_token``. Never set in deployments.
LOCAL_OIDC_KEY_ENV = "CRM_LOCAL_OIDC_KEY_FILE"
LOCAL_TOKEN_GRACE = dt.timedelta(hours=1)

# Cloud Tasks accepts task ids of letters, digits, "_" and "-", at most 500
# characters, and queue ids of letters, digits and "-", at most 100 characters.
TASK_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,500}$")
QUEUE_ID_PATTERN = re.compile(r"^[A-Za-z0-9-]{1,100}$")
TASK_NAME_HASH_CHARS = 16
TASK_NAME_TAIL_MAX_CHARS = 100

# Errors a later retry can fix.
TRANSIENT_ERRORS = (
    core_exceptions.ServiceUnavailable,
    core_exceptions.DeadlineExceeded,
    core_exceptions.InternalServerError,
    core_exceptions.ResourceExhausted,
    core_exceptions.RetryError,
)


def task_name(logical_key: str, version: int) -> str:
    """Build a stable Cloud Tasks task id for ``logical_key`` at ``version``.

    The id starts with 16 hex characters of SHA-256 of the key, because Cloud
    Tasks documents higher latency and error rates for task ids with
    sequential prefixes and recommends a hashed prefix. A readable tail of the
    key follows, with other characters replaced by ``_``, and then
    ``-v<version>``. Cloud Tasks keeps the id of a deleted or executed task
    reserved for up to 24 hours, so a rescheduled task needs a new ``version``.

    Raises:
        InvalidInputError: ``logical_key`` is empty or ``version`` is negative.
    """
    if not logical_key:
        raise InvalidInputError("logical_key", "a non-empty string", logical_key)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise InvalidInputError("version", "an integer >= 0", version)

    digest = hashlib.sha256(logical_key.encode("utf-8")).hexdigest()[:TASK_NAME_HASH_CHARS]
    tail = re.sub(r"[^A-Za-z0-9_-]+", "_", logical_key)[-TASK_NAME_TAIL_MAX_CHARS:]
    return f"{digest}-{tail}-v{version}"


def write_local_oidc_key(path: Path, private_key_pem: str, kid: str, issuer: str) -> None:
    """Store a local signer's key as JSON ``{kid, issuer, private_key_pem}`` for ``local_oidc_token``."""
    path.write_text(json.dumps({"kid": kid, "issuer": issuer, "private_key_pem": private_key_pem}), encoding="utf-8")


def local_oidc_token(key_file: str, audience: str, email: str, valid_until: dt.datetime) -> str:
    """Sign an ID token shaped like Google's with the local key in ``key_file`` (local runs only).

    The token stays valid until ``valid_until``, because the emulator sends it
    at the task's schedule time, not when it is created.

    Raises:
        ConfigError: the key file is missing or not the JSON that ``write_local_oidc_key`` writes.
    """
    try:
        key = json.loads(Path(key_file).read_text(encoding="utf-8"))
        signer = google.auth.crypt.RSASigner.from_string(key["private_key_pem"], key_id=key["kid"])
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{LOCAL_OIDC_KEY_ENV}={key_file!r}: expected a JSON file with kid, issuer and "
                          f"private_key_pem: {exc}") from exc
    now = int(time.time())
    subject = str(int(hashlib.sha256(email.encode("utf-8")).hexdigest()[:15], 16))
    claims = {"iss": key["issuer"], "aud": audience, "azp": subject, "sub": subject, "email": email,
              "email_verified": True, "iat": now, "exp": max(int(valid_until.timestamp()), now + 300)}
    return google.auth.jwt.encode(signer, claims, key_id=key["kid"]).decode("ascii")


def validate_task_ids(queue: str, name: str) -> None:
    """Check ``queue`` and ``name`` against the Cloud Tasks id rules.

    Raises:
        InvalidInputError: either id has a character outside the allowed set
            or is too long.
    """
    if not QUEUE_ID_PATTERN.match(queue):
        raise InvalidInputError("task.queue", "1 to 100 characters of [A-Za-z0-9-]", queue)
    if not TASK_ID_PATTERN.match(name):
        raise InvalidInputError("task.name", "1 to 500 characters of [A-Za-z0-9_-]", name)


def _validate_task(task: ScheduledTask) -> None:
    validate_task_ids(task.queue, task.name)
    if urllib.parse.urlsplit(task.url).scheme not in ("http", "https"):
        raise InvalidInputError("task.url", "an http or https URL", task.url)
    if task.schedule_time.tzinfo is None or task.schedule_time.utcoffset() is None:
        raise InvalidInputError("task.schedule_time", "a timezone-aware datetime", task.schedule_time)


def build_client() -> tasks_v2.CloudTasksClient:
    """Build a client for the emulator at ``CLOUD_TASKS_EMULATOR_HOST``, else for Cloud Tasks."""
    emulator_host = os.environ.get(EMULATOR_HOST_ENV)
    if emulator_host:
        transport = CloudTasksGrpcTransport(channel=grpc.insecure_channel(emulator_host))
        return tasks_v2.CloudTasksClient(transport=transport)
    return tasks_v2.CloudTasksClient()


class CloudTasksScheduler(TaskScheduler):
    """Schedule HTTP tasks in Cloud Tasks queues of one project and location."""

    def __init__(self, project: str, location: str, client: tasks_v2.CloudTasksClient | None = None):
        self._project = project
        self._location = location
        self._given_client = client

    @functools.cached_property
    def _client(self) -> tasks_v2.CloudTasksClient:
        # Built on first use, so services that never schedule need no credentials.
        return self._given_client or build_client()

    def schedule(self, task: ScheduledTask) -> bool:
        """Create ``task``; return False if a task with its name already exists.

        Raises:
            InvalidInputError: the queue or task name breaks the Cloud Tasks
                id rules, the URL is not http(s), or ``schedule_time`` is naive.
            TransientError: Cloud Tasks was unavailable, overloaded, timed out
                or failed internally.
        """
        _validate_task(task)
        request = tasks_v2.CreateTaskRequest(
            parent=self._queue_path(task.queue),
            task=self._to_proto(task),
        )

        try:
            self._client.create_task(request=request)
        except core_exceptions.AlreadyExists:
            logger.info("Task %s already exists in queue %s", task.name, task.queue)
            return False
        except TRANSIENT_ERRORS as exc:
            raise TransientError(f"Cloud Tasks failed to create task {task.name!r}: {exc}") from exc

        logger.info("Scheduled task %s in queue %s for %s", task.name, task.queue, task.schedule_time.isoformat())
        return True

    def cancel(self, queue: str, name: str) -> bool:
        """Delete a pending task; return False if it does not exist or already ran.

        Raises:
            InvalidInputError: the queue or task name breaks the Cloud Tasks id rules.
            TransientError: Cloud Tasks was unavailable, overloaded, timed out
                or failed internally.
        """
        validate_task_ids(queue, name)

        try:
            self._client.delete_task(name=f"{self._queue_path(queue)}/tasks/{name}")
        except core_exceptions.NotFound:
            logger.info("Task %s not found in queue %s, nothing to cancel", name, queue)
            return False
        except TRANSIENT_ERRORS as exc:
            raise TransientError(f"Cloud Tasks failed to delete task {name!r}: {exc}") from exc

        logger.info("Cancelled task %s in queue %s", name, queue)
        return True

    def _queue_path(self, queue: str) -> str:
        return f"projects/{self._project}/locations/{self._location}/queues/{queue}"

    def _to_proto(self, task: ScheduledTask) -> tasks_v2.Task:
        http_request = tasks_v2.HttpRequest(
            http_method=tasks_v2.HttpMethod.POST,
            url=task.url,
            headers={"Content-Type": "application/json"},
            body=json.dumps(task.payload, separators=(",", ":")).encode("utf-8"),
        )
        if task.oidc_service_account:
            http_request.oidc_token = tasks_v2.OidcToken(
                service_account_email=task.oidc_service_account,
                audience=task.audience or task.url,
            )
            local_key_file = os.environ.get(LOCAL_OIDC_KEY_ENV)
            if os.environ.get(EMULATOR_HOST_ENV) and local_key_file:
                # The emulator ignores oidc_token, so the task carries a locally signed token itself.
                token = local_oidc_token(local_key_file, task.audience or task.url, task.oidc_service_account,
                                         valid_until=task.schedule_time + LOCAL_TOKEN_GRACE)
                http_request.headers["Authorization"] = f"Bearer {token}"
        return tasks_v2.Task(
            name=f"{self._queue_path(task.queue)}/tasks/{task.name}",
            http_request=http_request,
            schedule_time=task.schedule_time,
        )


class RecordingTaskScheduler(TaskScheduler):
    """In-memory ``TaskScheduler`` for unit tests.

    Like Cloud Tasks, it keeps a name reserved after the task is cancelled, so
    scheduling the same name again returns False.
    """

    def __init__(self) -> None:
        self.pending: dict[tuple[str, str], ScheduledTask] = {}
        self.cancelled: list[ScheduledTask] = []
        self._reserved: set[tuple[str, str]] = set()

    @property
    def tasks(self) -> list[ScheduledTask]:
        """Pending tasks in the order they were scheduled."""
        return list(self.pending.values())

    def schedule(self, task: ScheduledTask) -> bool:
        _validate_task(task)
        key = (task.queue, task.name)
        if key in self._reserved:
            return False
        self._reserved.add(key)
        self.pending[key] = task
        return True

    def cancel(self, queue: str, name: str) -> bool:
        validate_task_ids(queue, name)
        task = self.pending.pop((queue, name), None)
        if task is None:
            return False
        self.cancelled.append(task)
        return True
