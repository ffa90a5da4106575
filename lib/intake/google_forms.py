"""Google Forms deliveries: the form-bound and sheet-bound Apps Script shapes and the Forms API shape."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping, Sequence

from lib.config.schema import Source
from lib.errors import InvalidInputError
from lib.intake.fields import SubmissionBuilder, parse_timestamp
from lib.intake.types import Submission
from lib.intake.vendor_common import require_list, require_object

FORM_SUBMIT = "form_onFormSubmit"
SHEET_SUBMIT = "sheet_onFormSubmit"
FORMS_API = "forms_api"
SHAPES = (FORM_SUBMIT, SHEET_SUBMIT, FORMS_API)

# NOTE: the sheet-bound shape carries no zone, and neither the source nor this
# function receives the organisation's zone, so a payload without "timeZone" is
# read in Asia/Taipei, the zone of the sample configuration.
DEFAULT_SHEET_TIME_ZONE = "Asia/Taipei"
SHEET_TIMESTAMP_TITLE = "Timestamp"
# Spreadsheet timestamp formats by locale: en-US ("5/30/2025 10:14:09"),
# zh-TW ("2025/5/30 上午 10:14:09" after the 上午/下午 marker is rewritten) and ISO.
_SHEET_TIMESTAMP_FORMATS = ("%m/%d/%Y %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %p %I:%M:%S", "%Y-%m-%d %H:%M:%S")
_ZH_TW_DAY_PERIODS = {"上午": "AM", "下午": "PM"}
_DRIVE_FILE_URL = "https://drive.google.com/open?id={file_id}"


def parse_form_delivery(
    source: Source,
    synonyms: Mapping[str, Sequence[str]],
    payload: object,
    *,
    received_at: dt.datetime,
) -> Submission:
    """Parse one Google Form response in any of the three delivery shapes.

    Args:
        source: The configured Google Forms source.
        synonyms: ``Intake.field_synonyms`` from the configuration.
        payload: The decoded JSON body: ``{"source": "form_onFormSubmit", ...}``
            from the form-bound script, ``{"source": "sheet_onFormSubmit", ...}``
            from a sheet-bound script, or ``{"source": "forms_api", "form", "response"}``.
            Without ``source``, the shape is recognised by its keys.
        received_at: When the request arrived; unused when the shape carries a time.

    Returns:
        The submission. When every answer is blank (a spurious trigger), its
        ``is_empty()`` is True.

    Raises:
        InvalidInputError: the body matches none of the shapes (field ``"source"``)
            or lacks a required key such as ``responseId``.
    """
    body = require_object(payload, "body")
    shape = body.get("source") or _guess_shape(body)
    if shape == FORM_SUBMIT:
        return _parse_item_responses(source, synonyms, body)
    if shape == SHEET_SUBMIT:
        return _parse_named_values(source, synonyms, body)
    if shape == FORMS_API:
        return _parse_forms_api(source, synonyms, body)
    raise InvalidInputError("source", f"one of {', '.join(repr(name) for name in SHAPES)}", shape)


def _guess_shape(body: Mapping[str, object]) -> str | None:
    if "items" in body and "responseId" in body:
        return FORM_SUBMIT
    if "namedValues" in body:
        return SHEET_SUBMIT
    if "form" in body and "response" in body:
        return FORMS_API
    return None


def _require_text(body: Mapping[str, object], key: str, field: str | None = None) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(field or key, "a non-empty string", value)
    return value.strip()


def _parse_item_responses(
    source: Source, synonyms: Mapping[str, Sequence[str]], body: Mapping[str, object]
) -> Submission:
    """Parse the form-bound shape that ``apps_script/Code.gs`` sends."""
    response_id = _require_text(body, "responseId")
    submitted_at = parse_timestamp(_require_text(body, "timestamp"), field="timestamp")
    items = require_list(body.get("items"), "items")

    builder = SubmissionBuilder(source, synonyms)
    respondent_email = body.get("respondentEmail")
    builder.add_canonical("email", respondent_email)
    for index, item in enumerate(items):
        item = require_object(item, f"items[{index}]")
        title = str(item.get("title") or f"Question {index + 1}")
        builder.add(title, _item_value(item), label=title)
    return builder.build(
        event_id=response_id,
        submitted_at=submitted_at,
        form_id=body.get("formId"),
        respondent_email_verified="email" in builder.fields and bool(respondent_email),
    )


def _item_value(item: Mapping[str, object]) -> object:
    """Return an item response; each grid row (a list of cells) becomes one string, cells joined by ', '."""
    response = item.get("response")
    if isinstance(response, list) and any(isinstance(row, list) for row in response):
        return [", ".join(str(cell) for cell in row) if isinstance(row, list) else row for row in response]
    return response


def _parse_named_values(
    source: Source, synonyms: Mapping[str, Sequence[str]], body: Mapping[str, object]
) -> Submission:
    """Parse the sheet-bound shape: ``namedValues`` maps each column title to a list of strings."""
    sheet_name = _require_text(body, "sheetName")
    range_a1 = _require_text(body, "rangeA1")
    named_values = require_object(body.get("namedValues"), "namedValues")
    zone = _time_zone(body.get("timeZone"))

    builder = SubmissionBuilder(source, synonyms)
    submitted_at = None
    for title, values in named_values.items():
        answers = [value for value in (values if isinstance(values, list) else [values]) if str(value).strip()]
        if title == SHEET_TIMESTAMP_TITLE:
            submitted_at = _parse_sheet_timestamp(answers[0], zone) if answers else None
            continue
        builder.add(title, answers[0] if len(answers) == 1 else answers, label=title)
    return builder.build(event_id=f"sheet:{sheet_name}:{range_a1}", submitted_at=submitted_at)


def _time_zone(name: object) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(str(name or DEFAULT_SHEET_TIME_ZONE))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInputError("timeZone", "an IANA time zone such as 'Asia/Taipei'", name) from exc


def _parse_sheet_timestamp(text: str, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """Parse a spreadsheet timestamp, written in the spreadsheet's zone, into UTC."""
    cleaned = " ".join(text.split())
    for marker, period in _ZH_TW_DAY_PERIODS.items():
        cleaned = cleaned.replace(marker, period)
    for pattern in _SHEET_TIMESTAMP_FORMATS:
        try:
            local = dt.datetime.strptime(cleaned, pattern)
        except ValueError:
            continue
        return local.replace(tzinfo=zone).astimezone(dt.timezone.utc)
    raise InvalidInputError(f"namedValues.{SHEET_TIMESTAMP_TITLE}", "a date such as '5/30/2025 10:14:09'", text)


