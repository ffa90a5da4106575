"""HTTP handlers of the follow-up check (Cloud Tasks), the stale-deal check (Cloud Scheduler) and unsubscribe.

Cloud Tasks and Cloud Scheduler retry every non-2xx response, so after the caller
is verified a request that can never succeed (unknown shape, deleted lead) is
logged and answered 200. Only a failed token check (401) and an unavailable
store (503) are answered otherwise.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
from typing import Any

import flask

from lib.bootstrap import App
from lib.entrypoints.auth import serve_private, verify_caller
from lib.errors import CrmError, InvalidInputError
from lib.services.followup import parse_check
from lib.web import bind_request_context, error_response, json_response, method_not_allowed, read_body

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
SCHEDULE_TIME_HEADER = "X-CloudScheduler-ScheduleTime"
JOB_NAME_HEADER = "X-CloudScheduler-JobName"
RETRY_COUNT_HEADER = "X-CloudTasks-TaskRetryCount"


def _json_object(raw: bytes) -> dict[str, Any]:
    """Parse a JSON object from raw bytes, whatever Content-Type the request declares.

    Raises:
        InvalidInputError: the bytes are not UTF-8 JSON or not an object.
    """
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError("body", "a UTF-8 JSON object", raw[:40]) from exc
    if not isinstance(value, dict):
        raise InvalidInputError("body", "a JSON object", type(value).__name__)
    return value


def _retry_count(request: flask.Request) -> int:
    try:
        return int(request.headers.get(RETRY_COUNT_HEADER, "0"))
    except ValueError:
        return 0


def _accept(request: flask.Request, app: App, function_name: str) -> tuple[bytes, flask.Response | None]:
    """Check the method and the caller, then read the body.

    Returns:
        The raw body and None, or an empty body and the response that rejects the request.
    """
    bind_request_context(request, app.project)
    if request.method != "POST":
        return b"", method_not_allowed(request.method)
    try:
        verify_caller(request, function_name)
        return read_body(request, MAX_BODY_BYTES), None
    except CrmError as exc:
        logger.warning("%s request rejected", function_name, extra={"error": str(exc)})
        return b"", error_response(exc)


def handle_followup(request: flask.Request, app: App) -> flask.Response:
    """Serve ``POST /followup``: the no-reply check that Cloud Tasks calls at the due time."""
    raw, rejection = _accept(request, app, "followup")
    if rejection is not None:
        return rejection

    try:
        command = parse_check(_json_object(raw), _retry_count(request))
    except InvalidInputError as exc:
        # A retry would send the same body again, so the task is dropped with a 2xx.
        logger.error("followup task body is invalid, dropping it", extra={"error": str(exc)})
        return json_response(200, {"status": "ignored", "message": str(exc)})

    try:
        outcome = app.followups.check(command)
    except CrmError as exc:
        logger.warning("followup check failed, Cloud Tasks will retry", extra={
            "followup_id": command.followup_id, "error": str(exc)})
        return error_response(exc)
    return json_response(200, outcome.as_dict())


def schedule_time(request: flask.Request, body: dict[str, Any], fallback: dt.datetime) -> dt.datetime:
    """Return the run's time from ``X-CloudScheduler-ScheduleTime``, else the body, else ``fallback``.

    Raises:
        InvalidInputError: the header or ``schedule_time`` is not an RFC 3339 time with an offset.
    """
    text = request.headers.get(SCHEDULE_TIME_HEADER) or body.get("schedule_time")
    if not text:
        logger.warning("stale check called without a schedule time, using the clock")
        return fallback
    try:
        moment = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInputError(SCHEDULE_TIME_HEADER, "an RFC 3339 time such as 2025-06-01T00:00:00Z", text) from exc
    if moment.tzinfo is None:
        raise InvalidInputError(SCHEDULE_TIME_HEADER, "a time with a UTC offset", text)
    return moment.astimezone(dt.timezone.utc)


def handle_stale_deals(request: flask.Request, app: App) -> flask.Response:
    """Serve ``POST /stale_deals``: the daily stale-deal check that Cloud Scheduler calls."""
    raw, rejection = _accept(request, app, "stale_deals")
    if rejection is not None:
        return rejection

    try:
        body = _json_object(raw)
        at = schedule_time(request, body, app.clock.now())
    except InvalidInputError as exc:
        logger.error("stale check request is invalid, dropping it", extra={"error": str(exc)})
        return json_response(200, {"status": "ignored", "message": str(exc)})

    try:
        run = app.stale.run(at)
    except CrmError as exc:
        logger.warning("stale check failed, Cloud Scheduler will retry", extra={"error": str(exc)})
        return error_response(exc)
    # NOTE: the job name header is only logged; ids use the configured job so a renamed job cannot resend.
    logger.info("stale check request served", extra={"scheduler_job": request.headers.get(JOB_NAME_HEADER)})
    return json_response(200, run.as_dict())


PAGE = """<!doctype html><html lang="{lang}"><meta charset="utf-8">
<meta name="viewport" content="width=device-width"><title>{title}</title>
<body><p>{text_zh}</p><p>{text_en}</p>{form}</body></html>"""
CONFIRM_FORM = ('<form method="post"><input type="hidden" name="t" value="{token}">'
                '<button type="submit">取消訂閱 Unsubscribe</button></form>')


def _page(status: int, text_zh: str, text_en: str, form: str = "") -> flask.Response:
    body = PAGE.format(lang="zh-TW", title="取消訂閱 Unsubscribe", text_zh=text_zh, text_en=text_en, form=form)
    return flask.Response(body, status=status, mimetype="text/html")


def handle_unsubscribe(request: flask.Request, app: App) -> flask.Response:
    """Serve ``/unsubscribe``: GET shows a confirmation page, POST (RFC 8058 one-click or the page's form) opts out.

    The link is public, so the signed token is the only authority: GET never
    changes anything, because mail scanners follow links.
    """
    bind_request_context(request, app.project)
    token = request.args.get("t") or request.form.get("t") or ""
    if request.method not in ("GET", "POST"):
        return method_not_allowed(request.method, "GET, POST")
    try:
        claims = app.sequences.verify_unsubscribe(token)
    except InvalidInputError:
        return _page(400, "此取消訂閱連結無效或已損壞。", "This unsubscribe link is invalid or damaged.")
    if request.method == "GET":
        form = CONFIRM_FORM.format(token=html.escape(token, quote=True))
        return _page(200, "確定不再收到我們的電子郵件嗎？", "Stop receiving these emails?", form)
    try:
        app.sequences.opt_out(claims.contact_id, claims.sequence_id, "unsubscribe_link")
    except CrmError as exc:
        logger.warning("unsubscribe failed", extra={"error": str(exc)})
        return _page(503, "系統暫時忙碌，請稍後再試。", "Please try again in a few minutes.")
    return _page(200, "您已取消訂閱，之後不會再收到這類郵件。", "You are unsubscribed and will get no more of these emails.")


def handle_sequence_tick(request: flask.Request, app: App) -> flask.Response:
    """Serve ``POST /sequence_tick``: enrol new leads and send due sequence steps (Cloud Scheduler, every 5 minutes)."""
    return serve_private(request, app.project, "sequence_tick", lambda: {"outcomes": dict(app.sequences.tick())})
