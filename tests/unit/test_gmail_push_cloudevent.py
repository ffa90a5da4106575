"""The gmail_push CloudEvent function, served by functions-framework's own CloudEvent parsing."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import functions_framework
import pytest

from lib import bootstrap
from lib.errors import TransientError

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE = REPO_ROOT.parent / "shared" / "fixtures" / "inputs" / "gmail_push_cloudevent_gen2.json"


@dataclasses.dataclass
class _Report:
    status: str = "synced"
    cursor: int = 4418723
    rounds: int = 1

    def counts(self) -> dict:
        return {}


class _RecordingSync:
    def __init__(self, error: Exception | None = None):
        self.calls: list[tuple[str, int]] = []
        self.error = error

    def handle_notification(self, address: str, history_id: int) -> _Report:
        self.calls.append((address, history_id))
        if self.error is not None:
            raise self.error
        return _Report()


@dataclasses.dataclass
class _App:
    mail_sync: _RecordingSync
    project: str = "crm-test"


def _fixture() -> dict:
    if not FIXTURE.is_file():
        pytest.skip(f"fixture not found at {FIXTURE}: the shared folder is laid next to the repository")
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def _client(monkeypatch, sync: _RecordingSync):
    monkeypatch.setattr(bootstrap, "app", lambda: _App(sync))
    app = functions_framework.create_app(target="gmail_push", source=str(REPO_ROOT / "functions" / "main.py"),
                                         signature_type="cloudevent")
    return app.test_client()


def _post(client, fixture: dict):
    headers = {key: value for key, value in fixture["http"]["headers"].items() if key.lower() != "authorization"}
    return client.post("/", data=json.dumps(fixture["body"]), headers=headers)


def test_cloudevent_syncs_decoded_mailbox(monkeypatch):
    sync = _RecordingSync()
    response = _post(_client(monkeypatch, sync), _fixture())

    assert response.status_code == 200
    assert sync.calls == [("sales@example.com", 4418723)]


def test_cloudevent_transient_failure_is_retried(monkeypatch):
    sync = _RecordingSync(TransientError("Gmail unavailable"))
    response = _post(_client(monkeypatch, sync), _fixture())

    assert response.status_code == 500


def test_cloudevent_undecodable_data_acknowledged(monkeypatch):
    fixture = _fixture()
    fixture["body"]["message"]["data"] = "bm90IGpzb24="
    sync = _RecordingSync()
    response = _post(_client(monkeypatch, sync), fixture)

    assert response.status_code == 200
    assert sync.calls == []
