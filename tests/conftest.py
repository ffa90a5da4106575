"""Shared fixtures: emulators started once per session, and environment hygiene.

Emulator-backed tests are skipped when ``gcloud`` or ``java`` is missing,
except with ``CI=true``, where a missing tool fails them so CI never passes by
skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lib.devstack.emulators import (
    FirestoreEmulator,
    PubSubEmulator,
    TasksEmulator,
    find_missing_tools,
    reset_firestore,
)

TEST_PROJECT = "demo-crm-test"
TEST_LOCATION = "us-central1"
TEST_QUEUE = "crm-followups"

_TESTS_DIR = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: runs against local emulators started by the fixtures")
    config.addinivalue_line("markers", "e2e: runs the functions through a local functions-framework server")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Mark tests by folder, so `-m "not integration"` works without decorators.
    for item in items:
        parts = Path(str(item.path)).resolve().relative_to(_TESTS_DIR).parts
        if parts and parts[0] in ("integration", "e2e"):
            item.add_marker(parts[0])


def require_tools(*components: str) -> None:
    """Skip the test when the gcloud emulators need a missing tool; fail under CI=true."""
    missing = find_missing_tools(components)
    if not missing:
        return
    reason = (
        f"missing {', '.join(missing)}: install google-cloud-cli, the emulator components "
        "and a Java runtime (see .ci/run)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and emulator tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _restore_environ() -> Iterator[None]:
    """Restore os.environ after each test, as functions-framework's tests do."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[str]:
    """Start the Firestore emulator once; yield its ``HOST:PORT``.

    Sets FIRESTORE_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT for the session.
    """
    require_tools("firestore")
    with FirestoreEmulator(TEST_PROJECT) as emulator, pytest.MonkeyPatch.context() as patch:
        patch.setenv("FIRESTORE_EMULATOR_HOST", emulator.host)
        patch.setenv("GOOGLE_CLOUD_PROJECT", TEST_PROJECT)
        yield emulator.host


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[str]:
    """Start the Pub/Sub emulator once; yield its ``HOST:PORT``.

    Sets PUBSUB_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT for the session.
    """
    require_tools("pubsub")
    with PubSubEmulator(TEST_PROJECT) as emulator, pytest.MonkeyPatch.context() as patch:
        patch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
        patch.setenv("GOOGLE_CLOUD_PROJECT", TEST_PROJECT)
        yield emulator.host


@pytest.fixture(scope="session")
def tasks_emulator() -> Iterator[TasksEmulator]:
    """Start the Cloud Tasks emulator once with queue ``crm-followups``; yield it.

    Sets CLOUD_TASKS_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT for the session.
    The emulator is a Python process, so it needs neither gcloud nor Java.
    """
    with TasksEmulator(TEST_PROJECT, TEST_LOCATION, [TEST_QUEUE]) as emulator, pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLOUD_TASKS_EMULATOR_HOST", emulator.host)
        patch.setenv("GOOGLE_CLOUD_PROJECT", TEST_PROJECT)
        yield emulator


@pytest.fixture
def clean_firestore(firestore_emulator: str) -> str:
    """Delete all emulator documents before the test; return the emulator host."""
    reset_firestore(firestore_emulator, TEST_PROJECT)
    return firestore_emulator


@pytest.fixture
def shared_dir() -> Path:
    """The ``shared`` folder next to the repository, or skip when it is absent."""
    path = Path(__file__).resolve().parents[1].parent / "shared"
    if not path.is_dir():
        pytest.skip(f"shared folder not found at {path}: it is laid next to the repository checkout")
    return path
