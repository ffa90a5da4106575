"""HTTP handlers of the scheduled and queued functions."""

from __future__ import annotations

import flask

from lib.bootstrap import App
from lib.entrypoints.auth import serve_private


def handle_dispatch(request: flask.Request, app: App) -> flask.Response:
    """Serve ``POST /dispatch_outbox``: perform every due outbox intent (Cloud Scheduler, every minute)."""
    return serve_private(request, app.project, "dispatch_outbox",
                         lambda: {"outcomes": dict(app.dispatcher.run_once())})
