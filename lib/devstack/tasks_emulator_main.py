"""Run gcloud-tasks-emulator bound to 127.0.0.1 only.

Usage::

    python -m lib.devstack.tasks_emulator_main --port 8123 \\
        --queue projects/demo/locations/us-central1/queues/crm-followups

Behaviour of gcloud-tasks-emulator 0.6.2, read from its ``server.py``:

- ``APIThread.run`` binds the gRPC API to ``[::]:PORT``, so it listens on every
  interface, and the host argument of ``create_server`` is never used. This
  launcher builds the gRPC server itself on ``127.0.0.1:PORT``.
- A processor thread per queue polls every 0.1 s and dispatches a task once its
  ``schedule_time`` has passed, so delivery comes 0 to about 0.2 s after the ETA.
- HTTP targets: the task is sent with ``urllib`` to the full
  ``http_request.url`` (scheme, host, port, path and query as given) with the
  task's ``http_method`` (POST when unset) and ``body``. The
  ``--target-host``/``--target-port`` options apply only to App Engine tasks.
- Headers sent: the task's own ``http_request.headers``, so ``Content-Type``
  arrives when the task sets it. The emulator adds ``X-CloudTasks-TaskName``
  (short task id), ``X-CloudTasks-TaskRetryCount`` and
  ``X-CloudTasks-TaskExecutionCount`` (both ``dispatch_count - 1``) and
  ``X-CloudTasks-TaskETA`` (epoch seconds as a float string). The
  ``User-Agent`` is urllib's, e.g. ``Python-urllib/3.11``.
- ``X-CloudTasks-QueueName`` carries the full queue path
  ``projects/P/locations/L/queues/Q``, whereas Cloud Tasks sends the short
  queue id.
- No ``Authorization`` header: ``oidc_token`` and ``oauth_token`` are ignored,
  so a target that verifies the OIDC token rejects every emulated call.
- A 4xx or 5xx response, or a connection failure, puts the task back at the end
  of the queue. With the default unlimited retries it is sent again on the next
  poll, without backoff.
- ``DeleteTask`` and ``GetTask`` are not implemented (``UNIMPLEMENTED``), and a
  second ``CreateTask`` with an existing task name is accepted, whereas Cloud
  Tasks rejects it with ``ALREADY_EXISTS``.
- Task lists are changed from the gRPC worker threads and the processor threads
  without a lock.

This launcher keeps the package's request building (``_make_task_request``) so
the headers above are what a target receives, and changes the following:

- It listens on ``127.0.0.1`` only.
- It implements ``DeleteTask`` and ``GetTask``.
- It rejects a task name that this process has already seen with
  ``ALREADY_EXISTS``. Cloud Tasks releases the name of a deleted or executed
  task after up to 24 hours (``CreateTaskRequest.task`` docs in
  google-cloud-tasks 2.26.0), but this launcher keeps it until it exits.
- It rejects tasks whose URL host is not a loopback address, so a dev stack
  cannot call deployed services, and rejects App Engine tasks.
- It guards the task lists with a lock but sends requests outside of it, so a
  target may create tasks while it handles one.
- It retries failed tasks with exponential backoff (0.1 s doubling, capped at
  10 s) and stops after ``--max-attempts`` attempts (unlimited by default).
- It sets a 600 s default socket timeout, so a silent target blocks its
  queue for at most 600 s per socket read. Cloud Tasks cancels an HTTP task
  request after its ``dispatch_deadline``, 10 minutes by default.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import re
import signal
import socket
import threading
import urllib.error
import urllib.parse
from concurrent import futures

import grpc
from gcloud_tasks_emulator.cloudtasks_pb2_grpc import add_CloudTasksServicer_to_server
from gcloud_tasks_emulator.server import Greeter, Processor, QueueState, _make_task_request
from google.api_core.exceptions import AlreadyExists, GoogleAPICallError, InvalidArgument, NotFound
from google.cloud.tasks_v2 import Attempt, Queue, Task
from google.protobuf import empty_pb2

logger = logging.getLogger("crm.devstack.tasks_emulator")

QUEUE_NAME_PATTERN = re.compile(r"^projects/[^/]+/locations/[^/]+/queues/[A-Za-z0-9-]{1,100}$")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DISPATCH_TIMEOUT_SECONDS = 600
MIN_BACKOFF_SECONDS = 0.1
MAX_BACKOFF_SECONDS = 10.0
GRPC_WORKERS = 4


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _backoff_seconds(dispatch_count: int) -> float:
    return min(MIN_BACKOFF_SECONDS * 2 ** (dispatch_count - 1), MAX_BACKOFF_SECONDS)


def _check_target(task: Task) -> None:
    """Raise InvalidArgument unless ``task`` is an HTTP task aimed at loopback."""
    if task.app_engine_http_request.relative_uri:
        raise InvalidArgument("App Engine tasks are not supported: use http_request with a loopback URL")

    host = urllib.parse.urlsplit(task.http_request.url).hostname
    if host not in LOOPBACK_HOSTS:
        raise InvalidArgument(
            f"http_request.url host must be one of {sorted(LOOPBACK_HOSTS)}, "
            f"found {host!r}: the dev emulator only calls local servers"
        )


class LoopbackQueueState(QueueState):
    """Queue state with a lock, task-name reservation, deletion and backoff."""

    def __init__(self, max_attempts: int):
        super().__init__(target_host="127.0.0.1", target_port=0, max_retries=max_attempts)
        self._lock = threading.Lock()
        self._reserved_names: set[str] = set()

    def create_task(self, queue: str, task: Task) -> Task:
        _check_target(task)
        with self._lock:
            if task.name in self._reserved_names:
                raise AlreadyExists(f"Task {task.name} already exists")
            created = super().create_task(queue, task)
            self._reserved_names.add(created.name)
        return created

    def get_task(self, name: str) -> Task:
        with self._lock:
            return self._find(name)

    def delete_task(self, name: str) -> None:
        with self._lock:
            task = self._find(name)
            self._queue_tasks[self._queue_of(name)].remove(task)
        logger.info("Deleted task %s", name)

    def submit_task(self, task_name: str, force_run: bool = False) -> Task | None:
        """Send one task if it is due, or always when ``force_run`` is set.

        Raises:
            NotFound: ``force_run`` is set and the task is not pending.
        """
        # 1. Take the task out of its queue under the lock.
        with self._lock:
            try:
                task = self._find(task_name)
            except NotFound:
                if force_run:
                    raise
                # The processor works on a snapshot, so the task may have been
                # deleted or sent since.
                return None
            if not force_run and task.schedule_time and task.schedule_time > _utc_now():
                return task
            self._queue_tasks[self._queue_of(task_name)].remove(task)
            task.dispatch_count += 1

        # 2. Send it without the lock, so the target can create tasks meanwhile.
        dispatch_time = _utc_now()
        status = self._dispatch(task)
        task.last_attempt = Attempt(
            dispatch_time=dispatch_time,
            response_time=_utc_now(),
            response_status={"code": status},
        )
        if not task.first_attempt:
            task.first_attempt = task.last_attempt

        # 3. Put a failed task back with a later schedule_time.
        if 200 <= status < 300:
            return task
        if 0 <= self._max_retries <= task.dispatch_count:
            logger.warning("Giving up task %s after %d attempts", task_name, task.dispatch_count)
            return task
        task.schedule_time = _utc_now() + dt.timedelta(seconds=_backoff_seconds(task.dispatch_count))
        with self._lock:
            if self._queue_of(task_name) in self._queue_tasks:
                self._queue_tasks[self._queue_of(task_name)].append(task)
        return task

    def _dispatch(self, task: Task) -> int:
        queue_name = self._queue_of(task.name)
        try:
            with _make_task_request(queue_name, task, self._target_host, self._target_port) as response:
                response.read()
                return response.status
        except urllib.error.HTTPError as exc:
            logger.warning("Task %s failed: target returned HTTP %d", task.name, exc.code)
            return exc.code
        except (OSError, urllib.error.URLError) as exc:
            logger.warning("Task %s failed: %s: %s", task.name, type(exc).__name__, exc)
            return 503

    def _find(self, name: str) -> Task:
        for task in self._queue_tasks.get(self._queue_of(name), ()):
            if task.name == name:
                return task
        raise NotFound(f"Task {name} not found or already dispatched")

    @staticmethod
    def _queue_of(task_name: str) -> str:
        return task_name.rsplit("/", 2)[0]


class LoopbackServicer(Greeter):
    """The package's servicer plus GetTask and DeleteTask."""

    def GetTask(self, request, context):
        try:
            return self._state.get_task(request.name)
        except GoogleAPICallError as err:
            context.abort(err.grpc_status_code, err.message)

    def DeleteTask(self, request, context):
        try:
            self._state.delete_task(request.name)
            return empty_pb2.Empty()
        except GoogleAPICallError as err:
            context.abort(err.grpc_status_code, err.message)


