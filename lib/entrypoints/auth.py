"""Caller authentication of the private functions (Cloud Tasks, Scheduler, Pub/Sub push).

Environment:
    CRM_FUNCTION_BASE_URL: base URL; a function's audience is ``<base>/<name>``.
    CRM_INVOKER_EMAILS: comma-separated service accounts allowed to call.
    CRM_OIDC_CERTS_FILE: JSON map of key id to PEM for a local issuer. When set,
        tokens of the local issuer are accepted instead of Google's (local runs only).
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flask

from lib.adapters.oidc import LOCAL_ISSUER, OidcVerifier
from lib.errors import ConfigError, CrmError
from lib.web import bind_request_context, error_response, json_response, method_not_allowed

logger = logging.getLogger(__name__)


def audience(function_name: str) -> str:
    base = os.environ.get("CRM_FUNCTION_BASE_URL")
    if not base:
        raise ConfigError("CRM_FUNCTION_BASE_URL is not set; it is the base URL of the deployed functions")
    return f"{base.rstrip('/')}/{function_name}"


@functools.lru_cache(maxsize=16)
def _verifier(function_name: str, emails: str, certs_file: str | None) -> OidcVerifier:
    allowed = [email.strip() for email in emails.split(",") if email.strip()]
    if not allowed:
        raise ConfigError("CRM_INVOKER_EMAILS is not set; list the service accounts allowed to call")
    if certs_file:
        certs = json.loads(Path(certs_file).read_text(encoding="utf-8"))
        return OidcVerifier([audience(function_name)], allowed, issuers=(LOCAL_ISSUER,), certs=certs)
    return OidcVerifier([audience(function_name)], allowed)


def verify_caller(request: flask.Request, function_name: str) -> dict:
    """Verify the request's OIDC token for ``function_name`` and return its claims.

    Raises:
        SignatureError: the token is missing or invalid (HTTP 401).
        ConfigError: the environment does not say whom to accept.
    """
    verifier = _verifier(function_name, os.environ.get("CRM_INVOKER_EMAILS", ""),
                         os.environ.get("CRM_OIDC_CERTS_FILE") or None)
    return verifier.verify(request.headers.get("Authorization"))


def serve_private(request: flask.Request, project: str, function_name: str,
                  run: Callable[[], dict[str, Any]]) -> flask.Response:
    """Serve a scheduled function: POST only, a verified caller, then ``run`` and its JSON.

    A domain error from the token check or from ``run`` is logged and mapped to its
    status code (401 for a bad token, 503 for a failure a retry can fix).
    """
    bind_request_context(request, project)
    if request.method != "POST":
        return method_not_allowed(request.method)
    try:
        verify_caller(request, function_name)
        body = run()
    except CrmError as exc:
        logger.warning("%s request failed", function_name, extra={"error": str(exc)})
        return error_response(exc)
    return json_response(200, body)