def _parse_forms_api(source: Source, synonyms: Mapping[str, Sequence[str]], body: Mapping[str, object]) -> Submission:
    """Parse a Forms API ``responses`` resource against its ``forms.get`` definition.

    Answers are keyed by ``questionId``: the source's ``field_map`` may name a
    question id, and the question's title is the label for synonyms and ``extra``.
    """
    form = require_object(body.get("form"), "form")
    response = require_object(body.get("response"), "response")
    response_id = _require_text(response, "responseId", "response.responseId")
    questions = _questions_by_id(form)
    answers = require_object(response.get("answers") or {}, "response.answers")

    builder = SubmissionBuilder(source, synonyms)
    respondent_email = response.get("respondentEmail")
    builder.add_canonical("email", respondent_email)
    for question_id, answer in answers.items():
        title, is_checkbox = questions.get(question_id, (question_id, False))
        answer = require_object(answer, f"response.answers.{question_id}")
        _add_api_answer(builder, question_id, title, is_checkbox, answer)

    # Forms verifies the address unless the form lets people type it (RESPONDER_INPUT).
    settings = form.get("settings") if isinstance(form.get("settings"), Mapping) else {}
    verified = bool(respondent_email) and settings.get("emailCollectionType", "VERIFIED") == "VERIFIED"
    submitted = response.get("lastSubmittedTime") or response.get("createTime")
    return builder.build(
        event_id=response_id,
        submitted_at=parse_timestamp(submitted, field="response.lastSubmittedTime"),
        form_id=response.get("formId") or form.get("formId"),
        respondent_email_verified=verified,
    )


def _questions_by_id(form: Mapping[str, object]) -> dict[str, tuple[str, bool]]:
    """Map each questionId to its title and whether it is a checkbox question."""
    questions: dict[str, tuple[str, bool]] = {}
    for item in require_list(form.get("items"), "form.items"):
        if not isinstance(item, Mapping):
            continue
        title = str(item.get("title") or "")
        question = (item.get("questionItem") or {}).get("question") or {}
        if question.get("questionId"):
            choice = question.get("choiceQuestion") or {}
            questions[str(question["questionId"])] = (title, choice.get("type") == "CHECKBOX")
        for row in (item.get("questionGroupItem") or {}).get("questions") or []:
            row_title = (row.get("rowQuestion") or {}).get("title", "")
            questions[str(row.get("questionId"))] = (f"{title} [{row_title}]", False)
    return questions


def _add_api_answer(
    builder: SubmissionBuilder, question_id: str, title: str, is_checkbox: bool, answer: Mapping[str, object]
) -> None:
    # An "isOther" option lets the person type any text, so answers are not checked against the options.
    text_answers = (answer.get("textAnswers") or {}).get("answers") or []
    values = [entry.get("value") for entry in text_answers if isinstance(entry, Mapping)]
    if values:
        builder.add(question_id, values if is_checkbox or len(values) > 1 else values[0], label=title)
    files = (answer.get("fileUploadAnswers") or {}).get("answers") or []
    file_ids = [entry.get("fileId") for entry in files if isinstance(entry, Mapping)]
    urls = [_DRIVE_FILE_URL.format(file_id=file_id) for file_id in file_ids if file_id]
    if urls:
        builder.add_extra(title, urls)
