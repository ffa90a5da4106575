"""Webflow form submissions: the v2 ``form_submission`` webhook and the older flat shape."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence

from lib.config.schema import Source
from lib.intake.fields import SubmissionBuilder, parse_timestamp
from lib.intake.types import Submission
from lib.intake.vendor_common import require_object, submitted_or_received

logger = logging.getLogger(__name__)

FORM_SUBMISSION = "form_submission"


def parse_webflow(
    source: Source, synonyms: Mapping[str, Sequence[str]], item: object, received_at: dt.datetime
) -> list[Submission]:
    """Parse one Webflow delivery; any trigger other than ``form_submission`` gives no submission.

    The v2 shape is ``{"triggerType", "payload": {"data", "id", "formId", "submittedAt"}}``;
    the older shape puts ``data``, ``_id``, ``form`` and ``d`` at the top level.
    """
    body = require_object(item, "body")
    if "triggerType" in body:
        if body["triggerType"] != FORM_SUBMISSION:
            logger.info("ignoring Webflow trigger %r from source %s", body["triggerType"], source.id)
            return []
        payload = require_object(body.get("payload"), "payload")
        event_id, form_id, submitted = payload.get("id"), payload.get("formId"), payload.get("submittedAt")
        data = require_object(payload.get("data"), "payload.data")
    else:
        event_id, form_id, submitted = body.get("_id"), body.get("form"), body.get("d")
        data = require_object(body.get("data"), "data")

    builder = SubmissionBuilder(source, synonyms)
    for key, value in data.items():
        builder.add(key, value)
    submitted_at = submitted_or_received(parse_timestamp(submitted, field="payload.submittedAt"), received_at)
    return [builder.build(event_id=event_id, submitted_at=submitted_at, form_id=form_id)]
