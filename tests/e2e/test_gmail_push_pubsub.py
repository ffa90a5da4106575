"""Gmail push end to end: Pub/Sub emulator push subscription -> local router /gmail_push -> Firestore emulator.

The functions server reads Gmail through the replay adapter (recorded
responses in a temporary folder), so no network is used.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import yaml
from google.cloud import firestore, pubsub_v1

from lib.devstack.emulators import REPO_ROOT, FunctionsServer, reset_firestore
from tests.conftest import TEST_PROJECT

MAILBOX = "sales@example.com"
REPLY_ID = "197207a1c3e0b001"
TOPIC = "gmail-push-e2e"


def _recorded(status: int, response: dict) -> str:
    return json.dumps({"status": status, "response": response})


@pytest.fixture(scope="module")
def gmail_server(firestore_emulator: str, pubsub_emulator: str, tmp_path_factory) -> Iterator[str]:
    """Serve the router with a config that connects sales@example.com and a Gmail replay folder."""
    fixture = REPO_ROOT.parent / "shared" / "fixtures" / "inputs" / "gmail_msg_metadata_reply.json"
    if not fixture.is_file():
        pytest.skip(f"shared fixture not found at {fixture}; the shared folder is laid next to the checkout")
    work = tmp_path_factory.mktemp("gmail-e2e")
    replay = work / "replay"
    (replay / "messages").mkdir(parents=True)
    reply = json.loads(fixture.read_text(encoding="utf-8"))["response"]
    record = {"messagesAdded": [{"message": {"id": REPLY_ID, "threadId": reply["threadId"], "labelIds": ["INBOX"]}}]}
    # The same Gmail message appears in two history records.
    page = {"history": [{"id": "4418731", **record}, {"id": "4418752", **record}], "historyId": "4418760"}
    (replay / "history-4418723.json").write_text(_recorded(200, page))
    (replay / "history-4418760.json").write_text(_recorded(200, {"historyId": "4418760"}))
    (replay / "messages" / f"{REPLY_ID}.json").write_text(_recorded(200, reply))

    config = yaml.safe_load((REPO_ROOT / "config" / "crm.yaml").read_text(encoding="utf-8"))
    config["mail"]["mailboxes"] = [MAILBOX]
    config_path = work / "crm.yaml"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    env = {"FIRESTORE_EMULATOR_HOST": firestore_emulator, "GOOGLE_CLOUD_PROJECT": TEST_PROJECT,
           "CRM_CONFIG": str(config_path), "CRM_GMAIL_ADAPTER": f"replay:{replay}", "CRM_MAIL_ADAPTER": "file",
           "CRM_OUTBOX_DIR": str(work / "outbox")}
    with FunctionsServer(REPO_ROOT / "functions" / "main.py", "local_router", env, log_dir=work / "logs") as server:
        yield server.url


@pytest.fixture
def push_topic(gmail_server: str, pubsub_emulator: str, request) -> str:
    """Create a topic with a push subscription to the router's /gmail_push; return the topic path."""
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    suffix = request.node.name.replace("_", "-")[-20:]
    topic = publisher.topic_path(TEST_PROJECT, f"{TOPIC}-{suffix}")
    subscription = subscriber.subscription_path(TEST_PROJECT, f"{TOPIC}-sub-{suffix}")
    publisher.create_topic(name=topic)
    request.addfinalizer(lambda: publisher.delete_topic(topic=topic))
    request.addfinalizer(lambda: subscriber.delete_subscription(subscription=subscription))
    subscriber.create_subscription(name=subscription, topic=topic, ack_deadline_seconds=30,
                                   push_config=pubsub_v1.types.PushConfig(push_endpoint=f"{gmail_server}/gmail_push"))
    return topic


def _seed(client: firestore.Client) -> None:
    client.document(f"mailboxes/{MAILBOX}").set({"history_id": 4418723})
    client.document("contact_keys/email:mei.lin@example.com").set({"contact_id": "ct-mei"})
    client.document("contacts/ct-mei").set({"emails": ["mei.lin@example.com"], "open_deal_id": "dl-1"})
    client.document("deals/dl-1").set({"stage_id": "new", "status": "open", "threads": []})
    client.document("followups/fu-mei").set({"kind": "no_reply", "contact_id": "ct-mei", "status": "scheduled",
                                             "version": 1})


def _wait_for_cursor(client: firestore.Client, expected: int, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    doc: dict = {}
    while time.monotonic() < deadline:
        doc = client.document(f"mailboxes/{MAILBOX}").get().to_dict() or {}
        if doc.get("history_id") == expected and not doc.get("lease_owner"):
            return doc
        time.sleep(0.3)
    return doc


def _email_activities(client: firestore.Client) -> list[dict]:
    return [doc.to_dict() for doc in client.collection("activities").stream() if doc.to_dict().get("kind") == "email"]


def test_push_notification_processed_once(push_topic: str, firestore_emulator: str):
    reset_firestore(firestore_emulator, TEST_PROJECT)
    client = firestore.Client(project=TEST_PROJECT)
    _seed(client)
    publisher = pubsub_v1.PublisherClient()
    data = json.dumps({"emailAddress": MAILBOX, "historyId": "4418760"}).encode()

    # The same notification published twice, as an at-least-once redelivery would.
    publisher.publish(push_topic, data).result(timeout=10)
    publisher.publish(push_topic, data).result(timeout=10)
    mailbox = _wait_for_cursor(client, 4418760)
    time.sleep(1.0)

    assert mailbox.get("history_id") == 4418760
    activities = _email_activities(client)
    assert len(activities) == 1
    assert activities[0]["counts_as_reply"] is True
    assert client.document("followups/fu-mei").get().to_dict()["status"] == "cancelled"
    assert client.document("contacts/ct-mei").get().to_dict()["replies"] == 1


def test_malformed_push_is_acknowledged(gmail_server: str, firestore_emulator: str):
    import requests

    reset_firestore(firestore_emulator, TEST_PROJECT)
    envelope = {"message": {"data": "eyJlbWFpbEFkZHJlc3MiOiJ1bmtub3duIiwi", "messageId": "1"}, "subscription": "s"}

    response = requests.post(f"{gmail_server}/gmail_push", json=envelope, timeout=10)

    assert response.status_code == 200
    assert response.json()["status"] == "dropped"
    assert list(firestore.Client(project=TEST_PROJECT).collections()) == []
