"""Request-level checks that run before any submission of a request is processed."""

from __future__ import annotations

import datetime as dt

import pytest

from lib.config.loader import load_config
from lib.entrypoints.intake import MAX_SIGNED_BATCH, validate_submissions
from lib.errors import InvalidInputError
from lib.intake.body import decode_body
from lib.intake.types import Submission

CONFIG = load_config()
NOW = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.timezone.utc)


def submissions(count: int, **fields: object) -> list[Submission]:
    answers = {"email": "a@example.com", **fields}
    return [Submission("html", None, NOW, dict(answers)) for _ in range(count)]


def test_unsigned_source_rejects_batch():
    with pytest.raises(InvalidInputError) as raised:
        validate_submissions(CONFIG.source("html"), submissions(2))

    assert raised.value.field == "body"


def test_unsigned_source_accepts_one():
    validate_submissions(CONFIG.source("html"), submissions(1))


def test_signed_source_batch_limit():
    hubspot = CONFIG.source("hubspot")
    validate_submissions(hubspot, submissions(MAX_SIGNED_BATCH))

    with pytest.raises(InvalidInputError):
        validate_submissions(hubspot, submissions(MAX_SIGNED_BATCH + 1))


def test_long_answer_name_rejected():
    with pytest.raises(InvalidInputError) as raised:
        validate_submissions(CONFIG.source("html"), [Submission("html", None, NOW, {"email": "a@example.com"},
                                                                extra={"x" * 2000: "1"})])

    assert raised.value.field == "body[0]"


def test_lone_surrogate_rejected():
    with pytest.raises(InvalidInputError) as raised:
        validate_submissions(CONFIG.source("html"), submissions(1, name="\ud800"))

    assert "Unicode" in raised.value.expected


def test_deeply_nested_json_rejected():
    body = b"[" * 5000 + b"]" * 5000

    with pytest.raises(InvalidInputError) as raised:
        decode_body("application/json", body, allowed=frozenset({"application/json"}))

    assert raised.value.field == "body"


def test_signed_url_uses_forwarded_scheme():
    import flask

    from lib.entrypoints.intake import signed_url

    app = flask.Flask("test")
    with app.test_request_context("/intake_webhook/hubspot?x=1", base_url="http://crm.example.com",
                                  headers={"X-Forwarded-Proto": "https"}):
        assert signed_url(CONFIG.source("hubspot"), flask.request) == "https://crm.example.com/intake_webhook/hubspot?x=1"


def test_signed_url_without_query_has_no_question_mark():
    import flask

    from lib.entrypoints.intake import signed_url

    app = flask.Flask("test")
    with app.test_request_context("/intake_webhook/hubspot", base_url="http://127.0.0.1:8080"):
        assert signed_url(CONFIG.source("hubspot"), flask.request) == "http://127.0.0.1:8080/intake_webhook/hubspot"
