"""HubSpot form and contact deliveries: batches of contact records or flat property maps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from lib.config.schema import Source
from lib.intake.fields import SubmissionBuilder, parse_timestamp
from lib.intake.types import Submission
from lib.intake.vendor_common import require_object, submitted_or_received

# HubSpot's internal contact property names that map onto canonical fields.
HUBSPOT_PROPERTIES = {
    "email": "email",
    "firstname": "first_name",
    "lastname": "last_name",
    "phone": "phone",
    "mobilephone": "phone",
    "company": "company",
    "jobtitle": "title",
    "numemployees": "company_size",
    "message": "message",
    "city": "region",
    "hs_language": "locale",
    "hs_analytics_first_url": "page_url",
    "hs_analytics_first_referrer": "referrer",
}
# Keys of the delivery itself, not answers.
_RECORD_KEYS = frozenset(
    {
        "properties", "values", "vid", "canonical-vid", "merged-vids", "portal-id", "portalId", "is-contact",
        "profile-token", "profile-url", "identity-profiles", "form-submissions", "list-memberships",
        "merge-audits", "eventId", "subscriptionId", "subscriptionType", "appId", "occurredAt",
        "attemptNumber", "objectId", "changeSource", "changeFlag", "submittedAt", "conversionId",
        "conversion-id", "submissionGuid", "guid", "formId", "formGuid", "form-id", "pageUrl",
        "pageName", "pageTitle", "pageId", "createdate", "lastmodifieddate", "lifecyclestage",
        "hubspot_owner_id", "associatedcompanyid",
    }
)  # fmt: skip
_MULTI_VALUE_SEPARATOR = ";"


def parse_hubspot(
    source: Source, synonyms: Mapping[str, Sequence[str]], item: object, received_at: dt.datetime
) -> list[Submission]:
    """Parse one HubSpot record into a submission.

    A record is a contact ``{"properties": {"email": {"value": ...}}}``, a form
    submission ``{"values": [{"name", "value"}]}`` or a flat property map. HubSpot's
    own ``hs_*`` properties are dropped unless mapped; multi-select values
    (``"SEO;Ads"``) become lists.
    """
    record = require_object(item, "body")
    submission_meta = _first_form_submission(record)
    builder = SubmissionBuilder(source, synonyms, vendor_field_map=HUBSPOT_PROPERTIES)
    for name, value in _properties(record).items():
        if name.startswith("hs_") and name not in HUBSPOT_PROPERTIES and name not in source.field_map:
            continue
        builder.add(name, _split_multi_value(value))
    builder.add_canonical("page_url", record.get("pageUrl") or submission_meta.get("page-url"))

    event_id = (
        record.get("eventId")
        or record.get("conversionId")
        or record.get("conversion-id")
        or submission_meta.get("conversion-id")
        or record.get("submissionGuid")
        or record.get("guid")
    )
    submitted = record.get("submittedAt") or submission_meta.get("timestamp") or record.get("occurredAt")
    form_id = record.get("formId") or record.get("formGuid") or submission_meta.get("form-id")
    submitted_at = submitted_or_received(parse_timestamp(submitted, field="submittedAt"), received_at)
    return [builder.build(event_id=event_id, submitted_at=submitted_at, form_id=form_id)]


def _first_form_submission(record: Mapping[str, object]) -> Mapping[str, object]:
    submissions = record.get("form-submissions")
    if isinstance(submissions, list) and submissions and isinstance(submissions[0], Mapping):
        return submissions[0]
    return {}


def _properties(record: Mapping[str, object]) -> dict[str, object]:
    properties = record.get("properties")
    if isinstance(properties, Mapping):
        return {str(name): _property_value(value) for name, value in properties.items()}
    values = record.get("values")
    if isinstance(values, list):
        pairs = (value for value in values if isinstance(value, Mapping))
        return {str(pair.get("name")): pair.get("value") for pair in pairs}
    return {name: value for name, value in record.items() if name not in _RECORD_KEYS}


def _property_value(value: object) -> object:
    return value.get("value") if isinstance(value, Mapping) else value


def _split_multi_value(value: object) -> object:
    if isinstance(value, str) and _MULTI_VALUE_SEPARATOR in value:
        return [part for part in value.split(_MULTI_VALUE_SEPARATOR) if part.strip()]
    return value
