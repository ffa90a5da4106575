"""Rendering of the configured message templates, per recipient locale."""

from __future__ import annotations

import string
from collections.abc import Mapping

from lib.config.schema import EmailTemplate

# Templates often put a value in brackets already, so the placeholder has none.
MISSING_VALUE = {"zh-TW": "未提供", "en": "not given"}


class _Values(dict):
    def __init__(self, values: Mapping[str, object], locale: str):
        super().__init__({key: value for key, value in values.items() if value not in (None, "")})
        self._missing = MISSING_VALUE.get(locale, MISSING_VALUE["en"])

    def __missing__(self, key: str) -> str:
        return self._missing


def render_text(text: str, values: Mapping[str, object], locale: str) -> str:
    """Fill ``{placeholders}`` in ``text``; a missing value reads "(not given)".

    Only plain names are substituted: attribute and index lookups such as
    ``{a.b}`` or ``{a[0]}`` are rendered literally, so a template cannot reach
    into objects.
    """
    formatter = string.Formatter()
    out = []
    for literal, field, spec, conversion in formatter.parse(text):
        out.append(literal)
        if field is None:
            continue
        if not field.isidentifier():
            out.append("{" + field + "}")
            continue
        out.append(str(_Values(values, locale)[field]))
    return "".join(out)


def render_email(template: EmailTemplate, values: Mapping[str, object], locale: str) -> tuple[str, str]:
    """Return ``(subject, body)`` of ``template`` in ``locale``."""
    subject = render_text(template.subject.get(locale), values, locale)
    body = render_text(template.body.get(locale), values, locale)
    return subject.replace("\n", " ").strip(), body
