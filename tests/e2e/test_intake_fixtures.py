"""Every form and webhook fixture posted over HTTP to the running intake functions."""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
import requests

from lib.intake.signatures import sign_crm_hmac
from tests.e2e.conftest import count, fixture_path, source_secret


def load(shared: Path, name: str) -> dict:
    return json.loads(fixture_path(shared, name).read_text(encoding="utf-8"))


def raw_of(fixture: dict) -> bytes:
    if "raw_body" in fixture:
        return fixture["raw_body"].encode("utf-8")
    return json.dumps(fixture["body"], ensure_ascii=False).encode("utf-8")


def post_form(url: str, raw: bytes, timestamp: int | None = None) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    headers |= sign_crm_hmac(source_secret("google_forms"), raw, timestamp or int(time.time()))
    return requests.post(f"{url}/intake_form", data=raw, headers=headers, timeout=30)


def webflow_headers(raw: bytes, timestamp_ms: int) -> dict[str, str]:
    digest = hmac.new(source_secret("webflow"), f"{timestamp_ms}:".encode() + raw, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "x-webflow-timestamp": str(timestamp_ms),
            "x-webflow-signature": digest}


def lead_of(store, lead_id: str) -> dict:
    return store.document(f"leads/{lead_id}").get().to_dict()


def contact_of(store, contact_id: str) -> dict:
    return store.document(f"contacts/{contact_id}").get().to_dict()


def test_form_item_responses_create_lead(functions_url, store, shared_dir):
    fixture = load(shared_dir, "forms_appsscript_form_itemresponses.json")
    response = post_form(functions_url, raw_of(fixture))
    body = response.json()

    assert response.status_code == 200
    assert body["status"] == "created"
    lead = lead_of(store, body["lead_id"])
    assert lead["fields"]["products"] == ["Website redesign", "SEO, analytics", "Ads"]
    assert "budget" not in lead["fields"]
    contact = contact_of(store, body["contact_id"])
    assert contact["emails"] == ["mei.lin@example.com"]
    assert contact["display_name"] == "林美"
    assert count(store, "leads") == 1


def test_form_response_edit_updates_lead(functions_url, store, shared_dir):
    fixture = load(shared_dir, "forms_appsscript_form_itemresponses.json")
    first = post_form(functions_url, raw_of(fixture)).json()
    edited = dict(fixture["body"], timestamp="2025-05-30T02:20:00.000Z")
    edited["items"] = fixture["body"]["items"] + [{"title": "Phone", "type": "TEXT", "response": "0912-000-222"}]

    second = post_form(functions_url, json.dumps(edited, ensure_ascii=False).encode()).json()

    assert second["status"] == "updated"
    assert second["lead_id"] == first["lead_id"]
    assert lead_of(store, first["lead_id"])["phone"] == "+886912000222"
    assert count(store, "leads") == 1


def test_sheet_named_values_split_checkboxes(functions_url, store, shared_dir):
    fixture = load(shared_dir, "forms_appsscript_sheet_namedvalues.json")
    body = post_form(functions_url, raw_of(fixture)).json()

    lead = lead_of(store, body["lead_id"])
    assert lead["fields"]["products"] == ["Website redesign", "SEO, analytics", "Ads"]
    assert "budget" not in lead["fields"]
    assert lead["fields"]["email"] == "Mei.Lin+Webinar@Example.com"
    assert contact_of(store, body["contact_id"])["phones"] == ["+886912345678"]


def test_blank_form_trigger_creates_nothing(functions_url, store, shared_dir):
    fixture = load(shared_dir, "forms_appsscript_blank_duplicate.json")
    response = post_form(functions_url, raw_of(fixture))

    assert response.status_code == 200
    assert response.json()["status"] == "empty"
    assert count(store, "leads") == 0
    assert count(store, "outbox") == 0


def test_forms_api_shape_maps_question_ids(functions_url, store, shared_dir):
    form = load(shared_dir, "forms_api_form_definition.json")["response"]
    answer = {
        "3f1a9c20": {"questionId": "3f1a9c20", "textAnswers": {"answers": [{"value": "周杰"}]}},
        "6b7d2e11": {"questionId": "6b7d2e11", "textAnswers": {"answers": [{"value": "SEO, analytics"},
                                                                            {"value": "Ads"}]}},
    }
    response_resource = {"formId": form["formId"], "responseId": "ACYDBNj-forms-api-0001",
                         "createTime": "2025-05-30T02:00:00.000Z", "lastSubmittedTime": "2025-05-30T02:00:00.000Z",
                         "respondentEmail": "jay.chou@example.com", "answers": answer}
    raw = json.dumps({"source": "forms_api", "form": form, "response": response_resource}, ensure_ascii=False).encode()

    body = post_form(functions_url, raw).json()

    lead = lead_of(store, body["lead_id"])
    assert lead["fields"]["name"] == "周杰"
    assert lead["fields"]["products"] == ["SEO, analytics", "Ads"]
    assert contact_of(store, body["contact_id"])["emails"] == ["jay.chou@example.com"]


