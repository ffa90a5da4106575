"""Cloud Functions entry points. Each one only hands the request to ``lib``.

Deployed with ``lib/`` beside this file; locally served by functions-framework.
"""

from __future__ import annotations

import functions_framework
import flask

from lib import bootstrap, logs
from lib.entrypoints import followups, gmail, intake, operations

logs.configure()


@functions_framework.http
def intake_form(request: flask.Request) -> flask.Response:
    return intake.handle_form(request, bootstrap.app())


@functions_framework.http
def intake_webhook(request: flask.Request) -> flask.Response:
    return intake.handle_webhook(request, bootstrap.app())


@functions_framework.http
def dispatch_outbox(request: flask.Request) -> flask.Response:
    return operations.handle_dispatch(request, bootstrap.app())


@functions_framework.http
def followup(request: flask.Request) -> flask.Response:
    return followups.handle_followup(request, bootstrap.app())


@functions_framework.http
def stale_deals(request: flask.Request) -> flask.Response:
    return followups.handle_stale_deals(request, bootstrap.app())


@functions_framework.http
def sequence_tick(request: flask.Request) -> flask.Response:
    return followups.handle_sequence_tick(request, bootstrap.app())


@functions_framework.http
def unsubscribe(request: flask.Request) -> flask.Response:
    return followups.handle_unsubscribe(request, bootstrap.app())


@functions_framework.cloud_event
def gmail_push(event) -> None:
    """Handle a Gmail push notification from Pub/Sub through Eventarc; an exception makes Eventarc redeliver."""
    gmail.handle_cloud_event(event, bootstrap.app())


def gmail_push_http(request: flask.Request) -> flask.Response:
    """Handle the same notification as a plain Pub/Sub push envelope over HTTP (local router only)."""
    return gmail.handle_push_http(request, bootstrap.app())


@functions_framework.http
def gmail_watch(request: flask.Request) -> flask.Response:
    return gmail.handle_watch(request, bootstrap.app())


HTTP_FUNCTIONS = {
    "intake_form": intake_form,
    "intake_webhook": intake_webhook,
    "dispatch_outbox": dispatch_outbox,
    "followup": followup,
    "stale_deals": stale_deals,
    "sequence_tick": sequence_tick,
    "unsubscribe": unsubscribe,
    "gmail_push": gmail_push_http,
    "gmail_watch": gmail_watch,
}


@functions_framework.http
def local_router(request: flask.Request) -> flask.Response:
    """Serve every function on one local port under ``/<function_name>`` (local runs only)."""
    name = request.path.strip("/").split("/")[0]
    handler = HTTP_FUNCTIONS.get(name)
    if handler is None:
        return flask.Response(f"no function named {name!r}; serving {', '.join(sorted(HTTP_FUNCTIONS))}\n",
                              status=404, mimetype="text/plain")
    return handler(request)
