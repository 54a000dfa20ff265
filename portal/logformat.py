"""Log lines as text (the default) or as one JSON object per line (``PORTAL_LOG_FORMAT``).

Both carry the request's id (``portal.requestid``). A JSON line has ``time`` (UTC),
``level``, ``logger``, ``message``, ``request_id`` and, for what is written while a
request runs, its ``method`` and ``path`` (never the query string); gunicorn's access
lines add ``status`` and ``duration_ms``, and a connector's lines say the call in
``backend`` (instance, method, route template, status, duration, attempt). Messages,
paths and tracebacks go through ``portal.logmask.scrub``: no calendar token, e-mail
address or bearer token, should one ever be quoted.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

from portal.logmask import scrub
from portal.requestid import current_request

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
#: What a connector's log records say of its call (``connectors.http.client``).
BACKEND_FIELDS = ("instance", "method", "route", "status", "duration_ms", "attempt")


def log_format() -> str:
    """``PORTAL_LOG_FORMAT`` as gunicorn's master reads it (before any settings)."""
    return os.environ.get("PORTAL_LOG_FORMAT", "text").strip().lower() or "text"


class RequestIdFilter(logging.Filter):
    """Gives every record a ``request_id`` (``-`` outside a request) for the text format."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            info = current_request.get()
            record.request_id = info.request_id if info is not None else "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        info = current_request.get()
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
            "request_id": getattr(record, "request_id", None)
            or (info.request_id if info is not None else None),
        }
        # An access line names its request; any other line the request being served.
        method = getattr(record, "http_method", None) or (info.method if info else None)
        path = getattr(record, "http_path", None) or (info.path if info else None)
        if method:
            entry["method"] = method
        if path:
            entry["path"] = scrub(str(path))
        for key in ("status", "duration_ms"):
            value = getattr(record, "http_" + key, None)
            if value is not None:
                entry[key] = value
        backend = {key: getattr(record, key) for key in BACKEND_FIELDS if hasattr(record, key)}
        if backend:
            entry["backend"] = backend
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        elif record.stack_info:
            entry["stack"] = scrub(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter(kind: str) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else logging.Formatter(TEXT_FORMAT)


def configure_root_logging(kind: str) -> None:
    """The root logger's one handler (standard error), in ``kind``'s format, every
    record with its request id. Called once per process, outside tests."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(kind))
    if kind != "json":
        handler.addFilter(RequestIdFilter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
