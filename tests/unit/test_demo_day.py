"""The demo day: targets, signatures, parse results and expected statuses."""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
from collections import Counter

import pytest

from demo.day import SOURCE_SCHEMES, build_day, demo_secrets, write_day
from lib.config.loader import load_config
from lib.errors import CrmError, InvalidInputError, SignatureError
from lib.intake.body import decode_body
from lib.intake.signatures import verify_signature
from lib.intake.vendors import WEBHOOK_VENDORS, parse_webhook

CONFIG = load_config()
HTTP_SOURCES = [source for source in CONFIG.sources if source.vendor in WEBHOOK_VENDORS]
SECRETS = demo_secrets()
START = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.timezone.utc)
BASE_URL = "http://127.0.0.1:8080"
DAY = build_day(SECRETS, START, base_url=BASE_URL)
ALL_TYPES = frozenset({"application/json", "application/x-www-form-urlencoded", "multipart/form-data"})
ACCEPTED_KINDS = ("lead", "duplicate", "edit", "blank", "incomplete")


def _verify(delivery) -> None:
    source = CONFIG.source(delivery.source_id)
    verify_signature(
        source,
        SECRETS.get(source.id),
        headers=delivery.headers,
        raw_body=delivery.body,
        method=delivery.method,
        url=BASE_URL + delivery.path,
        query=delivery.query,
        now=START + dt.timedelta(seconds=5),
    )


def _parse(delivery):
    source = CONFIG.source(delivery.source_id)
    payload = decode_body(delivery.headers.get("Content-Type"), delivery.body, allowed=ALL_TYPES)
    return parse_webhook(source, CONFIG.intake.field_synonyms, payload, received_at=START)


def _by_label(suffix: str):
    (found,) = [delivery for delivery in DAY if delivery.label.endswith(suffix)]
    return found


def test_day_has_about_forty_deliveries():
    assert 35 <= len(DAY) <= 45


def test_labels_are_unique():
    assert len({delivery.label for delivery in DAY}) == len(DAY)


def test_every_vendor_appears_twice():
    counts = Counter(delivery.source_id for delivery in DAY if delivery.kind != "rejected")
    for source in HTTP_SOURCES:
        assert counts[source.id] >= 2, source.id


def test_schemes_match_sample_config():
    assert SOURCE_SCHEMES == {source.id: source.signature.scheme for source in HTTP_SOURCES}


def test_deliveries_target_configured_sources():
    unknown = [delivery.label for delivery in DAY if CONFIG.source(delivery.source_id) is None]
    assert unknown == [_by_label("unknown-source").label]


def test_paths_match_source_ids():
    for delivery in DAY:
        expected = "/intake_form" if delivery.source_id == "google_forms" else f"/intake_webhook/{delivery.source_id}"
        assert delivery.path == expected, delivery.label


@pytest.mark.parametrize("delivery", [d for d in DAY if d.kind in ACCEPTED_KINDS], ids=lambda d: d.label)
def test_accepted_delivery_verifies(delivery):
    _verify(delivery)


@pytest.mark.parametrize("delivery", [d for d in DAY if d.kind in ACCEPTED_KINDS], ids=lambda d: d.label)
def test_accepted_delivery_parses(delivery):
    submissions = _parse(delivery)
    assert submissions
    assert delivery.expect_status == 200


def test_signature_rejections_raise():
    for suffix in ("webflow-wrong-signature", "google-forms-expired-timestamp", "typeform-missing-signature"):
        delivery = _by_label(suffix)
        assert delivery.expect_status == 401
        with pytest.raises(SignatureError):
            _verify(delivery)


def test_malformed_json_is_signed_but_invalid():
    delivery = _by_label("tally-malformed-json")
    _verify(delivery)
    with pytest.raises(InvalidInputError):
        _parse(delivery)


def test_other_rejections_have_expected_status():
    expected = {"html-xml-body": 415, "html-body-over-limit": 413, "webflow-get": 405, "unknown-source": 404}
    for suffix, status in expected.items():
        assert _by_label(suffix).expect_status == status


def test_unsupported_body_raises():
    with pytest.raises(CrmError):
        _parse(_by_label("html-xml-body"))


def test_oversized_body_exceeds_source_limit():
    delivery = _by_label("html-body-over-limit")
    assert len(delivery.body) > CONFIG.source("html").max_body_bytes


def test_redeliveries_repeat_bytes():
    bodies = [delivery.body for delivery in DAY if delivery.label.split("-", 1)[1].startswith("webflow-chen")]
    assert len(bodies) == 3
    assert len(set(bodies)) == 1


def test_double_click_pair_has_no_event_id():
    first, second = (_parse(_by_label(suffix))[0] for suffix in ("html-huang-double-click", "html-huang-double-click-second"))
    assert first == second
    assert first.event_id is None


def test_edit_keeps_response_id_and_changes_phone():
    original = _parse(_by_label("google-forms-wang"))[0]
    edited = _parse(_by_label("google-forms-wang-edited-phone"))[0]
    assert edited.event_id == original.event_id
    assert edited.submitted_at > original.submitted_at
    assert edited.fields["phone"] != original.fields["phone"]


def test_blank_trigger_is_empty():
    assert _parse(_by_label("google-forms-blank-trigger"))[0].is_empty()


def test_phone_only_lead_has_no_email():
    submission = _parse(_by_label("html-phone-only"))[0]
    assert "email" not in submission.fields
    assert submission.fields["phone"] == "0933-444-555"


def test_incomplete_has_neither_email_nor_phone():
    submission = _parse(_by_label("html-no-contact"))[0]
    assert "email" not in submission.fields
    assert "phone" not in submission.fields


def test_same_person_through_two_vendors():
    webflow = _parse(_by_label("webflow-chen"))[0]
    typeform = _parse(_by_label("typeform-chen-same-person-as-webflow"))[0]
    assert webflow.fields["email"].lower() == typeform.fields["email"].lower()


def test_hubspot_batch_gives_two_submissions():
    assert len(_parse(_by_label("hubspot-batch-tsai-lo"))) == 2


def test_shared_secret_query_key_is_url_safe():
    for delivery in DAY:
        if "key" in delivery.query:
            assert urllib.parse.quote(delivery.query["key"]) == delivery.query["key"]


def test_addresses_use_reserved_domains():
    allowed = ("@example.com", "@example.org", "@example.net", ".com.tw")
    for delivery in DAY:
        text = urllib.parse.unquote_plus(delivery.body.decode("utf-8", errors="replace"))
        for address in re.findall(r"[\w.+-]{1,64}@[\w-]+(?:\.[\w-]+)+", text):
            assert address.lower().endswith(allowed), (delivery.label, address)


def test_missing_secret_raises():
    with pytest.raises(KeyError, match="webflow"):
        build_day({key: value for key, value in SECRETS.items() if key != "webflow"}, START)


def test_write_day_writes_one_file_each(tmp_path):
    paths = write_day(tmp_path, DAY)
    assert len(paths) == len(DAY)
    record = json.loads(paths[0].read_text(encoding="utf-8"))
    assert record["label"] == DAY[0].label
