"""HTTP handlers of the scheduled and queued functions."""

from __future__ import annotations

import logging

import flask

from lib.bootstrap import App
from lib.entrypoints.auth import verify_caller
from lib.errors import CrmError
from lib.web import bind_request_context, error_response, json_response, method_not_allowed

logger = logging.getLogger(__name__)


def handle_dispatch(request: flask.Request, app: App) -> flask.Response:
    """Serve ``POST /dispatch_outbox``: perform every due outbox intent (Cloud Scheduler, every minute)."""
    bind_request_context(request, app.project)
    if request.method != "POST":
        return method_not_allowed(request.method)
    try:
        verify_caller(request, "dispatch_outbox")
        outcomes = app.dispatcher.run_once()
    except CrmError as exc:
        logger.warning("dispatch request failed", extra={"error": str(exc)})
        return error_response(exc)
    return json_response(200, {"outcomes": dict(outcomes)})
