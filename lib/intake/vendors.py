"""Turn a decoded webhook body into submissions, whatever the vendor and however batched."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence

from lib.config.schema import Source
from lib.errors import InvalidInputError, UnknownSourceError
from lib.intake.google_forms import parse_form_delivery
from lib.intake.types import Submission
from lib.intake.vendor_common import is_form_pairs
from lib.intake.vendor_hubspot import parse_hubspot
from lib.intake.vendor_html import parse_html
from lib.intake.vendor_jotform import parse_jotform
from lib.intake.vendor_tally import parse_tally
from lib.intake.vendor_typeform import parse_typeform
from lib.intake.vendor_webflow import parse_webflow
from lib.intake.vendor_wordpress import parse_cf7, parse_elementor, parse_gravityforms

ItemParser = Callable[[Source, Mapping[str, Sequence[str]], object, dt.datetime], list[Submission]]


def _parse_google_forms(
    source: Source, synonyms: Mapping[str, Sequence[str]], item: object, received_at: dt.datetime
) -> list[Submission]:
    return [parse_form_delivery(source, synonyms, item, received_at=received_at)]


_PARSERS: dict[str, ItemParser] = {
    "google_forms": _parse_google_forms,
    "webflow": parse_webflow,
    "cf7": parse_cf7,
    "gravityforms": parse_gravityforms,
    "elementor": parse_elementor,
    "typeform": parse_typeform,
    "tally": parse_tally,
    "jotform": parse_jotform,
    "hubspot": parse_hubspot,
    "html": parse_html,
}
# Vendors that deliver over HTTP; other sources (inbound email) arrive another way.
WEBHOOK_VENDORS = frozenset(_PARSERS)


def parse_webhook(
    source: Source,
    synonyms: Mapping[str, Sequence[str]],
    payload: object,
    *,
    received_at: dt.datetime,
) -> list[Submission]:
    """Parse a decoded webhook body into one submission per form response.

    Args:
        source: The configured source; ``source.vendor`` picks the parser.
        synonyms: ``Intake.field_synonyms`` from the configuration.
        payload: What ``decode_body`` returned: a JSON value, or form pairs.
        received_at: When the request arrived, aware; it is the submitted time for
            vendors that send none, because they post while the person submits.

    Returns:
        One submission per item of a JSON array (HubSpot batches, relays that
        send lists), else one. A vendor event that is not a form response
        (a Webflow ``site_publish``) gives none. A submission may lack an email
        or be empty (``is_empty()``), and the pipeline decides what to do with it.

    Raises:
        InvalidInputError: the body or one of its items does not have the
            vendor's shape; the error names the field.
        UnknownSourceError: the source's vendor does not deliver over HTTP.
    """
    parser = _PARSERS.get(source.vendor)
    if parser is None:
        raise UnknownSourceError(
            f"source {source.id!r} has vendor {source.vendor!r}, which does not deliver webhooks; "
            f"expected one of {sorted(WEBHOOK_VENDORS)}"
        )
    items = payload if isinstance(payload, list) and not is_form_pairs(payload) else [payload]
    submissions: list[Submission] = []
    for index, item in enumerate(items):
        if len(items) > 1 and not isinstance(item, Mapping):
            raise InvalidInputError(f"body[{index}]", "a JSON object", type(item).__name__)
        submissions.extend(parser(source, synonyms, item, received_at))
    return submissions
