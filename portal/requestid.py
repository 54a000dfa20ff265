"""One id per request: in the response, in every log line, and sent to the back-ends.

Every request gets an ``X-Request-Id``. Behind a trusted proxy (``PORTAL_TRUSTED_PROXIES``
≥ 1) a well-formed one the proxy sent is kept (nginx's ``$request_id``, a load balancer's
trace id), so the proxy's log and the portal's share it; otherwise, and whatever a
client wrote when no proxy is trusted, a new one is made. The response carries it back,
every log record written while the request runs carries it (``portal.logformat``), and
every connector call made meanwhile sends it as ``X-Request-Id``
(``connectors.base.current_request_id``), worker threads included (``carry_request``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from connectors.base import current_request_id
from portal.logmask import mask

HEADER = "X-Request-Id"
#: What an incoming id may be: a UUID, nginx's 32 hex digits, a tracing id; no spaces,
#: quotes or anything a log line could be forged with.
WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=-]{7,127}")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What the log lines of a request say about it: never its query string."""

    request_id: str
    method: str
    path: str


current_request: ContextVar[RequestInfo | None] = ContextVar("current_request", default=None)


def request_id_for(environ: dict[str, Any], trust_incoming: bool) -> str:
    incoming = environ.get("HTTP_X_REQUEST_ID", "")
    if trust_incoming and WELL_FORMED.fullmatch(incoming):
        return str(incoming)
    return uuid.uuid4().hex


class RequestIds:
    """WSGI middleware, outermost: the id is known before anything else runs (the host
    check's 400 carries it too) and set in the response's headers."""

    def __init__(self, wsgi_app: WSGIApp, *, trust_incoming: bool) -> None:
        self.wsgi_app = wsgi_app
        self.trust_incoming = trust_incoming

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request_id = request_id_for(environ, self.trust_incoming)
        environ["portal.request_id"] = request_id
        info = RequestInfo(
            request_id,
            str(environ.get("REQUEST_METHOD", "")),
            mask(str(environ.get("PATH_INFO", ""))),
        )

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            kept = [(name, value) for name, value in headers if name.lower() != "x-request-id"]
            return start_response(status, [*kept, (HEADER, request_id)], exc_info)

        request_token = current_request.set(info)
        id_token = current_request_id.set(request_id)
        try:
            return self.wsgi_app(environ, start)
        finally:
            current_request_id.reset(id_token)
            current_request.reset(request_token)


def carry_request(function: Callable[..., T]) -> Callable[..., T]:
    """``function`` with this request's id, for a worker thread (whose context starts
    empty): its log lines and its connector calls carry the request's id."""
    info = current_request.get()
    request_id = current_request_id.get()

    def carried(*args: Any, **kwargs: Any) -> T:
        request_token = current_request.set(info)
        id_token = current_request_id.set(request_id)
        try:
            return function(*args, **kwargs)
        finally:
            current_request_id.reset(id_token)
            current_request.reset(request_token)

    return carried


def init_request_ids(app: Any, trust_incoming: bool) -> None:
    app.wsgi_app = RequestIds(app.wsgi_app, trust_incoming=trust_incoming)
