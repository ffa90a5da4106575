"""HTTP edge helpers shared by the entry points: body limits, errors, JSON replies.

Domain errors become status codes here and nowhere else. A 4xx tells the sender
not to retry; a 503 asks Cloud Tasks, Pub/Sub or a webhook vendor to retry.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import flask

from lib.errors import (
    ConfigError,
    CrmError,
    InvalidInputError,
    PayloadTooLargeError,
    SignatureError,
    TransientError,
    UnknownSourceError,
    UnsupportedMediaTypeError,
)
from lib.logs import set_request_context

logger = logging.getLogger(__name__)

STATUS_BY_ERROR: tuple[tuple[type[CrmError], int, str], ...] = (
    (InvalidInputError, 400, "invalid_input"),
    (SignatureError, 401, "invalid_signature"),
    (UnknownSourceError, 404, "unknown_source"),
    (PayloadTooLargeError, 413, "payload_too_large"),
    (UnsupportedMediaTypeError, 415, "unsupported_media_type"),
    (TransientError, 503, "unavailable"),
    (ConfigError, 500, "configuration_error"),
)


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> flask.Response:
    response = flask.Response(json.dumps(body, ensure_ascii=False, default=str), status=status,
                              mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(exc: CrmError) -> flask.Response:
    """Map a domain error to its status code and a JSON body that names the problem."""
    for error_type, status, code in STATUS_BY_ERROR:
        if isinstance(exc, error_type):
            body: dict[str, Any] = {"error": code, "message": str(exc)}
            if isinstance(exc, InvalidInputError):
                body |= {"field": exc.field, "expected": exc.expected}
            return json_response(status, body)
    return json_response(500, {"error": "internal", "message": str(exc)})


def method_not_allowed(method: str, allowed: str = "POST") -> flask.Response:
    return json_response(405, {"error": "method_not_allowed",
                               "message": f"method {method} is not allowed; use {allowed}"},
                         {"Allow": allowed})


def read_body(request: flask.Request, limit: int) -> bytes:
    """Read the raw body, at most ``limit`` bytes.

    Raises:
        PayloadTooLargeError: the declared or actual length exceeds ``limit``.
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLargeError(f"request body of {declared} bytes exceeds the limit of {limit} bytes")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLargeError(f"request body exceeds the limit of {limit} bytes")
    return body


def bind_request_context(request: flask.Request, project: str | None) -> None:
    """Attach the Cloud Trace id and the execution id of ``request`` to later log lines."""
    header = request.headers.get("X-Cloud-Trace-Context", "")
    trace = None
    if header and project:
        trace = f"projects/{project}/traces/{header.split('/')[0]}"
    set_request_context(trace, request.headers.get("Function-Execution-Id"))
