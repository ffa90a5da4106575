"""HTTP handlers of the two intake functions: verify, parse, run the pipeline, reply with JSON.

Every check runs before anything is written, so a rejected request leaves no
trace in the store beyond a log line.
"""

from __future__ import annotations

import datetime as dt
import logging
import os

import flask

from lib.bootstrap import App
from lib.config.schema import Source
from lib.errors import CrmError, InvalidInputError, UnknownSourceError
from lib.intake.body import decode_body
from lib.intake.google_forms import parse_form_delivery
from lib.intake.signatures import verify_signature
from lib.intake.types import Submission
from lib.intake.vendors import parse_webhook
from lib.services.intake_decide import IntakeResult
from lib.web import bind_request_context, error_response, json_response, method_not_allowed, read_body

logger = logging.getLogger(__name__)

ACCEPTED_TYPES = frozenset({"application/json", "application/x-www-form-urlencoded", "multipart/form-data"})
FORM_TYPES = frozenset({"application/json"})
# A signed vendor may batch deliveries. A browser form posts one submission and
# cannot authenticate, so a batch there could make reps' mailboxes send mass mail.
MAX_SIGNED_BATCH = 100
MAX_UNSIGNED_BATCH = 1
MAX_FIELDS = 200
MAX_FIELD_NAME_CHARS = 200
MAX_VALUE_CHARS = 20_000
NOT_WEBHOOK_VENDORS = frozenset({"google_forms", "email"})


def source_id_from_path(path: str, function_name: str) -> str | None:
    """Return the source id in ``/intake_webhook/<id>`` or ``/<id>``; None when absent."""
    parts = [part for part in path.split("/") if part]
    if parts and parts[0] == function_name:
        parts = parts[1:]
    return parts[0] if len(parts) == 1 else None


def _secret(source: Source) -> bytes | None:
    value = os.environ.get(source.secret_env)
    return value.encode("utf-8") if value else None


def signed_url(source: Source, request: flask.Request) -> str:
    """Return the URL as the sender saw it, for schemes that sign it.

    The function sits behind Google's front end, which terminates TLS, so the
    scheme comes from ``X-Forwarded-Proto``. A configured ``public_url`` (plus the
    query string) wins when a proxy also changes the host or path.
    """
    query = request.query_string.decode("latin-1")
    if source.signature.public_url:
        return source.signature.public_url + (f"?{query}" if query else "")
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
    return f"{scheme}://{request.host}{request.full_path if query else request.path}"


def _verify(source: Source, request: flask.Request, raw: bytes, now: dt.datetime) -> None:
    verify_signature(source, _secret(source), headers=dict(request.headers), raw_body=raw,
                     method=request.method, url=signed_url(source, request), query=request.args.to_dict(),
                     now=now)


def _answer(results: list[IntakeResult]) -> flask.Response:
    body = {"results": [result.as_dict() for result in results],
            "duplicate": bool(results) and all(result.duplicate for result in results)}
    if len(results) == 1:
        body |= results[0].as_dict()
    return json_response(200, body)


def _log_detail(exc: CrmError) -> str:
    # The value found may contain an address or other personal data, so the log
    # line names only the field and what was expected.
    if isinstance(exc, InvalidInputError):
        return f"invalid {exc.field}: expected {exc.expected}"
    return str(exc)


def _reject(exc: CrmError, source_id: str | None, request: flask.Request) -> flask.Response:
    response = error_response(exc)
    logger.warning("intake request rejected", extra={
        "source_id": source_id, "status": response.status_code, "reason": type(exc).__name__,
        "detail": _log_detail(exc), "content_type": request.mimetype})
    return response


def _check_value(field: str, value: object) -> None:
    items = value if isinstance(value, list) else [value]
    for item in items:
        text = str(item)
        if len(text) > MAX_VALUE_CHARS:
            raise InvalidInputError(field, f"at most {MAX_VALUE_CHARS} characters", text[:40])
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInputError(field, "valid Unicode text (no lone surrogates)", None) from exc


