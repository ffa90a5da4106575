"""WordPress form plugins: Contact Form 7, Gravity Forms and Elementor Pro."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence

from lib.config.schema import Source
from lib.errors import InvalidInputError
from lib.intake.fields import SubmissionBuilder, parse_json_url_list
from lib.intake.types import Submission
from lib.intake.vendor_common import as_form_fields, submitted_or_received

# Fields that WordPress and anti-spam plugins add to every post.
_WORDPRESS_HOUSEKEEPING = frozenset({"_wpnonce", "_wp_http_referer", "g-recaptcha-response", "cf-turnstile-response"})

# Entry properties of a Gravity Forms entry object that are not answers.
_GRAVITY_ENTRY_PROPERTIES = frozenset(
    {
        "id", "form_id", "post_id", "date_created", "date_updated", "is_starred", "is_read", "ip",
        "source_url", "user_agent", "currency", "payment_status", "payment_date", "payment_amount",
        "payment_method", "transaction_id", "is_fulfilled", "created_by", "transaction_type",
        "status", "source_id", "partial_entry_id", "resume_token",
    }
)  # fmt: skip
_GRAVITY_FIELD_KEY = re.compile(r"^\d+(\.\d+)?$")
_GRAVITY_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

# Labels of the metadata that Elementor appends in the simple shape; only the page is kept.
_ELEMENTOR_SIMPLE_META = frozenset({"date", "time", "user agent", "remote ip", "powered by", "credit"})
_BRACKET_PART = re.compile(r"\[([^\]]*)\]")


def parse_cf7(
    source: Source, synonyms: Mapping[str, Sequence[str]], item: object, received_at: dt.datetime
) -> list[Submission]:
    """Parse a Contact Form 7 post; ``_wpcf7*`` fields are dropped and ``_wpcf7`` is the form id."""
    data = as_form_fields(item)
    builder = SubmissionBuilder(source, synonyms)
    for key, value in data.items():
        if not key.startswith("_wpcf7") and key not in _WORDPRESS_HOUSEKEEPING:
            builder.add(key, value)
    submitted_at = submitted_or_received(None, received_at)
    return [builder.build(event_id=None, submitted_at=submitted_at, form_id=data.get("_wpcf7"))]


def parse_gravityforms(
    source: Source, synonyms: Mapping[str, Sequence[str]], item: object, received_at: dt.datetime
) -> list[Submission]:
    """Parse a Gravity Forms entry object, keyed by field id.

    A dotted sub-input key mapped in ``field_map`` (``1.3``, first name) is one
    answer. Other sub-inputs (one key per checkbox option, '' when unchecked) are
    collected into one list under their base field id.
    """
    entry = as_form_fields(item)
    builder = SubmissionBuilder(source, synonyms)
    groups: dict[str, list[object]] = {}
    for key, value in entry.items():
        if key in _GRAVITY_ENTRY_PROPERTIES:
            continue
        if _GRAVITY_FIELD_KEY.match(key) and "." in key and key not in source.field_map:
            groups.setdefault(key.split(".", 1)[0], []).append(value)
            continue
        urls = parse_json_url_list(value) if isinstance(value, str) else None
        builder.add(key, urls if urls is not None else value)
    for base_id, values in groups.items():
        builder.add(base_id, values)
    builder.add_canonical("page_url", entry.get("source_url"))

    form_id, entry_id = entry.get("form_id"), entry.get("id")
    event_id = f"{form_id}:{entry_id}" if form_id and entry_id else None
    submitted_at = submitted_or_received(_parse_gravity_date(entry.get("date_created")), received_at)
    return [builder.build(event_id=event_id, submitted_at=submitted_at, form_id=form_id)]


def _parse_gravity_date(value: object) -> dt.datetime | None:
    """Parse ``date_created``, which Gravity Forms stores in UTC without a zone marker."""
    if not value:
        return None
    try:
        return dt.datetime.strptime(str(value).strip(), _GRAVITY_DATE_FORMAT).replace(tzinfo=dt.timezone.utc)
    except ValueError as exc:
        raise InvalidInputError("date_created", "'YYYY-MM-DD HH:MM:SS' in UTC", value) from exc


def parse_elementor(
    source: Source, synonyms: Mapping[str, Sequence[str]], item: object, received_at: dt.datetime
) -> list[Submission]:
    """Parse an Elementor Pro form webhook, in the advanced or the simple shape.

    The advanced shape ("Advanced Data" on) sends ``form[id]``, ``fields[<id>][title]``,
    ``fields[<id>][value]`` and ``meta[<name>][value]``; the simple one sends label=value.
    """
    data = as_form_fields(item)
    builder = SubmissionBuilder(source, synonyms)
    if any(key.startswith(("fields[", "form[")) for key in data):
        form_id = _add_elementor_advanced(builder, _nest_brackets(data))
    else:
        form_id = None
        _add_elementor_simple(builder, data)
    return [builder.build(event_id=None, submitted_at=submitted_or_received(None, received_at), form_id=form_id)]


def _nest_brackets(data: Mapping[str, object]) -> dict[str, object]:
    """Turn PHP-style keys like ``fields[email][value]`` into nested dictionaries."""
    nested: dict[str, object] = {}
    for key, value in data.items():
        head = key.split("[", 1)[0]
        path = [head, *_BRACKET_PART.findall(key[len(head) :])]
        node = nested
        for part in path[:-1]:
            child = node.setdefault(part, {})
            node = child if isinstance(child, dict) else {}
        node[path[-1]] = value
    return nested


def _add_elementor_advanced(builder: SubmissionBuilder, nested: Mapping[str, object]) -> object:
    fields = nested.get("fields")
    for field_id, field in (fields.items() if isinstance(fields, dict) else []):
        if not isinstance(field, dict):
            continue
        value, label = field.get("value"), field.get("title") or field_id
        # Elementor joins checked options with ", "; listed options split more precisely in the builder.
        if field.get("type") == "checkbox" and isinstance(value, str) and not builder.has_checkbox_options(label):
            value = [option.strip() for option in value.split(", ")]
        builder.add(field_id, value, label=label)

    meta = nested.get("meta")
    page = meta.get("page_url") if isinstance(meta, dict) else None
    if isinstance(page, dict):
        builder.add_canonical("page_url", page.get("value"))
    form = nested.get("form")
    return form.get("id") if isinstance(form, dict) else None


def _add_elementor_simple(builder: SubmissionBuilder, data: Mapping[str, object]) -> None:
    for label, value in data.items():
        if label.strip().lower() not in _ELEMENTOR_SIMPLE_META:
            builder.add(label, value)
