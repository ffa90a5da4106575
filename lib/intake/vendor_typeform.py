"""Typeform ``form_response`` webhooks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from lib.config.schema import Source
from lib.intake.fields import SubmissionBuilder, parse_timestamp
from lib.intake.types import Submission
from lib.intake.vendor_common import require_list, require_object, submitted_or_received


def parse_typeform(
    source: Source, synonyms: Mapping[str, Sequence[str]], item: object, received_at: dt.datetime
) -> list[Submission]:
    """Parse a Typeform webhook; answers map by ``field.ref``, then by the question title.

    A skipped question has no answer entry, so it stays absent. Hidden fields are
    kept by name unless empty. ``event_id`` (or the response token) is the event id.
    """
    body = require_object(item, "body")
    response = require_object(body.get("form_response"), "form_response")
    definition = response.get("definition")
    titles = _titles_by_field_id(definition if isinstance(definition, Mapping) else {})

    builder = SubmissionBuilder(source, synonyms)
    for index, answer in enumerate(require_list(response.get("answers"), "form_response.answers")):
        answer = require_object(answer, f"form_response.answers[{index}]")
        field = answer.get("field") if isinstance(answer.get("field"), Mapping) else {}
        key = str(field.get("ref") or field.get("id") or f"answer {index + 1}")
        builder.add(key, _answer_value(answer), label=titles.get(str(field.get("id"))) or key)
    hidden = response.get("hidden")
    for name, value in (hidden.items() if isinstance(hidden, Mapping) else []):
        builder.add(str(name), value)

    submitted = parse_timestamp(response.get("submitted_at"), field="form_response.submitted_at")
    return [
        builder.build(
            event_id=body.get("event_id") or response.get("token"),
            submitted_at=submitted_or_received(submitted, received_at),
            form_id=response.get("form_id"),
        )
    ]


def _titles_by_field_id(definition: Mapping[str, object]) -> dict[str, str]:
    fields = definition.get("fields")
    titles = {}
    for field in fields if isinstance(fields, list) else []:
        if isinstance(field, Mapping) and field.get("id") and field.get("title"):
            titles[str(field["id"])] = str(field["title"])
    return titles


def _answer_value(answer: Mapping[str, object]) -> object:
    """Return an answer's value: choices become their labels, the "other" text included."""
    answer_type = answer.get("type")
    value = answer.get(str(answer_type))
    if answer_type == "choice" and isinstance(value, Mapping):
        return value.get("label") or value.get("other")
    if answer_type == "choices" and isinstance(value, Mapping):
        labels = list(value.get("labels") or [])
        return labels + [value["other"]] if value.get("other") else labels
    if answer_type == "payment" and isinstance(value, Mapping):
        return value.get("amount")
    return value
