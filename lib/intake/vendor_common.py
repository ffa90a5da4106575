"""Helpers that every vendor parser shares: shape checks and the submitted time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from lib.errors import InvalidInputError
from lib.intake.fields import group_pairs
from lib.intake.types import FieldValue


def is_form_pairs(payload: object) -> bool:
    """Return True for the ``(name, value)`` pairs that ``decode_body`` returns for form bodies."""
    return isinstance(payload, list) and all(isinstance(item, tuple) for item in payload)


def require_object(value: object, field: str) -> Mapping[str, object]:
    """Return ``value`` when it is a JSON object.

    Raises:
        InvalidInputError: ``value`` is anything else; the error names ``field``.
    """
    if not isinstance(value, Mapping):
        raise InvalidInputError(field, "a JSON object", type(value).__name__)
    return value


def require_list(value: object, field: str) -> list[object]:
    """Return ``value`` when it is a JSON array, or an empty list for a missing one.

    Raises:
        InvalidInputError: ``value`` is present but not an array.
    """
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInputError(field, "a JSON array", type(value).__name__)
    return value


def as_form_fields(payload: object, field: str = "body") -> Mapping[str, FieldValue | object]:
    """Return form data as a mapping, whether it arrived as form pairs or as a JSON object.

    Raises:
        InvalidInputError: the payload is neither.
    """
    if is_form_pairs(payload):
        return group_pairs(payload)  # type: ignore[arg-type]
    return require_object(payload, field)


def submitted_or_received(submitted_at: dt.datetime | None, received_at: dt.datetime) -> dt.datetime:
    """Return the vendor's submitted time, or the receive time for vendors that send none.

    These vendors post while the person submits, so the receive time is the best
    estimate of the submitted time.
    """
    if submitted_at is not None:
        return submitted_at
    return received_at.astimezone(dt.timezone.utc)
