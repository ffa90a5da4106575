"""Plain HTML forms and custom senders: flat fields as form data or JSON."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from lib.config.schema import Source
from lib.intake.fields import SubmissionBuilder, parse_timestamp
from lib.intake.types import Submission
from lib.intake.vendor_common import as_form_fields, submitted_or_received

# Keys that carry the submission's identity rather than an answer.
_IDENTITY_KEYS = frozenset({"submission_id", "form", "form_id", "submitted_at"})
# Anti-spam tokens that browsers post with the form.
_CAPTCHA_KEYS = frozenset({"g-recaptcha-response", "cf-turnstile-response", "h-captcha-response"})


def parse_html(
    source: Source, synonyms: Mapping[str, Sequence[str]], item: object, received_at: dt.datetime
) -> list[Submission]:
    """Parse a flat form: ``submission_id`` (when not null) is the event id, ``form`` the form id.

    A nested JSON object (``"extra": {"referrer": ...}``) is read one level deep.
    Keys that start with ``_`` are treated as hidden housekeeping and dropped.
    """
    data = as_form_fields(item)
    builder = SubmissionBuilder(source, synonyms)
    for key, value in data.items():
        if key in _IDENTITY_KEYS or key in _CAPTCHA_KEYS or key.startswith("_"):
            continue
        if isinstance(value, Mapping):
            for inner_key, inner_value in value.items():
                builder.add(str(inner_key), inner_value)
        else:
            builder.add(key, value)

    submitted = parse_timestamp(data.get("submitted_at"), field="submitted_at")
    return [
        builder.build(
            event_id=data.get("submission_id"),
            submitted_at=submitted_or_received(submitted, received_at),
            form_id=data.get("form") or data.get("form_id"),
        )
    ]
