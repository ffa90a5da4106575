"""Tally ``FORM_RESPONSE`` webhooks."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence

from lib.config.schema import Source
from lib.intake.fields import SubmissionBuilder, parse_timestamp
from lib.intake.types import Submission
from lib.intake.vendor_common import require_list, require_object, submitted_or_received

logger = logging.getLogger(__name__)

FORM_RESPONSE = "FORM_RESPONSE"
# Question types whose value is a list of option ids, and which of them allow one option only.
_OPTION_TYPES = frozenset({"MULTIPLE_CHOICE", "CHECKBOXES", "DROPDOWN", "MULTI_SELECT", "RANKING"})
_SINGLE_OPTION_TYPES = frozenset({"MULTIPLE_CHOICE", "DROPDOWN"})


def parse_tally(
    source: Source, synonyms: Mapping[str, Sequence[str]], item: object, received_at: dt.datetime
) -> list[Submission]:
    """Parse a Tally webhook: each item of ``data.fields`` contains ``key``, ``label``, ``type`` and ``value``.

    Choice values are option ids and map to the option texts. The per-option
    ``CHECKBOX`` entries that Tally adds next to a ``CHECKBOXES`` question are skipped.
    """
    body = require_object(item, "body")
    if body.get("eventType", FORM_RESPONSE) != FORM_RESPONSE:
        logger.info("ignoring Tally event %r from source %s", body.get("eventType"), source.id)
        return []
    data = require_object(body.get("data"), "data")
    raw_fields = require_list(data.get("fields"), "data.fields")
    fields = [require_object(field, f"data.fields[{index}]") for index, field in enumerate(raw_fields)]
    group_keys = [str(field.get("key")) for field in fields if field.get("type") == "CHECKBOXES"]

    builder = SubmissionBuilder(source, synonyms)
    for field in fields:
        key = str(field.get("key") or field.get("label") or "")
        if field.get("type") == "CHECKBOX" and any(key.startswith(group + "_") for group in group_keys):
            continue
        builder.add(key, _field_value(field), label=str(field.get("label") or key))

    submitted = parse_timestamp(data.get("createdAt") or body.get("createdAt"), field="data.createdAt")
    return [
        builder.build(
            event_id=body.get("eventId") or data.get("responseId"),
            submitted_at=submitted_or_received(submitted, received_at),
            form_id=data.get("formId"),
        )
    ]


def _field_value(field: Mapping[str, object]) -> object:
    value = field.get("value")
    field_type = field.get("type")
    if field_type in _OPTION_TYPES:
        options = field.get("options") if isinstance(field.get("options"), list) else []
        texts = {str(option.get("id")): option.get("text") for option in options if isinstance(option, Mapping)}
        chosen = value if isinstance(value, list) else [value]
        labels = [texts.get(str(option_id), option_id) for option_id in chosen if option_id is not None]
        return labels[0] if field_type in _SINGLE_OPTION_TYPES and len(labels) == 1 else labels
    if field_type == "FILE_UPLOAD" and isinstance(value, list):
        return [file.get("url") for file in value if isinstance(file, Mapping)]
    return value
