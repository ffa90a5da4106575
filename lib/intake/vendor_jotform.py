"""Jotform webhooks: multipart or urlencoded posts that carry the answers in ``rawRequest``."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence

from lib.config.schema import Source
from lib.errors import InvalidInputError
from lib.intake.fields import SubmissionBuilder, parse_timestamp
from lib.intake.types import Submission
from lib.intake.vendor_common import as_form_fields, submitted_or_received

# rawRequest keys of answers: q<question number>_<unique name>.
_ANSWER_KEY = re.compile(r"^q\d+_(.+)$")
# One "Label:value" entry of the ``pretty`` summary; the next entry starts after ", ".
_PRETTY_ENTRY = re.compile(r"(?:^|, )([^:,]{1,200}):")


def parse_jotform(
    source: Source, synonyms: Mapping[str, Sequence[str]], item: object, received_at: dt.datetime
) -> list[Submission]:
    """Parse a Jotform webhook, preferring the ``rawRequest`` JSON over the ``pretty`` text.

    Answers are keyed by their unique name (``q3_name`` gives ``name``); a name
    answer ``{first, last}`` fills first and last name, a phone answer
    ``{area, phone}`` or ``{full}`` becomes one string.
    """
    data = as_form_fields(item)
    builder = SubmissionBuilder(source, synonyms)
    answers = _raw_request(data.get("rawRequest"))
    if answers is not None:
        for key, value in answers.items():
            match = _ANSWER_KEY.match(key)
            if match:
                _add_answer(builder, match.group(1), value)
        submitted = parse_timestamp(answers.get("submitDate"), field="rawRequest.submitDate")
    else:
        _add_pretty(builder, data.get("pretty"))
        submitted = None

    return [
        builder.build(
            event_id=data.get("submissionID"),
            submitted_at=submitted_or_received(submitted, received_at),
            form_id=data.get("formID"),
        )
    ]


def _raw_request(value: object) -> Mapping[str, object] | None:
    if value is None or value == "":
        return None
    if isinstance(value, Mapping):
        return value
    try:
        decoded = json.loads(str(value))
    except ValueError as exc:
        raise InvalidInputError("rawRequest", "a JSON object of q<N>_<name> answers", value) from exc
    if not isinstance(decoded, Mapping):
        raise InvalidInputError("rawRequest", "a JSON object of q<N>_<name> answers", value)
    return decoded


def _add_answer(builder: SubmissionBuilder, name: str, value: object) -> None:
    if isinstance(value, Mapping) and ("first" in value or "last" in value):
        builder.add_canonical("first_name", value.get("first"))
        builder.add_canonical("last_name", value.get("last"))
        return
    builder.add(name, _flatten(value))


def _flatten(value: object) -> object:
    """Join Jotform's compound answers (phone, date) into one string."""
    if not isinstance(value, Mapping):
        return value
    if "full" in value:
        return value.get("full")
    if "phone" in value:
        return " ".join(str(value.get(part) or "").strip() for part in ("country", "area", "phone")).strip()
    if {"year", "month", "day"} <= value.keys():
        return f"{value['year']}-{str(value['month']).zfill(2)}-{str(value['day']).zfill(2)}"
    return value


def _add_pretty(builder: SubmissionBuilder, pretty: object) -> None:
    # NOTE: ``pretty`` is "Label:value, Label:value", so a value that contains ", x:"
    # splits wrongly; it is only read when ``rawRequest`` is absent.
    if not isinstance(pretty, str):
        return
    matches = list(_PRETTY_ENTRY.finditer(pretty))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(pretty)
        builder.add(match.group(1).strip(), pretty[match.end() : end])
