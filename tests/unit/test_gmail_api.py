"""Gmail adapter tests: recorded responses replayed through HttpMockSequence.

The real google-api-python-client builds every request from the bundled
discovery document, so the tests check the URLs, methods and bodies it sends.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import email
import email.parser
import email.policy
import json
import urllib.parse
from pathlib import Path

import google.auth
import google.auth.iam
import pytest
from googleapiclient.discovery import build
from googleapiclient.http import HttpMockSequence

from lib.adapters import gmail_api
from lib.adapters.gmail_api import (
    GMAIL_READONLY,
    GMAIL_SEND,
    GmailApiError,
    GmailClient,
    GmailSender,
    HistoryExpiredError,
    delegated_credentials,
)
from lib.errors import CrmError, PermanentDeliveryError, TransientError
from lib.ports import OutboundEmail

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
INPUTS = SHARED / "fixtures" / "inputs"
USER = "sales@example.com"
# The bundled discovery document sets batchPath "batch".
BATCH_URI = "https://gmail.googleapis.com/batch"
BOUNDARY = "batch_x"


# ---------------------------------------------------------------- helpers


def load_fixture(name: str) -> dict:
    path = INPUTS / name
    if not path.exists():
        pytest.skip(f"shared fixture {name} not found under {INPUTS}; the shared fixtures folder is absent")
    return json.loads(path.read_text(encoding="utf-8"))


def json_response(status: int, body: object) -> tuple[dict, str]:
    return {"status": str(status), "content-type": "application/json; charset=UTF-8"}, json.dumps(body)


def fixture_response(name: str) -> tuple[dict, str]:
    fixture = load_fixture(name)
    return json_response(fixture["status"], fixture["response"])


def error_body(status: int, reason: str, message: str = "error") -> dict:
    return {"error": {"code": status, "message": message, "errors": [{"reason": reason, "message": message}]}}


class RecordingHttp(HttpMockSequence):
    """HttpMockSequence whose response body may be a callable of the request.

    The base class keeps ``request_sequence`` as ``(uri, method, body, headers)``.
    """

    def request(self, uri, method="GET", body=None, headers=None, redirections=1, connection_type=None):
        resp, content = self._iterable[0]
        if callable(content):
            self._iterable[0] = (resp, content(uri, method, body, headers))
        return super().request(uri, method, body, headers, redirections, connection_type)


def make_client(responses: list, **kwargs) -> tuple[GmailClient, RecordingHttp]:
    http = RecordingHttp(list(responses))
    service = build("gmail", "v1", http=http, cache_discovery=False, static_discovery=True)
    built_for: list[str] = []

    def factory(user: str):
        built_for.append(user)
        return service

    client = GmailClient(factory, **kwargs)
    client.built_for = built_for
    return client, http


def query_of(uri: str) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)


def path_of(uri: str) -> str:
    return urllib.parse.urlsplit(uri).path


def split_batch_request(body: str, headers: dict) -> list[tuple[str, str, str]]:
    """Return ``(content_id, method, uri)`` for each part of a batch request body."""
    text = f"content-type: {headers['content-type']}\r\n\r\n{body}"
    message = email.parser.Parser().parsestr(text)
    parts = []
    for part in message.get_payload():
        request_line = part.get_payload().split("\n", 1)[0].strip()
        method, uri, _version = request_line.split(" ")
        parts.append((part["Content-ID"], method, uri))
    return parts


def batch_responder(answers: dict[str, tuple[int, object]], seen: list):
    """Build a multipart/mixed batch response for each request part.

    ``answers`` maps a message id to ``(status, json body)``; an id not in it
    gets a minimal 200 message resource. Each response part carries
    ``Content-ID: <response-{base} + {id}>``, the form googleapiclient
    expects for the request part ``<{base} + {id}>``.
    """

    def respond(uri, method, body, headers):
        parts = split_batch_request(body, headers)
        seen.append(parts)
        chunks = []
        for content_id, _method, part_uri in parts:
            message_id = urllib.parse.unquote(path_of(part_uri).rsplit("/", 1)[1])
            status, payload = answers.get(message_id, (200, {"id": message_id, "threadId": message_id}))
            reason = {200: "OK", 404: "Not Found"}.get(status, "Error")
            chunks.append(
                f"--{BOUNDARY}\r\n"
                "Content-Type: application/http\r\n"
                f"Content-ID: <response-{content_id[1:-1]}>\r\n"
                "\r\n"
                f"HTTP/1.1 {status} {reason}\r\n"
                "Content-Type: application/json; charset=UTF-8\r\n"
                "\r\n"
                f"{json.dumps(payload, ensure_ascii=False)}\r\n"
            )
        return "".join(chunks) + f"--{BOUNDARY}--\r\n"

    return respond


def batch_response(answers: dict[str, tuple[int, object]], seen: list) -> tuple[dict, object]:
    headers = {"status": "200", "content-type": f"multipart/mixed; boundary={BOUNDARY}"}
    return headers, batch_responder(answers, seen)


def outbound(**changes) -> OutboundEmail:
    fields = dict(
        outbox_id="ob-7f3a2c",
        sender=USER,
        sender_name="業務部 王小明",
        to=("\"Lin, Mei\" <mei.lin@example.com>",),
        subject="網站改版提案",
        text_body="林小姐您好，附上提案。\n",
        message_id="<outbound-7f3a2c@crm.example.com>",
        thread_id="1971f2c08a5d3e10",
    )
    fields.update(changes)
    return OutboundEmail(**fields)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)


# ---------------------------------------------------------------- history.list


def test_history_follows_pages_to_final_history_id():
    fixture = load_fixture("gmail_history_mixed.json")
    records = fixture["response"]["history"]
    first_page = {"history": records[:3], "nextPageToken": "page-2", "historyId": "4418750"}
    second_page = {"history": records[3:], "historyId": fixture["response"]["historyId"]}
    client, http = make_client([json_response(200, first_page), json_response(200, second_page)])

    result = client.list_history(USER, 4418723)

    assert result.history_id == 4418760
    assert result.pages == 2
    assert [record["id"] for record in result.records] == ["4418731", "4418740", "4418744", "4418749", "4418752"]
    (first_uri, first_method, *_), (second_uri, second_method, *_) = http.request_sequence
    assert first_method == "GET"
    assert second_method == "GET"
    assert path_of(first_uri) == "/gmail/v1/users/me/history"
    assert query_of(first_uri)["startHistoryId"] == ["4418723"]
    assert "pageToken" not in query_of(first_uri)
    assert query_of(second_uri)["startHistoryId"] == ["4418723"]
    assert query_of(second_uri)["pageToken"] == ["page-2"]
    assert query_of(first_uri)["historyTypes"] == ["messageAdded", "labelAdded", "labelRemoved", "messageDeleted"]
    assert client.usage.snapshot() == {"http_requests": 2, "calls": {"history.list": 2}, "quota_units": 4}


def test_history_mixed_fixture_matches_recorded_call():
    fixture = load_fixture("gmail_history_mixed.json")
    client, http = make_client([fixture_response("gmail_history_mixed.json")])

    result = client.list_history(USER, 4418723)

    method, recorded_path = fixture["api_call"].split(" ", 1)
    recorded = urllib.parse.urlsplit("https://gmail.googleapis.com/" + recorded_path)
    uri, sent_method, _body, _headers = http.request_sequence[0]
    assert sent_method == method
    assert path_of(uri) == recorded.path
    assert query_of(uri)["startHistoryId"] == urllib.parse.parse_qs(recorded.query)["startHistoryId"]
    assert len(result.records) == 5
    assert result.history_id == 4418760
    # The adapter returns records as Gmail sent them; deduplication of the
    # repeated message belongs to the caller.
    added_ids = [r["messagesAdded"][0]["message"]["id"] for r in result.records]
    assert added_ids.count("197207a1c3e0b001") == 2


def test_history_failure_on_later_page_returns_nothing():
    first_page = {"history": [{"id": "1"}], "nextPageToken": "page-2", "historyId": "4418750"}
    client, _http = make_client([json_response(200, first_page), json_response(503, error_body(503, "backendError"))])

    with pytest.raises(TransientError):
        client.list_history(USER, 4418723)


def test_history_labels_and_deletes_fixture():
    client, _http = make_client([fixture_response("gmail_history_labels_deletes.json")])

    result = client.list_history(USER, 4418760)

    assert result.history_id == 4418801
    assert [record["id"] for record in result.records] == ["4418771", "4418778", "4418790", "4418795"]
    assert result.records[0]["labelsAdded"][0]["labelIds"] == ["SPAM"]
    assert result.records[2]["messagesDeleted"][0]["message"]["id"] == "197207d4e5f6c005"


def test_history_without_history_key_is_empty():
    client, _http = make_client([fixture_response("gmail_history_empty.json")])

    result = client.list_history(USER, 4418990)

    assert result.records == []
    assert result.history_id == 4418990
    assert result.pages == 1


def test_history_404_raises_history_expired():
    client, http = make_client([fixture_response("gmail_history_404.json")])

    with pytest.raises(HistoryExpiredError) as info:
        client.list_history(USER, 3901122)

    assert info.value.start_history_id == 3901122
    assert isinstance(info.value, CrmError)
    assert not isinstance(info.value, TransientError)
    assert query_of(http.request_sequence[0][0])["startHistoryId"] == ["3901122"]


@pytest.mark.parametrize(
    ("status", "reason"),
    [(429, "rateLimitExceeded"), (500, "backendError"), (503, "backendError"), (403, "userRateLimitExceeded")],
)
def test_history_retryable_statuses_raise_transient(status, reason):
    client, _http = make_client([json_response(status, error_body(status, reason))])

    with pytest.raises(TransientError):
        client.list_history(USER, 4418723)


def test_history_forbidden_raises_gmail_api_error():
    client, _http = make_client([json_response(403, error_body(403, "forbidden", "Delegation denied"))])

    with pytest.raises(GmailApiError) as info:
        client.list_history(USER, 4418723)

    assert info.value.status == 403
    assert info.value.reason == "forbidden"


def test_history_repeated_page_token_stops():
    page = {"history": [], "nextPageToken": "same", "historyId": "10"}
    client, _http = make_client([json_response(200, page), json_response(200, page)])

    with pytest.raises(GmailApiError, match="returned pageToken 'same' twice"):
        client.list_history(USER, 1)


# ---------------------------------------------------------------- messages.get batch

MESSAGE_FIXTURES = [
    "gmail_msg_metadata_reply.json",
    "gmail_msg_full_alternative.json",
    "gmail_msg_full_nested_mixed.json",
    "gmail_msg_encoded_words_chinese.json",
    "gmail_msg_auto_reply_ooo.json",
    "gmail_msg_bounce_hard.json",
    "gmail_msg_mailing_list.json",
    "gmail_msg_own_sent.json",
]
DELETED_ID = "197207d4e5f6c005"


def test_get_messages_fixture_batch():
    fixtures = [load_fixture(name) for name in MESSAGE_FIXTURES]
    answers = {f["response"]["id"]: (f["status"], f["response"]) for f in fixtures}
    answers[DELETED_ID] = (404, error_body(404, "notFound", "Requested entity was not found."))
    ids = [f["response"]["id"] for f in fixtures]
    requested = [ids[0], DELETED_ID, *ids[1:], ids[0]]
    seen: list = []
    client, http = make_client([batch_response(answers, seen)])

    result = client.get_messages(USER, requested, fmt="full")

    assert list(result) == [ids[0], DELETED_ID, *ids[1:]]
    assert result[DELETED_ID] is None
    for fixture in fixtures:
        assert result[fixture["response"]["id"]] == fixture["response"]
    chinese = result["197209c2d3e4c009"]
    assert chinese["snippet"].endswith("陳怡君")
    uri, method, _body, _headers = http.request_sequence[0]
    assert (uri, method) == (BATCH_URI, "POST")
    parts = seen[0]
    assert len(parts) == len(ids) + 1
    for _content_id, part_method, part_uri in parts:
        assert part_method == "GET"
        assert query_of(part_uri)["format"] == ["full"]
    assert [path_of(u).rsplit("/", 1)[1] for _c, _m, u in parts] == [ids[0], DELETED_ID, *ids[1:]]


def test_get_messages_sends_metadata_headers():
    seen: list = []
    client, _http = make_client([batch_response({}, seen)])

    client.get_messages(USER, ["a1"], metadata_headers=["From", "Message-ID"])

    _content_id, _method, part_uri = seen[0][0]
    assert query_of(part_uri)["format"] == ["metadata"]
    assert query_of(part_uri)["metadataHeaders"] == ["From", "Message-ID"]


def test_get_messages_splits_150_ids_into_two_batches():
    ids = [f"m{n:04d}" for n in range(150)]
    seen: list = []
    client, http = make_client([batch_response({}, seen), batch_response({}, seen)])

    result = client.get_messages(USER, ids)

    assert list(result) == ids
    assert [len(parts) for parts in seen] == [100, 50]
    assert [request[0] for request in http.request_sequence] == [BATCH_URI, BATCH_URI]
    assert client.usage.snapshot() == {"http_requests": 2, "calls": {"messages.get": 150}, "quota_units": 750}


def test_get_messages_item_error_raises_transient_after_batch():
    answers = {"bad": (500, error_body(500, "backendError"))}
    seen: list = []
    client, _http = make_client([batch_response(answers, seen)])

    with pytest.raises(TransientError, match="1 of 3"):
        client.get_messages(USER, ["ok1", "bad", "ok2"])

    assert len(seen[0]) == 3


def test_get_messages_rejects_unknown_format():
    client, http = make_client([])

    with pytest.raises(CrmError):
        client.get_messages(USER, ["a"], fmt="minimal")

    assert http.request_sequence == []


def test_get_messages_malformed_batch_raises_transient():
    headers = {"status": "200", "content-type": "text/plain"}
    client, _http = make_client([(headers, "not multipart")])

    with pytest.raises(TransientError, match="invalid batch response"):
        client.get_messages(USER, ["a"])


def test_get_messages_batch_failure_raises_transient():
    client, _http = make_client([json_response(503, error_body(503, "backendError"))])

    with pytest.raises(TransientError):
        client.get_messages(USER, ["a"])


def test_client_rejects_batch_size_over_gmail_limit():
    with pytest.raises(CrmError):
        GmailClient(lambda user: None, batch_size=101)


# ---------------------------------------------------------------- other calls


def test_send_raw_posts_raw_and_thread():
    client, http = make_client([json_response(200, {"id": "19720b00aa", "threadId": "t1", "labelIds": ["SENT"]})])

    message_id = client.send_raw(USER, "UmF3", thread_id="t1")

    uri, method, body, _headers = http.request_sequence[0]
    assert message_id == "19720b00aa"
    assert method == "POST"
    assert path_of(uri) == "/gmail/v1/users/me/messages/send"
    assert json.loads(body) == {"raw": "UmF3", "threadId": "t1"}
    assert client.usage.quota_units == 100


def test_find_by_rfc822_id_searches_spam_and_trash():
    client, http = make_client([json_response(200, {"messages": [{"id": "abc", "threadId": "t"}], "resultSizeEstimate": 1})])

    found = client.find_by_rfc822_id(USER, "<outbound-7f3a2c@crm.example.com>")

    query = query_of(http.request_sequence[0][0])
    assert found == "abc"
    assert query["q"] == ["rfc822msgid:outbound-7f3a2c@crm.example.com"]
    assert query["includeSpamTrash"] == ["true"]


def test_find_by_rfc822_id_not_found():
    client, _http = make_client([json_response(200, {"resultSizeEstimate": 0})])

    assert client.find_by_rfc822_id(USER, "<x@crm.example.com>") is None


def test_watch_returns_int_history_and_aware_expiration():
    client, http = make_client([json_response(200, {"historyId": "4418723", "expiration": "1749168000000"})])

    history_id, expiration = client.watch(USER, "projects/crm-demo/topics/gmail")

    uri, method, body, _headers = http.request_sequence[0]
    assert history_id == 4418723
    assert expiration == dt.datetime(2025, 6, 6, 0, 0, tzinfo=dt.timezone.utc)
    assert (path_of(uri), method) == ("/gmail/v1/users/me/watch", "POST")
    assert json.loads(body) == {
        "topicName": "projects/crm-demo/topics/gmail",
        "labelIds": ["INBOX", "SENT"],
        "labelFilterBehavior": "include",
    }


def test_stop_posts_stop():
    client, http = make_client([({"status": "204"}, "")])

    client.stop(USER)

    uri, method, _body, _headers = http.request_sequence[0]
    assert (path_of(uri), method) == ("/gmail/v1/users/me/stop", "POST")
    assert client.usage.quota_units == 50


def test_get_profile_returns_resource():
    profile = {"emailAddress": USER, "messagesTotal": 120, "threadsTotal": 80, "historyId": "4418990"}
    client, http = make_client([json_response(200, profile)])

    assert client.get_profile(USER) == profile
    assert path_of(http.request_sequence[0][0]) == "/gmail/v1/users/me/profile"


def test_list_message_ids_stops_at_max_results():
    first = {"messages": [{"id": "a"}, {"id": "b"}], "nextPageToken": "p2"}
    second = {"messages": [{"id": "c"}], "nextPageToken": "p3"}
    client, http = make_client([json_response(200, first), json_response(200, second)])

    ids = client.list_message_ids(USER, "newer_than:7d", max_results=3)

    assert ids == ["a", "b", "c"]
    assert len(http.request_sequence) == 2
    first_query, second_query = (query_of(request[0]) for request in http.request_sequence)
    assert first_query["maxResults"] == ["3"]
    assert first_query["q"] == ["newer_than:7d"]
    assert second_query["maxResults"] == ["1"]
    assert second_query["pageToken"] == ["p2"]


def test_list_message_ids_empty_result():
    client, _http = make_client([json_response(200, {"resultSizeEstimate": 0})])

    assert client.list_message_ids(USER, "newer_than:1d", max_results=10) == []


def test_client_builds_service_once_per_user():
    client, _http = make_client([json_response(200, {"resultSizeEstimate": 0})] * 2)

    client.list_message_ids(USER, "a", max_results=1)
    client.list_message_ids(USER, "b", max_results=1)

    assert client.built_for == [USER]


# ---------------------------------------------------------------- GmailSender


def test_sender_returns_existing_message_without_sending():
    client, http = make_client([json_response(200, {"messages": [{"id": "earlier", "threadId": "t"}]})])

    assert GmailSender(client).send(outbound()) == "earlier"
    assert len(http.request_sequence) == 1


def test_sender_sends_mime_when_not_found():
    client, http = make_client(
        [json_response(200, {"resultSizeEstimate": 0}), json_response(200, {"id": "new-id", "threadId": "1971f2c08a5d3e10"})]
    )

    assert GmailSender(client).send(outbound()) == "new-id"

    uri, method, body, _headers = http.request_sequence[1]
    assert (path_of(uri), method) == ("/gmail/v1/users/me/messages/send", "POST")
    sent = json.loads(body)
    assert sent["threadId"] == "1971f2c08a5d3e10"
    parsed = email.message_from_bytes(base64.urlsafe_b64decode(sent["raw"]), policy=email.policy.default)
    assert parsed["Message-ID"] == "<outbound-7f3a2c@crm.example.com>"
    assert str(parsed["Subject"]) == "網站改版提案"
    assert parsed["From"].addresses[0].display_name == "業務部 王小明"
    assert client.usage.snapshot()["quota_units"] == 105


def test_sender_maps_400_to_permanent_delivery_error():
    client, _http = make_client(
        [
            json_response(200, {"resultSizeEstimate": 0}),
            json_response(400, error_body(400, "invalidArgument", "Invalid To header")),
        ]
    )

    with pytest.raises(PermanentDeliveryError, match="Invalid To header"):
        GmailSender(client).send(outbound())


@pytest.mark.parametrize("status", [429, 500, 503])
def test_sender_maps_retryable_send_errors_to_transient(status):
    client, _http = make_client(
        [json_response(200, {"resultSizeEstimate": 0}), json_response(status, error_body(status, "backendError"))]
    )

    with pytest.raises(TransientError):
        GmailSender(client).send(outbound())


def test_sender_rejects_invalid_record_before_sending():
    client, http = make_client([])

    with pytest.raises(PermanentDeliveryError, match="to\\[0\\]"):
        GmailSender(client).send(outbound(to=("not-an-address",)))

    assert http.request_sequence == []


# ---------------------------------------------------------------- credentials


def write_service_account_key(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    info = {
        "type": "service_account",
        "project_id": "crm-demo",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "crm-sync@crm-demo.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path.write_text(json.dumps(info), encoding="utf-8")


def test_delegated_credentials_from_key_file(tmp_path, monkeypatch):
    key_file = tmp_path / "key.json"
    write_service_account_key(key_file)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))

    credentials = delegated_credentials(USER, [GMAIL_SEND, GMAIL_READONLY])

    assert credentials.service_account_email == "crm-sync@crm-demo.iam.gserviceaccount.com"
    assert credentials._subject == USER
    assert credentials.scopes == [GMAIL_SEND, GMAIL_READONLY]


class FakeRuntimeCredentials:
    """Compute Engine style credentials that learn their email on refresh."""

    def __init__(self):
        self.service_account_email = "default"
        self.refreshed = 0

    def refresh(self, request):
        self.refreshed += 1
        self.service_account_email = "crm-runtime@crm-demo.iam.gserviceaccount.com"


def test_delegated_credentials_keyless_uses_iam_signer(monkeypatch):
    runtime = FakeRuntimeCredentials()
    monkeypatch.setattr(google.auth, "default", lambda scopes=None: (runtime, "crm-demo"))

    credentials = delegated_credentials(USER, [GMAIL_READONLY])

    assert runtime.refreshed == 1
    assert isinstance(credentials.signer, google.auth.iam.Signer)
    assert credentials.service_account_email == "crm-runtime@crm-demo.iam.gserviceaccount.com"
    assert credentials._subject == USER
    assert credentials._token_uri == gmail_api.TOKEN_URI


def test_delegated_credentials_keyless_with_explicit_account(monkeypatch):
    runtime = FakeRuntimeCredentials()
    monkeypatch.setattr(google.auth, "default", lambda scopes=None: (runtime, "crm-demo"))

    credentials = delegated_credentials(USER, [GMAIL_READONLY], service_account_email="dwd@crm-demo.iam.gserviceaccount.com")

    assert runtime.refreshed == 0
    assert credentials.service_account_email == "dwd@crm-demo.iam.gserviceaccount.com"


def test_redact_address_keeps_domain_only():
    assert gmail_api.redact_address("sales@example.com") == "s***@example.com"


def test_usage_snapshot_is_a_copy():
    client, _http = make_client([json_response(200, {"emailAddress": USER, "historyId": "1"})])
    client.get_profile(USER)
    snapshot = copy.deepcopy(client.usage.snapshot())

    client.usage.reset()

    assert snapshot == {"http_requests": 1, "calls": {"getProfile": 1}, "quota_units": 1}
    assert client.usage.snapshot() == {"http_requests": 0, "calls": {}, "quota_units": 0}
