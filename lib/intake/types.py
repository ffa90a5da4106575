"""The shape every intake parser produces, whatever the vendor."""

from __future__ import annotations

import dataclasses
import datetime as dt

FieldValue = str | list[str]

# Canonical field names that the lead pipeline reads. Parsers map vendor fields
# onto these through the source's field mapping; anything else goes to ``extra``.
CANONICAL_FIELDS = (
    "email",
    "phone",
    "name",
    "first_name",
    "last_name",
    "company",
    "title",
    "company_size",
    "region",
    "products",
    "budget",
    "message",
    "subject",
    "locale",
    "consent",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "page_url",
    "referrer",
)


@dataclasses.dataclass(frozen=True)
class Submission:
    """One form submission, normalised to canonical field names but not yet cleaned.

    Attributes:
        source_id: Configured source that received it, e.g. ``"webflow"``.
        event_id: The vendor's own submission or event id, or None when the
            vendor sends none (the pipeline then hashes the payload).
        submitted_at: When the person submitted, aware UTC, or None if unknown.
        fields: Canonical fields; values are stripped strings or lists of strings,
            and empty answers are left out.
        extra: Answers that map to no canonical field, keyed by their label.
        form_id: The vendor's form id, when it sends one.
        respondent_email_verified: True when the email was collected by the form
            platform itself (Google Forms "collect emails"), so it outranks a typed one.
    """

    source_id: str
    event_id: str | None
    submitted_at: dt.datetime | None
    fields: dict[str, FieldValue]
    extra: dict[str, FieldValue] = dataclasses.field(default_factory=dict)
    form_id: str | None = None
    respondent_email_verified: bool = False

    def is_empty(self) -> bool:
        """Return True when the person answered nothing at all."""
        return not any(self.fields.values()) and not any(self.extra.values())
