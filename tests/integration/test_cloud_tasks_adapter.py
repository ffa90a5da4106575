"""CloudTasksScheduler against the local Cloud Tasks emulator.

The emulator delivers tasks to a small HTTP server on 127.0.0.1 that each test
starts, so these tests check what a target actually receives.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from google.api_core import exceptions as core_exceptions

from lib.adapters.cloud_tasks import CloudTasksScheduler, RecordingTaskScheduler, task_name
from lib.errors import InvalidInputError, TransientError
from lib.ports import ScheduledTask

DELIVERY_WAIT_SECONDS = 10.0


@dataclasses.dataclass
class ReceivedRequest:
    received_at: float
    path: str
    headers: Message  # case-insensitive lookup, as HTTP header names are
    body: bytes


class TargetServer:
    """Threaded HTTP server on 127.0.0.1 that records every POST and returns 200."""

    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self._arrived = threading.Condition()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                request = ReceivedRequest(time.time(), self.path, self.headers, body)
                self.send_response(200)
                self.end_headers()
                with recorder._arrived:
                    recorder.requests.append(request)
                    recorder._arrived.notify_all()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout: float) -> list[ReceivedRequest]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.requests) >= count, timeout=timeout)
            return list(self.requests)


@pytest.fixture
def target_server() -> Iterator[TargetServer]:
    server = TargetServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def scheduler(tasks_emulator) -> CloudTasksScheduler:
    return CloudTasksScheduler(tasks_emulator.project, tasks_emulator.location)


def _unique_name() -> str:
    return task_name(f"test/{uuid.uuid4()}", 1)


def _task(url: str, delay_seconds: float, **overrides) -> ScheduledTask:
    fields = {
        "queue": "crm-followups",
        "name": _unique_name(),
        "url": url,
        "payload": {"deal_id": "deal-42", "step": 2, "note": "Grüße, ünïcode"},
        "schedule_time": dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=delay_seconds),
    }
    fields.update(overrides)
    return ScheduledTask(**fields)


class FailingClient:
    """Fake CloudTasksClient that raises ``error`` on every call."""

    def __init__(self, error: Exception):
        self.error = error

    def create_task(self, **kwargs):
        raise self.error

    def delete_task(self, **kwargs):
        raise self.error


# Delivery through the emulator.


def test_schedule_delivers_body_after_eta(scheduler, target_server):
    task = _task(f"{target_server.url}/followup?source=test", delay_seconds=2.0)

    assert scheduler.schedule(task) is True
    received = target_server.wait_for(1, DELIVERY_WAIT_SECONDS)

    assert len(received) == 1
    request = received[0]
    assert json.loads(request.body) == task.payload
    assert request.headers["Content-Type"] == "application/json"
    assert request.path == "/followup?source=test"
    assert request.headers["X-CloudTasks-TaskName"] == task.name
    assert request.received_at >= task.schedule_time.timestamp()


def test_schedule_with_oidc_still_delivers(scheduler, target_server):
    task = _task(
        f"{target_server.url}/followup",
        delay_seconds=0.0,
        oidc_service_account="tasks-invoker@demo-crm-test.iam.gserviceaccount.com",
    )

    assert scheduler.schedule(task) is True
    received = target_server.wait_for(1, DELIVERY_WAIT_SECONDS)

    assert len(received) == 1
    # The emulator does not mint OIDC tokens, so no Authorization header arrives.
    assert "Authorization" not in received[0].headers


def test_schedule_same_name_returns_false(scheduler, target_server):
    task = _task(f"{target_server.url}/followup", delay_seconds=0.5)

    assert scheduler.schedule(task) is True
    assert scheduler.schedule(task) is False
    target_server.wait_for(2, timeout=2.5)

    assert len(target_server.requests) == 1


def test_cancel_prevents_delivery(scheduler, target_server):
    task = _task(f"{target_server.url}/followup", delay_seconds=1.5)
    assert scheduler.schedule(task) is True

    assert scheduler.cancel(task.queue, task.name) is True
    target_server.wait_for(1, timeout=3.0)

    assert target_server.requests == []


def test_cancel_unknown_task_returns_false(scheduler):
    assert scheduler.cancel("crm-followups", _unique_name()) is False


def test_cancel_after_delivery_returns_false(scheduler, target_server):
    task = _task(f"{target_server.url}/followup", delay_seconds=0.0)
    assert scheduler.schedule(task) is True
    assert len(target_server.wait_for(1, DELIVERY_WAIT_SECONDS)) == 1

    assert scheduler.cancel(task.queue, task.name) is False


# Validation and error mapping; these need no emulator.


def test_task_name_is_stable_and_valid():
    keys = ["deal/42/followup/1", "ünïcode key with spaces", "x" * 2000, "a"]

    for key in keys:
        name = task_name(key, 3)
        assert name == task_name(key, 3)
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,500}", name), name
        assert re.match(r"^[0-9a-f]{16}-", name), name
        assert name.endswith("-v3")


def test_task_name_differs_by_version_and_key():
    assert task_name("deal/42", 1) != task_name("deal/42", 2)
    assert task_name("deal/42", 1) != task_name("deal/43", 1)
    # Keys that sanitize to the same tail still differ by their hash prefix.
    assert task_name("deal:42", 1) != task_name("deal/42", 1)


@pytest.mark.parametrize("key, version", [("", 1), ("deal/42", -1), ("deal/42", True)])
def test_task_name_rejects_invalid_input(key, version):
    with pytest.raises(InvalidInputError):
        task_name(key, version)


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"name": "has/slash"}, "task.name"),
        ({"name": "x" * 501}, "task.name"),
        ({"name": ""}, "task.name"),
        ({"queue": "bad_queue"}, "task.queue"),
        ({"url": "ftp://127.0.0.1/x"}, "task.url"),
        ({"schedule_time": dt.datetime(2030, 1, 1)}, "task.schedule_time"),
    ],
)
def test_schedule_rejects_invalid_task(overrides, field):
    scheduler = CloudTasksScheduler("p", "l", client=FailingClient(AssertionError("client must not be called")))

    with pytest.raises(InvalidInputError) as caught:
        scheduler.schedule(dataclasses.replace(_task("http://127.0.0.1:9/x", 1.0), **overrides))

    assert caught.value.field == field


@pytest.mark.parametrize(
    "error",
    [
        core_exceptions.ServiceUnavailable("down"),
        core_exceptions.DeadlineExceeded("slow"),
        core_exceptions.InternalServerError("boom"),
        core_exceptions.ResourceExhausted("quota"),
    ],
)
def test_transient_errors_become_transient_error(error):
    scheduler = CloudTasksScheduler("p", "l", client=FailingClient(error))

    with pytest.raises(TransientError) as scheduled:
        scheduler.schedule(_task("http://127.0.0.1:9/x", 1.0))
    with pytest.raises(TransientError) as cancelled:
        scheduler.cancel("crm-followups", _unique_name())

    assert scheduled.value.__cause__ is error
    assert cancelled.value.__cause__ is error


def test_permission_denied_is_not_transient():
    scheduler = CloudTasksScheduler("p", "l", client=FailingClient(core_exceptions.PermissionDenied("no")))

    with pytest.raises(core_exceptions.PermissionDenied):
        scheduler.schedule(_task("http://127.0.0.1:9/x", 1.0))


def test_recording_scheduler_rejects_repeated_name():
    recorder = RecordingTaskScheduler()
    task = _task("http://127.0.0.1:9/x", 1.0)

    assert recorder.schedule(task) is True
    assert recorder.schedule(task) is False
    assert recorder.tasks == [task]
    assert recorder.cancel(task.queue, task.name) is True
    assert recorder.cancel(task.queue, task.name) is False
    assert recorder.schedule(task) is False
    assert recorder.cancelled == [task]