def test_webflow_placeholder_signature_rejected(functions_url, store, shared_dir):
    fixture = load(shared_dir, "webhook_webflow_form_submission.json")
    response = requests.post(f"{functions_url}/intake_webhook/webflow", data=raw_of(fixture),
                             headers=fixture["http"]["headers"], timeout=30)

    assert response.status_code == 401
    assert count(store, "leads") == 0
    assert count(store, "events") == 0


def test_webflow_expired_valid_signature_rejected(functions_url, store, shared_dir):
    fixture = load(shared_dir, "webhook_webflow_form_submission.json")
    headers = dict(fixture["http"]["headers"])
    headers["x-webflow-signature"] = fixture["_signature_test"]["valid_x_webflow_signature"]

    response = requests.post(f"{functions_url}/intake_webhook/webflow", data=raw_of(fixture), headers=headers,
                             timeout=30)

    assert response.status_code == 401
    assert "x-webflow-timestamp" in response.json()["message"].lower()


def test_webflow_signed_now_creates_lead(functions_url, store, shared_dir):
    fixture = load(shared_dir, "webhook_webflow_form_submission.json")
    raw = raw_of(fixture)
    response = requests.post(f"{functions_url}/intake_webhook/webflow", data=raw,
                             headers=webflow_headers(raw, int(time.time() * 1000)), timeout=30)
    body = response.json()

    assert response.status_code == 200
    assert body["status"] == "created"
    contact = contact_of(store, body["contact_id"])
    assert contact["phones"] == ["+886912345678"]
    assert contact["emails"] == ["yating.chang@example.com"]
    assert lead_of(store, body["lead_id"])["utm"] == {"utm_source": "linkedin"}


def test_gravityforms_same_person_merges(functions_url, store, shared_dir):
    webflow = load(shared_dir, "webhook_webflow_form_submission.json")
    raw = raw_of(webflow)
    first = requests.post(f"{functions_url}/intake_webhook/webflow", data=raw,
                          headers=webflow_headers(raw, int(time.time() * 1000)), timeout=30).json()
    gravity = load(shared_dir, "webhook_gravityforms_entry.json")

    second = requests.post(f"{functions_url}/intake_webhook/gravityforms", data=raw_of(gravity),
                           params={"key": source_secret("gravityforms").decode()},
                           headers={"Content-Type": "application/json"}, timeout=30).json()

    assert second["contact_id"] == first["contact_id"]
    assert second["status"] == "matched"
    assert count(store, "contacts") == 1
    assert count(store, "leads") == 1
    assert count(store, "activities") == 2


def test_gravityforms_without_key_rejected(functions_url, store, shared_dir):
    gravity = load(shared_dir, "webhook_gravityforms_entry.json")
    response = requests.post(f"{functions_url}/intake_webhook/gravityforms", data=raw_of(gravity),
                             headers={"Content-Type": "application/json"}, timeout=30)

    assert response.status_code == 401
    assert count(store, "leads") == 0


def test_cf7_urlencoded_creates_lead(functions_url, store, shared_dir):
    fixture = load(shared_dir, "webhook_cf7_urlencoded.json")
    response = requests.post(f"{functions_url}/intake_webhook/cf7", data=raw_of(fixture),
                             params={"key": source_secret("cf7").decode()},
                             headers=fixture["http"]["headers"], timeout=30)
    body = response.json()

    assert response.status_code == 200
    lead = lead_of(store, body["lead_id"])
    assert lead["fields"]["name"] == "黃志豪"
    assert lead["fields"]["email"] == "chihhao.huang@example.com"
    assert lead["fields"]["products"] == ["Website redesign", "SEO"]
    assert "utm_campaign" not in lead["fields"]
    assert not any(key.startswith("_wpcf7") for key in lead["extra"])


def test_typeform_placeholder_signature_rejected(functions_url, store, shared_dir):
    fixture = load(shared_dir, "webhook_typeform_form_response.json")
    response = requests.post(f"{functions_url}/intake_webhook/typeform", data=raw_of(fixture),
                             headers=fixture["http"]["headers"], timeout=30)

    assert response.status_code == 401
    assert count(store, "leads") == 0