def validate_submissions(source: Source, submissions: list[Submission]) -> None:
    """Check every submission of a request before any is processed, so a bad item writes nothing.

    Raises:
        InvalidInputError: too many submissions for the source, too many answers,
            an answer name or value that is too long, or text that is not valid Unicode.
    """
    limit = MAX_UNSIGNED_BATCH if source.signature.scheme == "none" else MAX_SIGNED_BATCH
    if len(submissions) > limit:
        raise InvalidInputError("body", f"at most {limit} submission(s) per request for source {source.id!r}",
                                f"{len(submissions)} submissions")
    for index, submission in enumerate(submissions):
        answers = {**submission.extra, **submission.fields}
        if len(answers) > MAX_FIELDS:
            raise InvalidInputError(f"body[{index}]", f"at most {MAX_FIELDS} answers", f"{len(answers)} answers")
        for name, value in answers.items():
            if len(name) > MAX_FIELD_NAME_CHARS:
                raise InvalidInputError(f"body[{index}]", f"answer names of at most {MAX_FIELD_NAME_CHARS} characters",
                                        name[:40])
            _check_value(f"body[{index}].{name[:40]}", value)
            _check_value(f"body[{index}]", name)


def handle_webhook(request: flask.Request, app: App) -> flask.Response:
    """Serve ``POST /intake_webhook/<source_id>`` for a configured website-form source."""
    bind_request_context(request, app.project)
    source_id = source_id_from_path(request.path, "intake_webhook")
    try:
        if request.method != "POST":
            return method_not_allowed(request.method)
        if source_id is None:
            raise InvalidInputError("path", "/intake_webhook/<source_id>", request.path)
        source = app.config.source(source_id)
        # Form responses and inbound mail have their own entry points.
        if source is None or source.vendor in NOT_WEBHOOK_VENDORS:
            known = sorted(s.id for s in app.config.sources if s.vendor not in NOT_WEBHOOK_VENDORS)
            raise UnknownSourceError(f"unknown source id {source_id!r}; configured sources: {', '.join(known)}")
        now = app.clock.now()
        raw = read_body(request, source.max_body_bytes)
        _verify(source, request, raw, now)
        payload = decode_body(request.content_type, raw, allowed=ACCEPTED_TYPES)
        submissions = parse_webhook(source, app.config.intake.field_synonyms, payload, received_at=now)
        validate_submissions(source, submissions)
        results = [app.intake.handle(submission) for submission in submissions]
    except CrmError as exc:
        return _reject(exc, source_id, request)
    return _answer(results)


def _form_source(app: App, request: flask.Request) -> Source:
    source_id = source_id_from_path(request.path, "intake_form")
    forms = [source for source in app.config.sources if source.vendor == "google_forms"]
    if source_id is not None:
        forms = [source for source in forms if source.id == source_id]
    if not forms:
        raise UnknownSourceError(f"no google_forms source {'named ' + repr(source_id) if source_id else 'configured'}")
    return forms[0]


def handle_form(request: flask.Request, app: App) -> flask.Response:
    """Serve ``POST /intake_form``: a Google Form response posted by the shipped Apps Script."""
    bind_request_context(request, app.project)
    source_id = None
    try:
        if request.method != "POST":
            return method_not_allowed(request.method)
        source = _form_source(app, request)
        source_id = source.id
        now = app.clock.now()
        raw = read_body(request, source.max_body_bytes)
        _verify(source, request, raw, now)
        payload = decode_body(request.content_type, raw, allowed=FORM_TYPES)
        submission = parse_form_delivery(source, app.config.intake.field_synonyms, payload, received_at=now)
        validate_submissions(source, [submission])
        result = app.intake.handle(submission)
    except CrmError as exc:
        return _reject(exc, source_id, request)
    return _answer([result])
