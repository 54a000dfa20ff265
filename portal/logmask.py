"""Access logs without the calendar feed's secret.

The feed URL ``/calendar/<token>.ics`` is the credential itself (calendar applications
send no cookie), and the database keeps only its hash: written in clear to an access
log, it would give the log's readers every resident's to-do list. Both servers the
portal runs under mask it: gunicorn through ``--logger-class
portal.logmask.GunicornLogger`` (see ``Procfile``), the development server through a
filter on the ``werkzeug`` logger (``install_dev_server_mask``).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from gunicorn.glogging import Logger

#: What stands in the log where the secret was.
MASK = "***"

# The feed lives at the root (``/calendar/<token>.ics``); ``/account/calendar/...`` are
# the resident's own pages and carry no secret.
_FEED_PATH_RE = re.compile(r"(?<!/account)(/calendar/)[^/?#\s\"]+?(\.ics)?(?=[?#\s\"]|$)")
_TOKEN_QUERY_RE = re.compile(r"([?&;]token=)[^&;#\s\"]*", re.IGNORECASE)


_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_BEARER_RE = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def scrub(text: str) -> str:
    """``mask`` and, in case a message ever quotes one, e-mail addresses and bearer
    tokens: what the JSON log lines (``portal.logformat``) write."""
    text = mask(text)
    if "@" in text:
        text = _EMAIL_RE.sub(MASK + "@" + MASK, text)
    if "earer" in text:
        text = _BEARER_RE.sub(lambda m: m.group(1) + MASK, text)
    return text


def mask(text: str) -> str:
    """``text`` with any calendar feed token replaced by ``MASK``."""
    if "calendar/" not in text and "token=" not in text.lower():
        return text
    text = _FEED_PATH_RE.sub(lambda m: f"{m.group(1)}{MASK}{m.group(2) or ''}", text)
    return _TOKEN_QUERY_RE.sub(lambda m: m.group(1) + MASK, text)


class GunicornLogger(Logger):
    """gunicorn's logger, with every access-log atom (request line, path, query, raw
    URI, referrer, environ values) masked before it is formatted."""

    #: ``PORTAL_LOG_FORMAT=json``, read once by ``setup``.
    json_lines = False

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        from portal.logformat import JsonFormatter, log_format

        self.json_lines = log_format() == "json"
        if self.json_lines:
            for logger in (self.error_log, self.access_log):
                for handler in logger.handlers:
                    handler.setFormatter(JsonFormatter())

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """With ``PORTAL_LOG_FORMAT=json``, one JSON line per request (the format's
        fields, not ``--access-logformat``'s): the method, the path without its query
        string, the status, the duration and the request's id the portal answered with."""
        if not self.json_lines:
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled:
            return
        request_id = next(
            (value for name, value in resp.headers if name.lower() == "x-request-id"), None
        )
        status = resp.status_code if isinstance(resp.status_code, int) else None
        path = mask(environ.get("PATH_INFO", ""))
        method = environ.get("REQUEST_METHOD", "")
        self.access_log.info(
            "%s %s %s",
            method,
            path,
            status,
            extra={
                "request_id": request_id,
                "http_method": method,
                "http_path": path,
                "http_status": status,
                "http_duration_ms": round(request_time.total_seconds() * 1000, 1),
            },
        )

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        return {
            key: mask(value) if isinstance(value, str) else value for key, value in atoms.items()
        }


class MaskFilter(logging.Filter):
    """Rewrites a record's message with the token masked (the development server logs
    its request line as an argument of the message)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def install_dev_server_mask() -> None:
    """Mask tokens in what ``flask run`` (werkzeug's server) logs; idempotent."""
    logger = logging.getLogger("werkzeug")
    if not any(isinstance(f, MaskFilter) for f in logger.filters):
        logger.addFilter(MaskFilter())
