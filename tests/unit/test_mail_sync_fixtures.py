"""Recorded Gmail deliveries replayed through HttpMockSequence into the real GmailClient and the sync service."""

from __future__ import annotations

import base64
import json

import pytest

from lib.entrypoints.gmail import NotificationError, decode_notification
from tests.unit.mail_sync_support import MAILBOX, make_service, seed_prospect
from tests.unit.test_gmail_api import batch_response, json_response, load_fixture, make_client

DRAFT_ID = "197207b9d0e1c003"


def message(name: str) -> dict:
    return load_fixture(name)["response"]


def history_page(resources: list[dict], history_id: str = "200") -> dict:
    records = [{"id": str(index), "messagesAdded": [{"message": {
        "id": r["id"], "threadId": r["threadId"], "labelIds": r["labelIds"]}}]} for index, r in enumerate(resources)]
    return {"history": records, "historyId": history_id}


def batches_for(labels: list[list[str]]) -> int:
    own_sent = [("SENT" in item and "INBOX" not in item) for item in labels]
    return int(any(own_sent)) + int(not all(own_sent))


def replay_sync(store_setup, page: dict, resources: list[dict], start: int = 100, extra: list | None = None):
    """Run one notification whose history.list returns ``page`` and whose batches return ``resources``."""
    answers = {r["id"]: (200, r) for r in resources}
    seen: list = []
    fetched = [r["labelIds"] for r in resources if r["id"] != DRAFT_ID]
    responses = [json_response(200, page)] + [batch_response(answers, seen) for _ in range(batches_for(fetched))]
    client, http = make_client(responses + (extra or []))
    service, store, clock = make_service(client)
    store.put(f"mailboxes/{MAILBOX}", {"history_id": start})
    store_setup(store)
    report = service.handle_notification(MAILBOX, start + 1)
    return report, store, client, seen


def email_activities(store) -> dict:
    return {key: doc for key, doc in store.docs("activities").items() if doc.get("kind") == "email"}


def test_history_mixed_fixture():
    page = load_fixture("gmail_history_mixed.json")["response"]
    resources = [message("gmail_msg_metadata_reply.json"), message("gmail_msg_own_sent.json"),
                 message("gmail_msg_mailing_list.json")]

    report, store, client, seen = replay_sync(
        lambda store: seed_prospect(store, "ct-mei", "mei.lin@example.com", deal_id="dl-1"), page, resources,
        start=4418723)

    requested = [uri for batch in seen for _cid, _method, uri in batch]
    assert not any(DRAFT_ID in uri for uri in requested)
    assert sum("197207a1c3e0b001" in uri for uri in requested) == 1
    assert store.get(f"mailboxes/{MAILBOX}")["history_id"] == 4418760
    by_id = {doc["gmail_id"]: doc for doc in email_activities(store).values()}
    assert by_id["197207a1c3e0b001"]["counts_as_reply"] is True
    assert by_id["197207b5aa10c002"]["direction"] == "outbound"
    assert by_id["197207b5aa10c002"]["counts_as_reply"] is False
    assert "197207c0f2a3c004" not in by_id
    assert store.docs("leads") == {}
    assert store.get("contacts/ct-mei")["replies"] == 1
    assert client.usage.snapshot()["calls"] == {"history.list": 1, "messages.get": 3}


def test_cursor_waits_for_every_page():
    page = load_fixture("gmail_history_mixed.json")["response"]
    first = {"history": page["history"][:2], "nextPageToken": "p2", "historyId": "4418750"}
    failure = ({"status": "503", "content-type": "application/json"}, json.dumps({"error": {"code": 503}}))
    client, _http = make_client([json_response(200, first), failure])
    service, store, _clock = make_service(client)
    store.put(f"mailboxes/{MAILBOX}", {"history_id": 4418723})

    with pytest.raises(Exception, match="503"):
        service.handle_notification(MAILBOX, 4418760)

    assert store.get(f"mailboxes/{MAILBOX}")["history_id"] == 4418723
    assert email_activities(store) == {}


