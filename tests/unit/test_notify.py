"""Chat and email notifications: recipients, cards, the webhook adapter's error mapping, the dispatcher."""

import datetime as dt
import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from lib.adapters.chat_webhook import FileChatNotifier, RecordingChatNotifier, WebhookChatNotifier
from lib.adapters.cloud_tasks import RecordingTaskScheduler
from lib.adapters.memory_store import MemoryStore, RecordingMailSender
from lib.config.loader import load_config
from lib.domain.clock import FixedClock
from lib.errors import PermanentDeliveryError, TransientError
from lib.services import notify
from lib.services.dispatch import Dispatcher, DispatchSettings

CONFIG = load_config()
NOW = dt.datetime(2026, 3, 9, 2, 0, tzinfo=dt.timezone.utc)
WEBHOOK = "https://chat.googleapis.com/v1/spaces/AAA/messages?key=k&token=t"


class FakeResponse:
    def __init__(self, status_code: int, text: str = "{}"):
        self.status_code = status_code
        self.text = text


class FakeSession:
    def __init__(self, outcome):
        self.outcome = outcome
        self.requests = []

    def post(self, url, json=None, timeout=None, headers=None):
        self.requests.append((url, json))
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return FakeResponse(self.outcome)


def test_config_member_recipient_has_team_manager():
    recipient = notify.resolve_recipient(CONFIG, "rep-wang", None)
    assert recipient.manager_id == "mgr-chen"
    assert recipient.email == "mei.wang@example-crm.tw"
    assert notify.resolve_recipient(CONFIG, "mgr-chen", None).manager_id is None


def test_imported_member_recipient_from_document():
    recipient = notify.resolve_recipient(CONFIG, "m-anna", {"name": "Anna", "manager_id": "m-boss", "locale": "en"})
    assert (recipient.name, recipient.manager_id, recipient.locale, recipient.email) == ("Anna", "m-boss", "en", None)
    assert notify.resolve_recipient(CONFIG, "m-nobody", None) is None


def test_channels_follow_preference_and_locale():
    recipient = notify.Recipient("m-1", "Amy", "amy@example.com", "en", "Asia/Taipei", ("email", "chat"), "CHAT_AMY", None)
    writes = notify.notification_writes(CONFIG, recipient, "k-1", "stale_digest", CONFIG.stale.digest,
                                        {"date": "2026-03-09", "count": 2, "deals": "- a"}, NOW)
    records = {write.path: write.data for write in writes}
    assert sorted(records) == ["outbox/ob-k-1-chat", "outbox/ob-k-1-email"]
    chat = records["outbox/ob-k-1-chat"]["chat"]
    assert chat["webhook_env"] == "CHAT_AMY"
    assert chat["message"]["cardsV2"][0]["card"]["header"]["title"] == "Stale deals digest (2026-03-09): 2"
    assert chat["message"]["thread"] == {"threadKey": "stale_digest-m-1"}
    assert all(write.mode == "create" for write in writes)


def test_chat_only_without_env_has_no_channel():
    recipient = notify.Recipient("m-1", "Amy", None, "en", "Asia/Taipei", ("chat",), None, None)
    assert notify.notification_writes(CONFIG, recipient, "k", "p", CONFIG.stale.digest, {}, NOW) == []


def test_webhook_adds_request_id_and_thread_option():
    session = FakeSession(200)
    WebhookChatNotifier(session).post(WEBHOOK, {"text": "hi", "thread": {"threadKey": "t-1"}}, "ob-k-1-chat")
    query = parse_qs(urlsplit(session.requests[0][0]).query)
    assert query["requestId"] == ["ob-k-1-chat"]
    assert query["messageReplyOption"] == ["REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"]
    assert query["key"] == ["k"]


@pytest.mark.parametrize("outcome, error", [
    (429, TransientError),
    (500, TransientError),
    (503, TransientError),
    (400, PermanentDeliveryError),
    (404, PermanentDeliveryError),
    (requests.ConnectionError("refused"), TransientError),
    (requests.Timeout("slow"), TransientError),
])
def test_webhook_error_mapping(outcome, error):
    with pytest.raises(error) as caught:
        WebhookChatNotifier(FakeSession(outcome)).post(WEBHOOK, {"text": "hi"}, "ob-1")
    assert "token=t" not in str(caught.value)


def test_file_chat_writes_once(tmp_path):
    notifier = FileChatNotifier(tmp_path)
    notifier.post("", {"text": "first"}, "ob-1-chat")
    notifier.post("", {"text": "second"}, "ob-1-chat")
    stored = json.loads((tmp_path / "ob-1-chat.json").read_text(encoding="utf-8"))
    assert stored["message"] == {"text": "first"}


def chat_record(store: MemoryStore, env: str = "CHAT_AMY") -> None:
    store.put("outbox/ob-k-chat", {"kind": "chat", "purpose": "stale_digest", "status": "pending", "attempts": 0,
                                   "not_before": NOW, "chat": {"webhook_env": env, "request_id": "ob-k-chat",
                                                               "message": {"text": "hi"}}})


def dispatcher(store, chat):
    return Dispatcher(store, RecordingMailSender(), RecordingTaskScheduler(), FixedClock(NOW),
                      DispatchSettings("http://127.0.0.1:1"), chat)


def test_dispatcher_retries_transient_chat(monkeypatch):
    monkeypatch.setenv("CHAT_AMY", WEBHOOK)
    store, chat = MemoryStore(), RecordingChatNotifier()
    chat.fail_with = TransientError("429")
    chat_record(store)

    assert dispatcher(store, chat).run_once()["retrying"] == 1
    assert store.get("outbox/ob-k-chat")["status"] == "pending"
    assert store.get("outbox/ob-k-chat")["not_before"] > NOW


def test_dispatcher_fails_without_webhook_env(monkeypatch):
    monkeypatch.delenv("CHAT_MISSING", raising=False)
    store, chat = MemoryStore(), RecordingChatNotifier()
    chat_record(store, "CHAT_MISSING")

    assert dispatcher(store, chat).run_once()["failed"] == 1
    assert "CHAT_MISSING" in store.get("outbox/ob-k-chat")["last_error"]
    assert chat.calls == 0


def test_dispatcher_posts_chat(monkeypatch):
    monkeypatch.setenv("CHAT_AMY", WEBHOOK)
    store, chat = MemoryStore(), RecordingChatNotifier()
    chat_record(store)

    assert dispatcher(store, chat).run_once()["sent:stale_digest"] == 1
    assert chat.posted["ob-k-chat"] == (WEBHOOK, {"text": "hi"})
    assert store.get("outbox/ob-k-chat")["provider_id"] == "chat:ob-k-chat"
