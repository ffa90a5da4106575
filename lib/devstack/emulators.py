"""Start and stop the local emulators and functions servers for tests and dev runs.

Every component listens on a free port of 127.0.0.1, writes its output to a log
file, runs in its own process group and is stopped as a whole group, because
``gcloud`` starts the emulators as Java child processes. A component stops when
its ``with`` block ends (also on KeyboardInterrupt) or, at the latest, when the
interpreter exits.

Example::

    with Stack("demo-project") as stack:
        os.environ.update(stack.env())
        ...
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 10.0
POLL_INTERVAL_SECONDS = 0.2
PROBE_TIMEOUT_SECONDS = 2.0
LOG_TAIL_LINES = 40

# Components of the Cloud SDK, by the folder they install under ``platform/``.
SDK_COMPONENT_DIRS = {
    "firestore": "cloud-firestore-emulator",
    "pubsub": "pubsub-emulator",
}

ERROR_START_TIMEOUT = "Timed out after {timeout:.0f} s waiting for {name} on {host}. Last log lines of {log}:\n{tail}"
ERROR_EXITED_EARLY = "{name} exited with code {code} before it became ready. Last log lines of {log}:\n{tail}"
ERROR_RESET_FAILED = "Resetting Firestore emulator data at {url} failed: {reason}"

# Loopback calls must never go through a proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class EmulatorError(RuntimeError):
    """A local component failed to start, or an emulator call failed."""


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that is free at the time of the call.

    NOTE: another process may take the port before the caller binds it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def find_missing_tools(components: Iterable[str]) -> list[str]:
    """List what is missing to run the given gcloud emulators.

    Args:
        components: Keys of ``SDK_COMPONENT_DIRS``, e.g. ``["firestore"]``.

    Returns:
        Human-readable names of the missing tools; empty when all are present.
    """
    gcloud = shutil.which("gcloud")
    missing = [] if gcloud else ["gcloud"]
    if not shutil.which("java"):
        missing.append("java")
    if gcloud is None:
        return missing

    # gcloud is installed as <sdk>/bin/gcloud, usually behind a symlink.
    platform_dir = Path(gcloud).resolve().parents[1] / "platform"
    for component in components:
        folder = SDK_COMPONENT_DIRS[component]
        if not (platform_dir / folder).is_dir():
            missing.append(f"gcloud {component} emulator ({platform_dir / folder})")
    return missing


def reset_firestore(host: str, project: str) -> None:
    """Delete every document of the default database in the Firestore emulator.

    Args:
        host: ``HOST:PORT`` of the emulator, as in ``FIRESTORE_EMULATOR_HOST``.
        project: Project id whose data is deleted.

    Raises:
        EmulatorError: the emulator did not return HTTP 200.
    """
    url = f"http://{host}/emulator/v1/projects/{project}/databases/(default)/documents"
    request = urllib.request.Request(url, method="DELETE")
    try:
        with _opener.open(request, timeout=10) as response:
            response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise EmulatorError(ERROR_RESET_FAILED.format(url=url, reason=exc)) from exc


def _http_get(url: str) -> tuple[int, str] | None:
    """Return the status and body of ``GET url``, or None when the connection fails."""
    try:
        with _opener.open(url, timeout=PROBE_TIMEOUT_SECONDS) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (urllib.error.URLError, OSError):
        return None


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=PROBE_TIMEOUT_SECONDS):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(log not readable: {exc})"


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ManagedProcess:
    """A child process group that listens on one loopback port.

    Subclasses give the command, the readiness check and the environment
    variables that point clients at the component.

    Args:
        log_dir: Folder for the log file; a new temporary folder when None.
            The folder is kept after stop so failures can be read.
        start_timeout: Seconds to wait for readiness before ``start`` fails.
    """

    name = "process"

    def __init__(self, *, log_dir: Path | None = None, start_timeout: float = DEFAULT_START_TIMEOUT_SECONDS):
        self.port = 0
        self.start_timeout = start_timeout
        self._log_dir = log_dir
        self._log_file: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` of the running component."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id of the group leader, or None when not running."""
        return self._process.pid if self._process else None

    def env(self) -> dict[str, str]:
        """Environment variables that point clients at this component."""
        return {}

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _child_env(self) -> dict[str, str]:
        return dict(os.environ)

    def _is_ready(self) -> bool:
        return _accepts_connections(self.port)

    def start(self) -> ManagedProcess:
        """Start the component and wait until it is ready.

        Raises:
            EmulatorError: the process exited early or was not ready within
                ``start_timeout`` seconds; the message has the log tail.
        """
        if self._process is not None:
            return self

        # 1. Pick the port and the log file.
        self.port = free_port()
        log_dir = self._log_dir or Path(tempfile.mkdtemp(prefix=f"crm-{self.name}-"))
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{self.name}-{self.port}.log"
        self._log_file = self.log_path.open("wb")

        # 2. Start the process in a new session, so its children share its group.
        logger.info("Starting %s on %s, log %s", self.name, self.host, self.log_path)
        try:
            self._process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                env=self._child_env(),
                cwd=REPO_ROOT,
                start_new_session=True,
            )
            atexit.register(self.stop)

            # 3. Wait for readiness, and stop the group on any failure or interrupt.
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        logger.info("%s is ready on %s (pid %d)", self.name, self.host, self._process.pid)
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                raise EmulatorError(
                    ERROR_EXITED_EARLY.format(name=self.name, code=code, log=self.log_path, tail=_tail(self.log_path))
                )
            if self._is_ready():
                return
            time.sleep(POLL_INTERVAL_SECONDS)
        raise EmulatorError(
            ERROR_START_TIMEOUT.format(
                name=self.name, host=self.host, timeout=self.start_timeout, log=self.log_path, tail=_tail(self.log_path)
            )
        )

    def stop(self) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after a grace period."""
        process = self._process
        self._process = None
        atexit.unregister(self.stop)
        if process is None:
            self._close_log()
            return

        pgid = process.pid
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            if self._wait_for_group_exit(process, pgid, STOP_TIMEOUT_SECONDS):
                break
            logger.warning("%s (pgid %d) did not stop after %s", self.name, pgid, sig.name)

        self._close_log()
        logger.info("Stopped %s on %s", self.name, self.host)

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    @staticmethod
    def _wait_for_group_exit(process: subprocess.Popen[bytes], pgid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process.poll()
            if not _group_exists(pgid):
                return True
            time.sleep(0.1)
        return False

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


class _GcloudEmulator(ManagedProcess):
    """A gcloud emulator that returns "Ok" to ``GET /`` once it is ready."""

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["CLOUDSDK_CORE_DISABLE_PROMPTS"] = "1"
        return env

    def _is_ready(self) -> bool:
        result = _http_get(f"http://{self.host}/")
        return result is not None and result[0] == 200 and result[1].strip() == "Ok"


class FirestoreEmulator(_GcloudEmulator):
    """The Firestore emulator in native mode, from ``gcloud emulators firestore``."""

    name = "firestore-emulator"

    def __init__(self, project: str, **kwargs):
        super().__init__(**kwargs)
        self.project = project

    def env(self) -> dict[str, str]:
        return {"FIRESTORE_EMULATOR_HOST": self.host}

    def _command(self) -> list[str]:
        return ["gcloud", "emulators", "firestore", "start", f"--host-port={self.host}"]

    def reset(self) -> None:
        """Delete every document of ``project`` in this emulator."""
        reset_firestore(self.host, self.project)


class PubSubEmulator(_GcloudEmulator):
    """The Pub/Sub emulator, from ``gcloud beta emulators pubsub``."""

    name = "pubsub-emulator"

    def __init__(self, project: str, **kwargs):
        super().__init__(**kwargs)
        self.project = project

    def env(self) -> dict[str, str]:
        return {"PUBSUB_EMULATOR_HOST": self.host}

    def _command(self) -> list[str]:
        # The data folder sits next to the log, so gcloud's own config folder stays untouched.
        data_dir = self.log_path.parent / f"pubsub-data-{self.port}"
        data_dir.mkdir(exist_ok=True)
        return [
            "gcloud", "beta", "emulators", "pubsub", "start",
            f"--host-port={self.host}", f"--project={self.project}", f"--data-dir={data_dir}",
        ]


class TasksEmulator(ManagedProcess):
    """gcloud-tasks-emulator, run through ``lib.devstack.tasks_emulator_main``.

    Args:
        project: Project id of the queues.
        location: Location id of the queues, e.g. ``"us-central1"``.
        queues: Short queue ids to create, e.g. ``["crm-followups"]``.
    """

    name = "tasks-emulator"

    def __init__(self, project: str, location: str, queues: list[str], **kwargs):
        super().__init__(**kwargs)
        self.project = project
        self.location = location
        self.queues = list(queues)

    def queue_path(self, queue: str) -> str:
        """Full resource name of the short queue id ``queue``."""
        return f"projects/{self.project}/locations/{self.location}/queues/{queue}"

    def env(self) -> dict[str, str]:
        return {"CLOUD_TASKS_EMULATOR_HOST": self.host}

    def _command(self) -> list[str]:
        command = [sys.executable, "-m", "lib.devstack.tasks_emulator_main", "--port", str(self.port)]
        for queue in self.queues:
            command += ["--queue", self.queue_path(queue)]
        return command

    def _child_env(self) -> dict[str, str]:
        return _with_repo_on_path(dict(os.environ))


class FunctionsServer(ManagedProcess):
    """A functions-framework server for one function target.

    Args:
        source: Python file that defines the function, e.g. ``functions/main.py``.
        target: Name of the function to serve.
        env: Extra environment variables for the server, e.g. ``Stack.env()``.
        signature_type: ``http``, ``event``, ``cloudevent`` or ``typed``.
    """

    name = "functions-server"

    def __init__(self, source: Path, target: str, env: dict[str, str], signature_type: str = "http", **kwargs):
        super().__init__(**kwargs)
        self.source = Path(source)
        self.target = target
        self.extra_env = dict(env)
        self.signature_type = signature_type

    @property
    def url(self) -> str:
        """Base URL of the server, without a trailing slash."""
        return f"http://{self.host}"

    def _command(self) -> list[str]:
        return [
            sys.executable, "-m", "functions_framework",
            "--source", str(self.source),
            "--target", self.target,
            "--host", LOOPBACK,
            "--port", str(self.port),
            "--signature-type", self.signature_type,
        ]

    def _child_env(self) -> dict[str, str]:
        env = _with_repo_on_path(dict(os.environ))
        env.update(self.extra_env)
        return env

    def _is_ready(self) -> bool:
        # Any HTTP status means the server is up; a cloudevent target rejects a bare GET.
        return _http_get(f"{self.url}/") is not None


def _with_repo_on_path(env: dict[str, str]) -> dict[str, str]:
    paths = [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


class Stack:
    """The emulators a run needs, plus an optional functions server.

    Components start in the order Firestore, Pub/Sub, Cloud Tasks, functions
    server, and stop in reverse order. The functions server gets ``env()``.

    Args:
        project: Project id used by every component.
        firestore: Start the Firestore emulator.
        pubsub: Start the Pub/Sub emulator.
        tasks: Start the Cloud Tasks emulator.
        location: Location id of the Cloud Tasks queues.
        queues: Short ids of the Cloud Tasks queues to create.
        functions_source: Python file of the functions; no server when None.
        functions_target: Function the server runs, e.g. the dev router.
        log_dir: Folder for all log files; a new temporary folder when None.
    """

    def __init__(
        self,
        project: str,
        *,
        firestore: bool = True,
        pubsub: bool = True,
        tasks: bool = True,
        location: str = "us-central1",
        queues: Iterable[str] = ("crm-followups",),
        functions_source: Path | None = None,
        functions_target: str = "local_router",
        log_dir: Path | None = None,
    ):
        self.project = project
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="crm-devstack-"))
        self.firestore = FirestoreEmulator(project, log_dir=self.log_dir) if firestore else None
        self.pubsub = PubSubEmulator(project, log_dir=self.log_dir) if pubsub else None
        self.tasks = TasksEmulator(project, location, list(queues), log_dir=self.log_dir) if tasks else None
        self._functions_args = (functions_source, functions_target)
        self.functions: FunctionsServer | None = None
        self._started: list[ManagedProcess] = []

    def env(self) -> dict[str, str]:
        """Environment variables that point clients at the running emulators."""
        env = {"GOOGLE_CLOUD_PROJECT": self.project}
        for component in (self.firestore, self.pubsub, self.tasks):
            if component is not None and component.pid is not None:
                env.update(component.env())
        return env

    def start(self) -> Stack:
        """Start every selected component; on failure stop those already started."""
        try:
            for component in (self.firestore, self.pubsub, self.tasks):
                if component is not None:
                    self._started.append(component.start())

            source, target = self._functions_args
            if source is not None:
                self.functions = FunctionsServer(source, target, self.env(), log_dir=self.log_dir)
                self._started.append(self.functions.start())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the started components in reverse order."""
        while self._started:
            self._started.pop().stop()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
