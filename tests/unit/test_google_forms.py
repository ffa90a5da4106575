"""Google Forms deliveries: form-bound, sheet-bound and Forms API shapes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from lib.config.loader import load_config
from lib.errors import InvalidInputError
from lib.intake.google_forms import parse_form_delivery

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
FIXTURES = SHARED / "fixtures" / "inputs"
UTC = dt.timezone.utc
RECEIVED_AT = dt.datetime(2025, 5, 30, 2, 14, 20, tzinfo=UTC)
CONFIG = load_config()
SOURCE = CONFIG.source("google_forms")
SYNONYMS = CONFIG.intake.field_synonyms


def _fixture(name: str) -> dict:
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"shared fixture {name} is not available in this checkout")
    return json.loads(path.read_text(encoding="utf-8"))


def _parse(payload: object):
    return parse_form_delivery(SOURCE, SYNONYMS, payload, received_at=RECEIVED_AT)


def test_item_responses_fields():
    submission = _parse(_fixture("forms_appsscript_form_itemresponses.json")["body"])
    assert submission.fields["name"] == "林美"
    assert submission.fields["products"] == ["Website redesign", "SEO, analytics", "Ads"]
    assert submission.fields["message"] == "Please call after 2pm 台北時間.\nThanks!"
    assert "budget" not in submission.fields
    assert submission.extra == {"Preferred contact time": "14:30"}


def test_item_responses_respondent_email_verified():
    submission = _parse(_fixture("forms_appsscript_form_itemresponses.json")["body"])
    assert submission.fields["email"] == "mei.lin@example.com"
    assert submission.respondent_email_verified is True


def test_item_responses_identity():
    submission = _parse(_fixture("forms_appsscript_form_itemresponses.json")["body"])
    assert submission.event_id == "2_ABaOnuf-EXAMPLE-RESPONSE-0001"
    assert submission.form_id == "1FAIpQLSexampleFormId0001"
    assert submission.submitted_at == dt.datetime(2025, 5, 30, 2, 14, 9, tzinfo=UTC)


def test_respondent_email_outranks_typed_email():
    body = dict(_fixture("forms_appsscript_form_itemresponses.json")["body"])
    body["items"] = [*body["items"], {"title": "電子郵件", "type": "TEXT", "response": "other@example.com"}]
    submission = _parse(body)
    assert submission.fields["email"] == "mei.lin@example.com"
    assert submission.extra["電子郵件"] == "other@example.com"


def test_typed_email_without_respondent_email_not_verified():
    body = dict(_fixture("forms_appsscript_form_itemresponses.json")["body"], respondentEmail="")
    body["items"] = [*body["items"], {"title": "電子郵件", "type": "TEXT", "response": "typed@example.com"}]
    submission = _parse(body)
    assert submission.fields["email"] == "typed@example.com"
    assert submission.respondent_email_verified is False


def test_edit_keeps_response_id_with_later_time():
    original = _fixture("forms_appsscript_form_itemresponses.json")["body"]
    edited = dict(original, timestamp="2025-05-30T02:20:00.000Z")
    assert _parse(edited).event_id == _parse(original).event_id
    assert _parse(edited).submitted_at > _parse(original).submitted_at


def test_item_responses_missing_response_id_rejected():
    body = dict(_fixture("forms_appsscript_form_itemresponses.json")["body"])
    del body["responseId"]
    with pytest.raises(InvalidInputError) as raised:
        _parse(body)
    assert raised.value.field == "responseId"


def test_named_values_fields():
    submission = _parse(_fixture("forms_appsscript_sheet_namedvalues.json")["body"])
    assert submission.fields["email"] == "Mei.Lin+Webinar@Example.com"
    assert submission.fields["name"] == "林美"
    assert submission.fields["company"] == "Example Trading Co."
    assert submission.fields["phone"] == "0912-345-678"
    assert "budget" not in submission.fields
    assert submission.extra == {"How did you hear about us?": "Other: 朋友介紹"}


def test_named_values_split_against_known_options():
    submission = _parse(_fixture("forms_appsscript_sheet_namedvalues.json")["body"])
    assert submission.fields["products"] == ["Website redesign", "SEO, analytics", "Ads"]


def test_named_values_timestamp_in_taipei():
    submission = _parse(_fixture("forms_appsscript_sheet_namedvalues.json")["body"])
    assert submission.submitted_at == dt.datetime(2025, 5, 30, 2, 14, 9, tzinfo=UTC)


def test_named_values_event_id_from_range():
    submission = _parse(_fixture("forms_appsscript_sheet_namedvalues.json")["body"])
    assert submission.event_id == "sheet:Form Responses 1:A14:H14"


def test_named_values_zh_tw_timestamp():
    body = dict(_fixture("forms_appsscript_sheet_namedvalues.json")["body"])
    body["namedValues"] = {**body["namedValues"], "Timestamp": ["2025/5/30 下午 2:14:09"]}
    assert _parse(body).submitted_at == dt.datetime(2025, 5, 30, 6, 14, 9, tzinfo=UTC)


def test_named_values_bad_timestamp_rejected():
    body = dict(_fixture("forms_appsscript_sheet_namedvalues.json")["body"])
    body["namedValues"] = {**body["namedValues"], "Timestamp": ["yesterday"]}
    with pytest.raises(InvalidInputError, match="Timestamp"):
        _parse(body)


def test_blank_trigger_is_empty():
    submission = _parse(_fixture("forms_appsscript_blank_duplicate.json")["body"])
    assert submission.is_empty()
    assert submission.event_id == "sheet:Form Responses 1:A15:H15"


def test_unknown_shape_rejected():
    with pytest.raises(InvalidInputError) as raised:
        _parse({"source": "zapier", "data": {}})
    assert raised.value.field == "source"


def test_non_object_body_rejected():
    with pytest.raises(InvalidInputError) as raised:
        _parse(["not", "an", "object"])
    assert raised.value.field == "body"


def _forms_api_response() -> dict:
    return {
        "formId": "1FAIpQLSexampleFormId0001",
        "responseId": "ACYDBNi-api-0001",
        "createTime": "2025-05-30T02:14:09.120Z",
        "lastSubmittedTime": "2025-05-30T02:18:40.500Z",
        "respondentEmail": "mei.lin@example.com",
        "answers": {
            "3f1a9c20": {"questionId": "3f1a9c20", "textAnswers": {"answers": [{"value": "林美"}]}},
            "6b7d2e11": {"questionId": "6b7d2e11", "textAnswers": {"answers": [{"value": "SEO, analytics"}, {"value": "品牌顧問"}]}},
            "0c9e4f77": {"questionId": "0c9e4f77", "textAnswers": {"answers": [{"value": "2025-06-16"}]}},
            "5a5a5a5a": {"questionId": "5a5a5a5a", "fileUploadAnswers": {"answers": [{"fileId": "1AbCdEf", "fileName": "brief.pdf", "mimeType": "application/pdf"}]}},
        },
    }


def test_forms_api_maps_titles_by_question_id():
    form = _fixture("forms_api_form_definition.json")["response"]
    submission = _parse({"source": "forms_api", "form": form, "response": _forms_api_response()})
    assert submission.fields["name"] == "林美"
    assert submission.fields["products"] == ["SEO, analytics", "品牌顧問"]
    assert submission.fields["email"] == "mei.lin@example.com"
    assert submission.respondent_email_verified is True


def test_forms_api_typed_respondent_email_not_verified():
    form = _fixture("forms_api_form_definition.json")["response"]
    form = {**form, "settings": {"emailCollectionType": "RESPONDER_INPUT"}}
    submission = _parse({"source": "forms_api", "form": form, "response": _forms_api_response()})
    assert submission.fields["email"] == "mei.lin@example.com"
    assert submission.respondent_email_verified is False


def test_forms_api_extra_and_files():
    form = _fixture("forms_api_form_definition.json")["response"]
    submission = _parse({"source": "forms_api", "form": form, "response": _forms_api_response()})
    assert submission.extra["Preferred start date"] == "2025-06-16"
    assert submission.extra["Upload a brief"] == ["https://drive.google.com/open?id=1AbCdEf"]


def test_forms_api_identity():
    form = _fixture("forms_api_form_definition.json")["response"]
    submission = _parse({"source": "forms_api", "form": form, "response": _forms_api_response()})
    assert submission.event_id == "ACYDBNi-api-0001"
    assert submission.submitted_at == dt.datetime(2025, 5, 30, 2, 18, 40, 500000, tzinfo=UTC)


def test_forms_api_field_map_by_question_id():
    form = _fixture("forms_api_form_definition.json")["response"]
    source = SOURCE.model_copy(update={"field_map": {"0c9e4f77": "message"}})
    payload = {"source": "forms_api", "form": form, "response": _forms_api_response()}
    submission = parse_form_delivery(source, SYNONYMS, payload, received_at=RECEIVED_AT)
    assert submission.fields["message"] == "2025-06-16"


def test_forms_api_missing_response_id_rejected():
    form = _fixture("forms_api_form_definition.json")["response"]
    response = _forms_api_response()
    del response["responseId"]
    with pytest.raises(InvalidInputError) as raised:
        _parse({"source": "forms_api", "form": form, "response": response})
    assert raised.value.field == "response.responseId"