def _queue_name(value: str) -> str:
    if not QUEUE_NAME_PATTERN.match(value):
        raise argparse.ArgumentTypeError(
            f"expected projects/PROJECT/locations/LOCATION/queues/QUEUE, found {value!r}"
        )
    return value


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Cloud Tasks emulator listening on 127.0.0.1 only.")
    parser.add_argument("--port", type=int, required=True, help="TCP port of the gRPC API on 127.0.0.1.")
    parser.add_argument(
        "--queue",
        type=_queue_name,
        action="append",
        default=[],
        help="Queue to create, as projects/P/locations/L/queues/Q. Repeat for several.",
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=-1,
        help="Attempts per task before it is dropped; -1 means unlimited.",
    )
    return parser.parse_args(argv)


def serve(port: int, queues: list[str], max_attempts: int, stop: threading.Event) -> None:
    """Serve the Cloud Tasks API on ``127.0.0.1:port`` until ``stop`` is set.

    Raises:
        RuntimeError: the port could not be bound.
    """
    state = LoopbackQueueState(max_attempts)
    for name in queues:
        state.create_queue(name.rsplit("/", 2)[0], Queue(name=name))

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=GRPC_WORKERS))
    add_CloudTasksServicer_to_server(LoopbackServicer(state), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    processor = Processor(state)
    processor.daemon = True
    processor.start()
    logger.info("Cloud Tasks emulator listening on 127.0.0.1:%d with queues %s", port, queues)

    while not stop.wait(0.2):
        pass

    logger.info("Stopping Cloud Tasks emulator on 127.0.0.1:%d", port)
    processor.join(timeout=1)
    server.stop(grace=0).wait()


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # NOTE: the package calls urlopen without a timeout, so this default bounds each socket read.
    socket.setdefaulttimeout(DISPATCH_TIMEOUT_SECONDS)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    serve(args.port, args.queue, args.max_attempts, stop)


if __name__ == "__main__":
    main()