def test_history_404_fixture_full_sync():
    expired = load_fixture("gmail_history_404.json")
    reply = message("gmail_msg_metadata_reply.json")
    responses = [json_response(404, expired["response"]),
                 json_response(200, {"emailAddress": MAILBOX, "historyId": "4500000"}),
                 json_response(200, {"messages": [{"id": reply["id"], "threadId": reply["threadId"]}]}),
                 batch_response({reply["id"]: (200, reply)}, [])]
    client, _http = make_client(responses)
    service, store, _clock = make_service(client)
    store.put(f"mailboxes/{MAILBOX}", {"history_id": 3901122})
    seed_prospect(store, "ct-mei", "mei.lin@example.com", deal_id="dl-1")

    report = service.handle_notification(MAILBOX, 3901200)

    assert report.full_syncs == 1
    assert store.get(f"mailboxes/{MAILBOX}")["history_id"] == 4500000
    assert len(email_activities(store)) == 1


def test_history_empty_fixture_is_noop():
    page = load_fixture("gmail_history_empty.json")["response"]
    client, _http = make_client([json_response(200, page)])
    service, store, _clock = make_service(client)
    store.put(f"mailboxes/{MAILBOX}", {"history_id": 4418900})

    report = service.handle_notification(MAILBOX, 4418990)

    assert report.results == []
    assert store.get(f"mailboxes/{MAILBOX}")["history_id"] == 4418990


def test_labels_deletes_fixture_hides_spam_and_deletes_nothing():
    page = load_fixture("gmail_history_labels_deletes.json")["response"]
    sent = message("gmail_msg_own_sent.json")

    def setup(store):
        seed_prospect(store, "ct-mei", "mei.lin@example.com", deal_id="dl-1")
        from lib.services.mail_link import activity_id
        store.put(f"activities/{activity_id(MAILBOX, '197207c0f2a3c004')}", {"kind": "email", "spam": False})
        store.put(f"activities/{activity_id(MAILBOX, sent['id'])}", {"kind": "email", "direction": "outbound"})

    report, store, _client, _seen = replay_sync(setup, page, [], start=4418760)

    activities = email_activities(store)
    assert len(activities) == 2
    assert sum(bool(doc.get("hidden")) for doc in activities.values()) == 1
    assert store.get(f"mailboxes/{MAILBOX}")["history_id"] == 4418801
    assert store.docs("leads") == {}


def test_bounce_hard_fixture_marks_address_invalid():
    bounce = message("gmail_msg_bounce_hard.json")
    report, store, _client, _seen = replay_sync(
        lambda store: seed_prospect(store, "ct-ghost", "ghost.user@example.com"), history_page([bounce]), [bounce])

    contact = store.get("contacts/ct-ghost")
    assert contact["email_status"] == "invalid"
    assert contact["invalid_emails"] == ["ghost.user@example.com"]
    assert store.get("enrolments/en-ct-ghost")["status"] == "bounced"
    assert store.get("contact_keys/email:mailer-daemon@googlemail.com") is None
    assert store.docs("leads") == {}
    assert report.results[0].reply is False


def test_auto_reply_fixture_is_logged_not_a_reply():
    ooo = message("gmail_msg_auto_reply_ooo.json")
    report, store, _client, _seen = replay_sync(
        lambda store: seed_prospect(store, "ct-mei", "mei.lin@example.com", deal_id="dl-1"), history_page([ooo]), [ooo])

    assert report.results[0].status == "logged"
    assert report.results[0].kind == "auto_reply"
    assert report.results[0].reply is False
    assert store.get("enrolments/en-ct-mei")["status"] == "active"
    assert store.get("followups/fu-ct-mei")["status"] == "scheduled"
    assert store.get("deals/dl-1")["stage_id"] == "new"


