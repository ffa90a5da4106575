"""Body decoding and vendor webhook parsing, on the shared fixtures and on realistic payloads."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from pathlib import Path

import pytest

from lib.config.loader import load_config
from lib.errors import InvalidInputError, UnsupportedMediaTypeError
from lib.intake.body import decode_body
from lib.intake.fields import FieldMapper, split_checkbox_answer
from lib.intake.vendors import parse_webhook

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
FIXTURES = SHARED / "fixtures" / "inputs"
UTC = dt.timezone.utc
RECEIVED_AT = dt.datetime(2025, 5, 30, 3, 40, tzinfo=UTC)
ALL_TYPES = frozenset({"application/json", "application/x-www-form-urlencoded", "multipart/form-data"})
CONFIG = load_config()
SYNONYMS = CONFIG.intake.field_synonyms


def _fixture(name: str) -> dict:
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"shared fixture {name} is not available in this checkout")
    return json.loads(path.read_text(encoding="utf-8"))


def _parse(source_id: str, payload: object, received_at: dt.datetime = RECEIVED_AT):
    return parse_webhook(CONFIG.source(source_id), SYNONYMS, payload, received_at=received_at)


def _parse_raw(source_id: str, content_type: str, raw_body: bytes):
    return _parse(source_id, decode_body(content_type, raw_body, allowed=ALL_TYPES))


def _multipart(boundary: str, fields: list[tuple[str, str]]) -> bytes:
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n' for name, value in fields]
    return ("".join(parts) + f"--{boundary}--\r\n").encode("utf-8")


# Body decoding.


def test_decode_rejects_unsupported_content_type():
    with pytest.raises(UnsupportedMediaTypeError, match="'text/xml'.*accepts application/json"):
        decode_body("text/xml", b"<a/>", allowed=ALL_TYPES)


def test_decode_rejects_type_outside_allowed():
    with pytest.raises(UnsupportedMediaTypeError):
        decode_body("multipart/form-data; boundary=x", b"", allowed=frozenset({"application/json"}))


def test_decode_malformed_json_names_body():
    with pytest.raises(InvalidInputError) as raised:
        decode_body("application/json", b'{"email": ', allowed=ALL_TYPES)
    assert raised.value.field == "body"
    assert raised.value.expected == "valid JSON"


def test_decode_accepts_json_labelled_octet_stream():
    assert decode_body("application/octet-stream", b'{"a": 1}', allowed=ALL_TYPES) == {"a": 1}


def test_decode_accepts_vendor_json_suffix():
    assert decode_body("application/vnd.example+json; charset=utf-8", b"[1]", allowed=ALL_TYPES) == [1]


def test_decode_urlencoded_keeps_repeats_and_order():
    fixture = _fixture("webhook_cf7_urlencoded.json")
    pairs = decode_body(fixture["http"]["headers"]["Content-Type"], fixture["raw_body"].encode(), allowed=ALL_TYPES)
    assert pairs == [tuple(pair) for pair in fixture["_decoded_pairs"]]


def test_decode_urlencoded_invalid_utf8_rejected():
    with pytest.raises(InvalidInputError, match="invalid body"):
        decode_body("application/x-www-form-urlencoded", b"name=%FF%FE", allowed=ALL_TYPES)


def test_decode_multipart_records_file_name():
    body = (
        b'--b1\r\nContent-Disposition: form-data; name="name"\r\n\r\n\xe6\x9e\x97\xe7\xbe\x8e\r\n'
        b'--b1\r\nContent-Disposition: form-data; name="brief"; filename="brief.pdf"\r\n'
        b"Content-Type: application/pdf\r\n\r\n%PDF-1.7\x00\xff\r\n--b1--\r\n"
    )
    assert decode_body("multipart/form-data; boundary=b1", body, allowed=ALL_TYPES) == [("name", "林美"), ("brief", "brief.pdf")]


def test_decode_multipart_without_boundary_rejected():
    with pytest.raises(InvalidInputError, match="boundary"):
        decode_body("multipart/form-data", b"--x--", allowed=ALL_TYPES)


# Field mapping.


def test_mapper_matches_bilingual_title():
    assert FieldMapper({}, SYNONYMS).canonical_for("姓名 Full name") == "name"


def test_mapper_prefers_head_noun():
    assert FieldMapper({}, SYNONYMS).canonical_for("Company phone") == "phone"


def test_mapper_keeps_single_chinese_character_whole():
    assert FieldMapper({}, SYNONYMS).canonical_for("公司名稱") == "company"


def test_mapper_matches_chinese_inside_label():
    assert FieldMapper({}, SYNONYMS).canonical_for("您的聯絡電話（必填）") == "phone"


def test_checkbox_split_keeps_option_with_comma():
    options = ("Website redesign", "SEO, analytics", "Ads")
    assert split_checkbox_answer("Website redesign, SEO, analytics, Ads", options) == ["Website redesign", "SEO, analytics", "Ads"]


def test_checkbox_split_keeps_other_text_whole():
    options = ("Website redesign", "Ads")
    assert split_checkbox_answer("Ads, booth design, printing", options) == ["Ads", "booth design, printing"]


# Shared fixtures.


def test_webflow_fixture_fields():
    (submission,) = _parse("webflow", _fixture("webhook_webflow_form_submission.json")["body"])
    assert submission.fields["first_name"] == "Ya-Ting"
    assert submission.fields["last_name"] == "張"
    assert submission.fields["email"] == "YaTing.Chang@Example.com"
    assert submission.fields["phone"] == "886912345678"
    assert submission.fields["utm_source"] == "linkedin"
    assert submission.extra == {}


def test_webflow_fixture_identity():
    (submission,) = _parse("webflow", _fixture("webhook_webflow_form_submission.json")["body"])
    assert submission.event_id == "6838a1f8c0ffee0000000001"
    assert submission.form_id == "65428ea1c0ffee0000000002"
    assert submission.submitted_at == dt.datetime(2025, 5, 30, 3, 1, 44, 318000, tzinfo=UTC)


def test_webflow_other_trigger_gives_nothing():
    assert _parse("webflow", {"triggerType": "site_publish", "payload": {}}) == []


def test_cf7_fixture_fields():
    fixture = _fixture("webhook_cf7_urlencoded.json")
    (submission,) = _parse_raw("cf7", fixture["http"]["headers"]["Content-Type"], fixture["raw_body"].encode())
    assert submission.fields["name"] == "黃志豪"
    assert submission.fields["email"] == "chihhao.huang@example.com"
    assert submission.fields["subject"] == "詢價 & 合作"
    assert submission.fields["products"] == ["Website redesign", "SEO"]
    assert submission.fields["message"] == "Hello,\r\nNeed a quote — 50% off? 😊"
    assert "utm_campaign" not in submission.fields
    assert not any(key.startswith("_wpcf7") for key in submission.extra)
    assert submission.form_id == "1234"


def test_gravityforms_fixture_fields():
    (submission,) = _parse("gravityforms", _fixture("webhook_gravityforms_entry.json")["body"])
    assert submission.fields["first_name"] == "雅婷"
    assert submission.fields["last_name"] == "張"
    assert submission.fields["email"] == "yating.chang@example.com"
    assert submission.fields["products"] == ["Website redesign", "SEO"]
    assert submission.fields["utm_source"] == "google"
    assert submission.fields["utm_medium"] == "cpc"
    assert submission.extra["7"] == ["https://www.example.com/wp-content/uploads/gravity_forms/4-abc/2025/05/brief.pdf"]
    assert "6" not in submission.extra


def test_gravityforms_fixture_identity():
    (submission,) = _parse("gravityforms", _fixture("webhook_gravityforms_entry.json")["body"])
    assert submission.event_id == "4:8812"
    assert submission.submitted_at == dt.datetime(2025, 5, 30, 3, 5, 17, tzinfo=UTC)


def test_typeform_fixture_fields():
    (submission,) = _parse("typeform", _fixture("webhook_typeform_form_response.json")["body"])
    assert submission.fields["first_name"] == "怡君"
    assert submission.fields["email"] == "yijun.chen@example.com"
    assert submission.fields["products"] == ["Website", "SEO"]
    assert submission.fields["phone"] == "+886912000111"
    assert submission.fields["consent"] == "yes"
    assert submission.fields["utm_source"] == "newsletter"
    assert "company_size" not in submission.fields
    assert "crm_contact_id" not in submission.extra


def test_typeform_fixture_identity():
    (submission,) = _parse("typeform", _fixture("webhook_typeform_form_response.json")["body"])
    assert submission.event_id == "01JWH3EXAMPLEEVENT0001"
    assert submission.form_id == "lT4Z3jEX"
    assert submission.submitted_at == dt.datetime(2025, 5, 30, 3, 12, 40, tzinfo=UTC)


def test_duplicate_pair_parses_identically():
    deliveries = _fixture("webhook_generic_duplicate_pair.json")["deliveries"]
    first, second = (_parse("html", delivery["body"]) for delivery in deliveries)
    assert first == second
    assert first[0].event_id is None


def test_duplicate_pair_fields():
    (submission,) = _parse("html", _fixture("webhook_generic_duplicate_pair.json")["deliveries"][0]["body"])
    assert submission.fields["name"] == "黃 志豪"
    assert submission.fields["email"] == "ChihHao.Huang+ads@Example.COM"
    assert submission.fields["referrer"] == "https://www.google.com/"
    assert submission.fields["page_url"] == "https://www.example.com/zh-tw/lp?gclid=EAIaIQ-example"
    assert submission.extra["gclid"] == "EAIaIQ-example"
    assert submission.form_id == "landing-zh-tw"


# Realistic payloads per vendor.

TALLY_BODY = {
    "eventId": "a4cb511e-d513-4fa5-baee-b815d718dfd1",
    "eventType": "FORM_RESPONSE",
    "createdAt": "2026-03-02T02:15:21.889Z",
    "data": {
        "responseId": "2wgx4n",
        "submissionId": "2wgx4n",
        "respondentId": "dwQKYm",
        "formId": "VwbNEw",
        "formName": "Demo request 預約展示",
        "createdAt": "2026-03-02T02:15:21.000Z",
        "fields": [
            {"key": "question_mVGEg3", "label": "姓名", "type": "INPUT_TEXT", "value": " 周佳穎 "},
            {"key": "question_nPxLd8", "label": "電子郵件 Email", "type": "INPUT_EMAIL", "value": "chiaying.chou@example-tea.com.tw"},
            {"key": "question_3EaKpo", "label": "公司", "type": "INPUT_TEXT", "value": "範例茶業"},
            {
                "key": "question_wMPbZq",
                "label": "感興趣的服務",
                "type": "CHECKBOXES",
                "value": ["opt-2", "opt-3"],
                "options": [{"id": "opt-1", "text": "網站改版"}, {"id": "opt-2", "text": "SEO"}, {"id": "opt-3", "text": "廣告投放"}],
            },
            {"key": "question_wMPbZq_opt-2", "label": "感興趣的服務 (SEO)", "type": "CHECKBOX", "value": True},
            {
                "key": "question_9XqLm2",
                "label": "公司規模",
                "type": "MULTIPLE_CHOICE",
                "value": ["size-3"],
                "options": [{"id": "size-1", "text": "1-10"}, {"id": "size-3", "text": "51-200"}],
            },
            {"key": "question_Qp4Rt1", "label": "Phone", "type": "INPUT_PHONE_NUMBER", "value": None},
            {"key": "question_utm", "label": "utm_source", "type": "HIDDEN_FIELDS", "value": "facebook"},
        ],
    },
}


def test_tally_maps_labels_and_options():
    (submission,) = _parse("tally", TALLY_BODY)
    assert submission.fields["name"] == "周佳穎"
    assert submission.fields["email"] == "chiaying.chou@example-tea.com.tw"
    assert submission.fields["company"] == "範例茶業"
    assert submission.fields["products"] == ["SEO", "廣告投放"]
    assert submission.fields["company_size"] == "51-200"
    assert submission.fields["utm_source"] == "facebook"
    assert "phone" not in submission.fields
    assert submission.extra == {}


def test_tally_identity():
    (submission,) = _parse("tally", TALLY_BODY)
    assert submission.event_id == "a4cb511e-d513-4fa5-baee-b815d718dfd1"
    assert submission.form_id == "VwbNEw"
    assert submission.submitted_at == dt.datetime(2026, 3, 2, 2, 15, 21, tzinfo=UTC)


JOTFORM_RAW_REQUEST = {
    "slug": "submit/241234567890123",
    "q3_name": {"first": "Daniel", "last": "Hsu"},
    "q4_email": "daniel.hsu@example.net",
    "q5_phoneNumber": {"area": "02", "phone": "2555 0199"},
    "q6_company": "Example Robotics Ltd.",
    "q7_services": ["Website redesign", "Ads"],
    "q8_howDid": "Trade show",
    "q9_utm_campaign": "spring-expo",
    "event_id": "1740881234567_241234567890123_abc",
    "timeToSubmit": "41",
}


def _jotform_fields(raw_request: dict) -> list[tuple[str, str]]:
    return [
        ("action", ""),
        ("formID", "241234567890123"),
        ("submissionID", "5912345678901234567"),
        ("formTitle", "Contact Sales"),
        ("pretty", "Name:Daniel Hsu, E-mail:daniel.hsu@example.net, Phone Number:(02) 2555 0199"),
        ("rawRequest", json.dumps(raw_request, ensure_ascii=False)),
        ("type", "WEB"),
    ]


def test_jotform_multipart_prefers_raw_request():
    body = _multipart("------WebKitFormBoundaryJf1", _jotform_fields(JOTFORM_RAW_REQUEST))
    (submission,) = _parse_raw("jotform", "multipart/form-data; boundary=------WebKitFormBoundaryJf1", body)
    assert submission.fields["first_name"] == "Daniel"
    assert submission.fields["last_name"] == "Hsu"
    assert submission.fields["email"] == "daniel.hsu@example.net"
    assert submission.fields["phone"] == "02 2555 0199"
    assert submission.fields["company"] == "Example Robotics Ltd."
    assert submission.fields["products"] == ["Website redesign", "Ads"]
    assert submission.fields["utm_campaign"] == "spring-expo"
    assert submission.extra == {"howDid": "Trade show"}


def test_jotform_identity():
    body = urllib.parse.urlencode(_jotform_fields(JOTFORM_RAW_REQUEST)).encode()
    (submission,) = _parse_raw("jotform", "application/x-www-form-urlencoded", body)
    assert submission.event_id == "5912345678901234567"
    assert submission.form_id == "241234567890123"


def test_jotform_full_phone_answer():
    raw_request = {**JOTFORM_RAW_REQUEST, "q5_phoneNumber": {"full": "(02) 2555-0199"}}
    (submission,) = _parse("jotform", _jotform_fields(raw_request))
    assert submission.fields["phone"] == "(02) 2555-0199"


def test_jotform_pretty_used_without_raw_request():
    fields = [pair for pair in _jotform_fields(JOTFORM_RAW_REQUEST) if pair[0] != "rawRequest"]
    (submission,) = _parse("jotform", fields)
    assert submission.fields["name"] == "Daniel Hsu"
    assert submission.fields["email"] == "daniel.hsu@example.net"
    assert submission.fields["phone"] == "(02) 2555 0199"


def test_jotform_invalid_raw_request_names_field():
    fields = [("submissionID", "1"), ("rawRequest", "{not json")]
    with pytest.raises(InvalidInputError) as raised:
        _parse("jotform", fields)
    assert raised.value.field == "rawRequest"


ELEMENTOR_ADVANCED = [
    ("form[id]", "a1b2c3d"),
    ("form[name]", "聯絡表單"),
    ("fields[name][id]", "name"),
    ("fields[name][type]", "text"),
    ("fields[name][title]", "姓名"),
    ("fields[name][value]", "吳冠廷"),
    ("fields[email][id]", "email"),
    ("fields[email][type]", "email"),
    ("fields[email][title]", "電子郵件"),
    ("fields[email][value]", "kuanting.wu@example.org"),
    ("fields[field_3f2a][id]", "field_3f2a"),
    ("fields[field_3f2a][type]", "checkbox"),
    ("fields[field_3f2a][title]", "服務"),
    ("fields[field_3f2a][value]", "SEO, 廣告投放"),
    ("fields[field_9c1d][id]", "field_9c1d"),
    ("fields[field_9c1d][type]", "textarea"),
    ("fields[field_9c1d][title]", "預計上線時間"),
    ("fields[field_9c1d][value]", "六月底前"),
    ("meta[date][title]", "Date"),
    ("meta[date][value]", "2026 年 3 月 2 日"),
    ("meta[page_url][title]", "Page URL"),
    ("meta[page_url][value]", "https://www.example.org/contact/?utm_source=line&utm_medium=social"),
    ("meta[remote_ip][title]", "Remote IP"),
    ("meta[remote_ip][value]", "203.0.113.9"),
]


def test_elementor_advanced_shape():
    (submission,) = _parse_raw("elementor", "application/x-www-form-urlencoded", urllib.parse.urlencode(ELEMENTOR_ADVANCED).encode())
    assert submission.fields["name"] == "吳冠廷"
    assert submission.fields["email"] == "kuanting.wu@example.org"
    assert submission.fields["products"] == ["SEO", "廣告投放"]
    assert submission.fields["utm_source"] == "line"
    assert submission.extra == {"預計上線時間": "六月底前"}
    assert submission.form_id == "a1b2c3d"


def test_elementor_simple_shape():
    pairs = [("Name", "Grace Lee"), ("Email", "grace.lee@example.com"), ("Message", "Need a quote"), ("Date", "March 2, 2026"), ("Remote IP", "203.0.113.9"), ("Page URL", "https://www.example.com/")]
    (submission,) = _parse_raw("elementor", "application/x-www-form-urlencoded", urllib.parse.urlencode(pairs).encode())
    assert submission.fields == {"name": "Grace Lee", "email": "grace.lee@example.com", "message": "Need a quote", "page_url": "https://www.example.com/"}
    assert submission.extra == {}


HUBSPOT_BATCH = [
    {
        "vid": 3501,
        "properties": {
            "email": {"value": "olivia.tsai@example.com", "versions": []},
            "firstname": {"value": "Olivia"},
            "lastname": {"value": "Tsai"},
            "company": {"value": "Example Logistics"},
            "jobtitle": {"value": "Head of Marketing"},
            "hs_analytics_source": {"value": "ORGANIC_SEARCH"},
            "services": {"value": "SEO;Ads"},
        },
        "form-submissions": [{"conversion-id": "c0a1-1111", "timestamp": 1772417700000, "form-id": "f-77", "page-url": "https://www.example.com/pricing?utm_source=google"}],
    },
    {"eventId": 88112, "email": "ken.lo@example.net", "firstname": "Ken", "lastname": "Lo", "phone": "+886 2 5550 0188", "occurredAt": 1772417760000},
]


def test_hubspot_batch_gives_one_submission_each():
    assert len(_parse("hubspot", HUBSPOT_BATCH)) == 2


def test_hubspot_contact_properties_shape():
    first, _ = _parse("hubspot", HUBSPOT_BATCH)
    assert first.fields["email"] == "olivia.tsai@example.com"
    assert first.fields["title"] == "Head of Marketing"
    assert first.fields["products"] == ["SEO", "Ads"]
    assert first.fields["utm_source"] == "google"
    assert "hs_analytics_source" not in first.extra
    assert first.event_id == "c0a1-1111"
    assert first.form_id == "f-77"
    assert first.submitted_at == dt.datetime(2026, 3, 2, 2, 15, tzinfo=UTC)


def test_hubspot_flat_property_map():
    _, second = _parse("hubspot", HUBSPOT_BATCH)
    assert second.fields == {"email": "ken.lo@example.net", "first_name": "Ken", "last_name": "Lo", "phone": "+886 2 5550 0188"}
    assert second.event_id == "88112"


def test_hubspot_batch_item_must_be_object():
    with pytest.raises(InvalidInputError) as raised:
        _parse("hubspot", [HUBSPOT_BATCH[1], "oops"])
    assert raised.value.field == "body[1]"


def test_html_multipart_with_chinese_labels():
    fields = [("姓名", "許文彥"), ("電話", "0912-000-333"), ("公司", "範例建設"), ("留言", "請來電"), ("page", "https://www.example-tea.com.tw/?utm_campaign=tea-expo&fbclid=IwAR0x")]
    body = _multipart("formboundary7", fields)
    (submission,) = _parse_raw("html", "multipart/form-data; boundary=formboundary7", body)
    assert submission.fields["name"] == "許文彥"
    assert submission.fields["phone"] == "0912-000-333"
    assert submission.fields["company"] == "範例建設"
    assert submission.fields["message"] == "請來電"
    assert submission.fields["utm_campaign"] == "tea-expo"
    assert submission.extra["fbclid"] == "IwAR0x"
    assert "email" not in submission.fields


def test_html_json_array_gives_several_submissions():
    batch = [{"email": "a@example.com", "submission_id": "s1"}, {"email": "b@example.com", "submission_id": "s2"}]
    assert [submission.event_id for submission in _parse("html", batch)] == ["s1", "s2"]


def test_html_without_time_uses_received_at():
    (submission,) = _parse("html", {"email": "a@example.com"})
    assert submission.submitted_at == RECEIVED_AT


def test_html_empty_values_are_missing():
    (submission,) = _parse("html", [("name", " "), ("services[]", ""), ("email", "")])
    assert submission.is_empty()


def test_json_vendor_rejects_form_body():
    with pytest.raises(InvalidInputError) as raised:
        _parse("typeform", [("a", "b")])
    assert raised.value.field == "body"
