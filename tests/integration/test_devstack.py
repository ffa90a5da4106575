"""Devstack components start on free loopback ports and leave nothing behind."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import urllib.request

import pytest
from google.cloud import firestore

from lib.devstack.emulators import (
    EmulatorError,
    FirestoreEmulator,
    FunctionsServer,
    ManagedProcess,
    PubSubEmulator,
    Stack,
    TasksEmulator,
    reset_firestore,
)
from tests.conftest import TEST_LOCATION, TEST_PROJECT, TEST_QUEUE, require_tools

LOOPBACK_ADDRESSES = ("127.0.0.1", "[::ffff:127.0.0.1]")
_SS_PID = re.compile(r"pid=(\d+)")


def _listeners_of_group(pgid: int) -> list[str]:
    """Local addresses of the TCP listeners owned by processes of group ``pgid``."""
    output = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    addresses = []
    for line in output.splitlines():
        fields = line.split()
        for pid in _SS_PID.findall(line):
            try:
                if os.getpgid(int(pid)) == pgid:
                    addresses.append(fields[3])
                    break
            except ProcessLookupError:
                continue
    return addresses


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR, as servers set it, so closed connections in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _assert_started_on_loopback(component: ManagedProcess) -> None:
    assert component.host == f"127.0.0.1:{component.port}"
    if shutil.which("ss") is None:
        return
    listeners = _listeners_of_group(component.pid)
    assert any(address.endswith(f":{component.port}") for address in listeners), listeners
    for address in listeners:
        assert address.rsplit(":", 1)[0] in LOOPBACK_ADDRESSES, f"{component.name} listens on {address}"


def _assert_fully_stopped(pgid: int, port: int) -> None:
    assert not _group_exists(pgid), f"process group {pgid} still has processes"
    assert _port_is_free(port), f"port {port} is still bound"


@pytest.mark.parametrize(
    "make_component, tools",
    [
        (lambda: FirestoreEmulator(TEST_PROJECT), ("firestore",)),
        (lambda: PubSubEmulator(TEST_PROJECT), ("pubsub",)),
        (lambda: TasksEmulator(TEST_PROJECT, TEST_LOCATION, [TEST_QUEUE]), ()),
    ],
    ids=["firestore", "pubsub", "tasks"],
)
def test_emulator_starts_on_loopback_and_stops(make_component, tools):
    if tools:
        require_tools(*tools)
    component = make_component()

    with component:
        pgid, port = component.pid, component.port
        _assert_started_on_loopback(component)
        assert component.log_path.is_file()

    assert component.pid is None
    _assert_fully_stopped(pgid, port)


def test_emulator_stop_is_idempotent():
    emulator = TasksEmulator(TEST_PROJECT, TEST_LOCATION, [TEST_QUEUE]).start()

    emulator.stop()
    emulator.stop()

    assert emulator.pid is None


def test_stack_env_points_at_started_emulators():
    require_tools("firestore", "pubsub")

    with Stack(TEST_PROJECT) as stack:
        env = stack.env()
        components = [stack.firestore, stack.pubsub, stack.tasks]
        started = [(component.pid, component.port) for component in components]

        assert env == {
            "GOOGLE_CLOUD_PROJECT": TEST_PROJECT,
            "FIRESTORE_EMULATOR_HOST": stack.firestore.host,
            "PUBSUB_EMULATOR_HOST": stack.pubsub.host,
            "CLOUD_TASKS_EMULATOR_HOST": stack.tasks.host,
        }

    for pgid, port in started:
        _assert_fully_stopped(pgid, port)


def test_stack_starts_only_selected_components():
    with Stack(TEST_PROJECT, firestore=False, pubsub=False) as stack:
        assert stack.firestore is None
        assert stack.pubsub is None
        assert set(stack.env()) == {"GOOGLE_CLOUD_PROJECT", "CLOUD_TASKS_EMULATOR_HOST"}


class _ScriptProcess(ManagedProcess):
    """A Python one-liner that never opens its port, to test start failures."""

    name = "script"

    def __init__(self, script: str, **kwargs):
        super().__init__(**kwargs)
        self.script = script

    def _command(self) -> list[str]:
        return [sys.executable, "-c", self.script]


def test_start_timeout_reports_log_tail(tmp_path):
    process = _ScriptProcess(
        "import time; print('still warming up', flush=True); time.sleep(60)",
        log_dir=tmp_path,
        start_timeout=1.5,
    )

    with pytest.raises(EmulatorError, match="Timed out after 2 s waiting for script") as caught:
        process.start()

    assert "still warming up" in str(caught.value)
    assert process.pid is None


def test_early_exit_reports_code_and_log_tail(tmp_path):
    process = _ScriptProcess("print('unknown flag --foo'); raise SystemExit(3)", log_dir=tmp_path)

    with pytest.raises(EmulatorError, match="exited with code 3") as caught:
        process.start()

    assert "unknown flag --foo" in str(caught.value)


def test_functions_server_serves_target_with_env(tmp_path):
    source = tmp_path / "main.py"
    source.write_text(
        textwrap.dedent(
            """
            import os

            def hello(request):
                return os.environ["GREETING"]
            """
        )
    )
    server = FunctionsServer(source, "hello", {"GREETING": "hello from env"}, log_dir=tmp_path)

    with server:
        pgid, port = server.pid, server.port
        _assert_started_on_loopback(server)
        with urllib.request.urlopen(f"{server.url}/", timeout=5) as response:
            body = response.read().decode()

    assert body == "hello from env"
    _assert_fully_stopped(pgid, port)


def test_reset_firestore_deletes_documents(clean_firestore):
    client = firestore.Client(project=TEST_PROJECT)
    document = client.collection("deals").document("deal-1")
    document.set({"stage": "won"})
    assert document.get().exists

    reset_firestore(clean_firestore, TEST_PROJECT)

    assert not document.get().exists