def test_metadata_reply_fixture_counts_one_reply():
    reply = message("gmail_msg_metadata_reply.json")

    def setup(store):
        seed_prospect(store, "ct-mei", "mei.lin@example.com", deal_id="dl-1")
        store.put("contact_keys/email:daming.wang@example.com", {"contact_id": "ct-daming"})
        store.put("contacts/ct-daming", {"emails": ["daming.wang@example.com"]})

    report, store, _client, _seen = replay_sync(setup, history_page([reply, reply]), [reply])

    assert [r.reply for r in report.results] == [True]
    activity = next(iter(email_activities(store).values()))
    assert activity["contact_id"] == "ct-mei"
    assert activity["contact_ids"] == ["ct-daming", "ct-mei"]
    followup = store.get("followups/fu-ct-mei")
    assert followup["status"] == "cancelled"
    assert followup["version"] == 2
    assert store.get("enrolments/en-ct-mei")["status"] == "replied"
    assert store.get("deals/dl-1")["stage_id"] == "contacted"
    assert [e["kind"] for e in store.get("contacts/ct-mei")["engagement"]] == ["email_reply"]


def test_own_sent_fixture_is_outbound_without_lead():
    sent = message("gmail_msg_own_sent.json")
    report, store, _client, _seen = replay_sync(
        lambda store: seed_prospect(store, "ct-mei", "mei.lin@example.com"), history_page([sent]), [sent])

    assert report.results[0].status == "logged"
    assert email_activities(store)[report.results[0].activity_id]["direction"] == "outbound"
    assert store.get("contacts/ct-mei")["last_outbound_at"] is not None
    assert store.get("contact_keys/email:sales@example.com") is None
    assert store.docs("leads") == {}


def test_encoded_words_fixture_creates_one_lead():
    chinese = message("gmail_msg_encoded_words_chinese.json")
    report, store, _client, _seen = replay_sync(lambda store: None, history_page([chinese, chinese]), [chinese])

    leads = store.docs("leads")
    assert len(leads) == 1
    contact = store.get(f"contacts/{next(iter(leads.values()))['contact_id']}")
    assert contact["display_name"] == "陳怡君"
    assert contact["emails"] == ["yijun.chen+quotes@example.com", "yijun.chen@example.com"]
    assert len(store.docs("contacts")) == 1
    assert len(store.docs("activities")) == 1
    assert report.results[0].effects == ("lead_captured",)


def test_full_alternative_fixture_lead_without_signature():
    enquiry = message("gmail_msg_full_alternative.json")
    report, store, _client, _seen = replay_sync(lambda store: None, history_page([enquiry]), [enquiry])

    lead = next(iter(store.docs("leads").values()))
    assert lead["source_id"] == "email"
    assert lead["fields"]["name"] == "張雅婷"
    assert "Ya-Ting Chang" not in lead["fields"]["message"]
    assert "landing pages" in lead["fields"]["message"]


def test_mailing_list_fixture_creates_nothing():
    digest = message("gmail_msg_mailing_list.json")
    report, store, _client, _seen = replay_sync(lambda store: None, history_page([digest]), [digest])

    assert report.results[0].status == "ignored"
    assert store.docs("leads") == {}
    assert store.docs("activities") == {}


@pytest.mark.parametrize("name, history_id", [
    ("gmail_push_basic.json", 4418723),
    ("gmail_push_numeric_historyid.json", 4418790),
    ("gmail_push_redelivery_duplicate.json", 4418723),
    ("gmail_push_cloudevent_gen2.json", 4418723),
])
def test_push_fixtures_decode(name, history_id):
    notification = decode_notification(load_fixture(name)["body"])

    assert notification.email_address == MAILBOX
    assert notification.history_id == history_id


def test_malformed_push_fixture_raises_notification_error():
    with pytest.raises(NotificationError):
        decode_notification(load_fixture("gmail_push_malformed_data.json")["body"])


@pytest.mark.parametrize("envelope", [None, {}, {"message": {}}, {"message": {"data": "%%%"}},
                                      {"message": {"data": base64.b64encode(b'{"historyId": 5}').decode()}}])
def test_decode_rejects_bad_envelopes(envelope):
    with pytest.raises(NotificationError):
        decode_notification(envelope)