def test_typeform_valid_signature_creates_lead(functions_url, store, shared_dir):
    fixture = load(shared_dir, "webhook_typeform_form_response.json")
    headers = dict(fixture["http"]["headers"])
    headers["Typeform-Signature"] = fixture["_signature_test"]["valid_Typeform_Signature"]

    body = requests.post(f"{functions_url}/intake_webhook/typeform", data=raw_of(fixture), headers=headers,
                         timeout=30).json()

    lead = lead_of(store, body["lead_id"])
    assert lead["fields"]["products"] == ["Website", "SEO"]
    assert "company_size" not in lead["fields"]
    assert lead["utm"] == {"utm_source": "newsletter"}
    assert contact_of(store, body["contact_id"])["phones"] == ["+886912000111"]


def test_double_click_pair_gives_one_lead(functions_url, store, shared_dir):
    fixture = load(shared_dir, "webhook_generic_duplicate_pair.json")
    replies = []
    for delivery in fixture["deliveries"]:
        raw = json.dumps(delivery["body"], ensure_ascii=False).encode()
        replies.append(requests.post(f"{functions_url}/intake_webhook/html", data=raw,
                                     headers=delivery["http"]["headers"], timeout=30).json())

    assert [reply["duplicate"] for reply in replies] == [False, True]
    assert count(store, "leads") == 1
    assert contact_of(store, replies[0]["contact_id"])["emails"] == ["chihhao.huang+ads@example.com"]


def test_ten_concurrent_deliveries_one_lead(functions_url, store, shared_dir):
    fixture = load(shared_dir, "webhook_typeform_form_response.json")
    headers = dict(fixture["http"]["headers"])
    headers["Typeform-Signature"] = fixture["_signature_test"]["valid_Typeform_Signature"]

    def post(_: int) -> requests.Response:
        return requests.post(f"{functions_url}/intake_webhook/typeform", data=raw_of(fixture), headers=headers,
                             timeout=120)

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(post, range(10)))

    assert [response.status_code for response in responses] == [200] * 10
    assert sum(not response.json()["duplicate"] for response in responses) == 1
    for collection in ("contacts", "leads", "deals", "tasks", "followups"):
        assert count(store, collection) == 1, collection
    assert count(store, "outbox") == 3


def test_same_delivery_three_times_one_of_each(functions_url, store, shared_dir):
    fixture = load(shared_dir, "forms_appsscript_form_itemresponses.json")
    replies = [post_form(functions_url, raw_of(fixture)).json() for _ in range(3)]

    assert [reply["duplicate"] for reply in replies] == [False, True, True]
    assert len({reply["lead_id"] for reply in replies}) == 1
    for collection in ("contacts", "leads", "tasks", "followups"):
        assert count(store, collection) == 1, collection
    assert count(store, "outbox") == 3


@pytest.mark.parametrize(
    ("method", "path", "headers", "data", "status"),
    [
        ("GET", "/intake_webhook/html", {}, b"", 405),
        ("POST", "/intake_webhook/nosuchsource", {"Content-Type": "application/json"}, b"{}", 404),
        ("POST", "/intake_webhook/html", {"Content-Type": "text/csv"}, b"a,b", 415),
        ("POST", "/intake_webhook/html", {"Content-Type": "application/json"}, b'{"email": ', 400),
        ("POST", "/intake_webhook/html", {"Content-Type": "application/json"}, b"x" * 300_000, 413),
        ("POST", "/intake_webhook/html", {"Content-Type": "application/json"},
         json.dumps([{"email": f"batch{i}@example.org"} for i in range(5)]).encode(), 400),
        ("POST", "/intake_webhook/html", {"Content-Type": "application/json"}, b"[" * 5000 + b"]" * 5000, 400),
    ],
)
def test_bad_requests_rejected_without_writes(functions_url, store, method, path, headers, data, status):
    response = requests.request(method, functions_url + path, headers=headers, data=data, timeout=30)

    assert response.status_code == status
    assert response.json()["message"]
    assert count(store, "events") == 0
    assert count(store, "leads") == 0


def test_missing_email_keeps_lead_by_phone(functions_url, store):
    raw = json.dumps({"name": "王大明", "phone": "02-2345-6789", "message": "請回電"}, ensure_ascii=False).encode()
    body = requests.post(f"{functions_url}/intake_webhook/html", data=raw,
                         headers={"Content-Type": "application/json"}, timeout=30).json()

    assert body["status"] == "created"
    assert contact_of(store, body["contact_id"])["phones"] == ["+886223456789"]
    purposes = sorted(doc.to_dict()["purpose"] for doc in store.collection("outbox").stream())
    assert purposes == ["assignment"]


def test_no_email_no_phone_is_incomplete(functions_url, store):
    raw = json.dumps({"name": "Anonymous visitor", "message": "price?"}).encode()
    body = requests.post(f"{functions_url}/intake_webhook/html", data=raw,
                         headers={"Content-Type": "application/json"}, timeout=30).json()

    assert body["status"] == "created"
    assert body["incomplete"] is True
    assert lead_of(store, body["lead_id"])["status"] == "incomplete"
