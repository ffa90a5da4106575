"""Structured logging: one JSON object per line with ``severity``.

Cloud Logging reads ``severity``, ``message`` and ``logging.googleapis.com/trace``
from each line that a Cloud Function writes to stdout or stderr.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import sys

_trace = contextvars.ContextVar("trace", default=None)
_execution_id = contextvars.ContextVar("execution_id", default=None)
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def mask_email(address: str | None) -> str | None:
    """Return a log-safe form of an address: first letter, a hash and the domain."""
    if not address:
        return address
    local, _, domain = address.rpartition("@")
    digest = hashlib.sha256(address.lower().encode()).hexdigest()[:8]
    return f"{local[:1]}***#{digest}@{domain}" if local else f"***#{digest}"


def set_request_context(trace: str | None, execution_id: str | None) -> None:
    """Attach the request's trace and execution ids to every later log line."""
    _trace.set(trace)
    _execution_id.set(execution_id)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "severity": record.levelname if record.levelname != "WARNING" else "WARNING",
            "message": record.getMessage(),
            "logger": record.name,
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if _trace.get():
            entry["logging.googleapis.com/trace"] = _trace.get()
        if _execution_id.get():
            entry["execution_id"] = _execution_id.get()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: int = logging.INFO, stream=None) -> None:
    """Send the root logger's output to ``stream`` as JSON lines (idempotent)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, "_crm_json", False):
            return
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._crm_json = True
    root.addHandler(handler)
    root.setLevel(level)
