"""What every fake back-end shares: tenants, faults, client authentication, problem+json
errors and Idempotency-Key handling.

A back-end blueprint is mounted once per *kind* with the tenant in its URL prefix
(``/library/<tenant>/...``); the request pipeline is the same for all of them:

1. the tenant must exist (404 otherwise);
2. the tenant's injected fault, if any, happens here, before anything else, as it would
   on a real server that is down or overloaded (except ``answer_late``, which lets a
   write be done and then holds its answer back, see ``hold_answer_back``);
3. the client must authenticate (API key or OAuth2 bearer token; Basic for Koha);
4. the view runs; standard writes go through ``idempotent`` so a replayed
   Idempotency-Key returns the first answer and never acts twice.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import socket
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, g, jsonify, make_response, request

from sandbox.backends.data import Dataset
from sandbox.backends.state import (
    ACCESS_TOKEN_TTL_S,
    CLIENT_ID,
    MAX_HANG_S,
    TENANTS,
    BackendState,
    Fault,
    api_key,
    client_secret,
    request_fingerprint,
)

STATE_KEY = "sandbox_backends"
PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:compte-territorial:problem:"
MAX_IDEMPOTENCY_KEY_LENGTH = 255

F = TypeVar("F", bound=Callable[..., Any])

#: Short English titles of the standard's problem codes (``detail`` carries the French
#: sentence a resident may read).
PROBLEM_TITLES: dict[str, str] = {
    "unauthorized": "Client authentication required",
    "not_found": "Resource not found",
    "invalid_request": "Invalid request",
    "missing_idempotency_key": "Idempotency-Key header required",
    "idempotency_key_reused": "Idempotency-Key reused for a different request",
    "rate_limited": "Too many requests",
    "unavailable": "Service temporarily unavailable",
    "internal_error": "Internal error",
    "invalid_proof": "Proof of ownership not accepted",
    "card_locked": "Card locked",
    "account_locked": "Account locked",
    "unknown_patron": "Unknown patron",
    "unknown_loan": "Unknown loan",
    "not_renewable": "Not renewable",
    "unknown_hold": "Unknown hold",
    "not_cancellable": "Hold cannot be cancelled",
    "unknown_family": "Unknown family",
    "unknown_child": "Unknown child",
    "unknown_invoice": "Unknown invoice",
    "pdf_unavailable": "Invoice PDF not available",
    "already_paid": "Invoice already paid",
    "unknown_payment": "Unknown payment",
    "unknown_application": "Unknown application",
    "outside_renewal_window": "Outside the renewal window",
    "unknown_contract": "Unknown contract",
    "unknown_alert": "Unknown alert",
    "contract_closed": "Contract closed",
    "below_last_reading": "Reading below the last one",
    "implausible_reading": "Implausible reading",
    "alert_closed": "Alert already answered",
    "deadline_passed": "Deadline passed",
    "attachment_rejected": "Attachment rejected",
}


class ProblemError(Exception):
    """Raised anywhere in a standard view to answer with a problem+json document."""

    def __init__(self, status: int, code: str, detail: str = "", **extra: Any) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra


# -- state -----------------------------------------------------------------------------------


def backend_state() -> BackendState:
    return current_app.extensions[STATE_KEY]


def dataset() -> Dataset:
    """The records for today (rebuilt if the day changed since the last request)."""
    return backend_state().current()


# -- responses -------------------------------------------------------------------------------


def problem(
    status: int,
    code: str,
    detail: str = "",
    *,
    title: str | None = None,
    retry_after: int | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """An RFC 9457 problem document with the standard's stable ``code``."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": title or PROBLEM_TITLES.get(code, code.replace("_", " ").capitalize()),
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    if retry_after is not None:
        body["retry_after"] = retry_after
    body.update(extra)
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_JSON)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def koha_error(
    status: int, error: str, error_code: str | None = None, *, retry_after: int | None = None
) -> Response:
    """Koha's own error shape: ``{"error": ..., "error_code": ...}``."""
    body: dict[str, str] = {"error": error}
    if error_code:
        body["error_code"] = error_code
    response = jsonify(body)
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def json_response(payload: Any, status: int = 200) -> Response:
    response = Response(
        json.dumps(payload, ensure_ascii=False), status=status, mimetype="application/json"
    )
    return response


def json_object() -> dict[str, Any]:
    """The request body, which must be a JSON object (422 ``invalid_request`` otherwise)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ProblemError(
            422, "invalid_request", "Le corps de la requête doit être un objet JSON."
        )
    return body


def handle_problem(error: ProblemError) -> Response:
    return problem(error.status, error.code, error.detail, **error.extra)


# -- tenants, faults, authentication ---------------------------------------------------------


def pop_tenant(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Move the tenant out of the view arguments: every view of a blueprint has one."""
    if values is not None and "tenant" in values:
        g.tenant = values.pop("tenant")


def apply_fault(kind: str, tenant: str, *, koha: bool = False) -> Response | None:
    """Misbehave as the admin API asked for this tenant, or return None to go on."""
    state = backend_state()
    state.count_call(kind, tenant)
    fault = state.fault(kind, tenant)
    if fault.writes_only and request.method in ("GET", "HEAD"):
        return None
    if fault.latency_ms:
        time.sleep(fault.latency_ms / 1000)
    mode = fault.mode
    if mode is None:
        return None
    if mode == "hang":
        return _hang(state, fault, koha=koha)
    if mode == "answer_late":
        # Acts first, answers late: the answer is held back after the view has run.
        g.answer_late = fault
        return None
    if mode == "reset":
        return _drop_connection()
    if mode == "error500":
        if koha:
            return koha_error(
                500,
                "Something went wrong, check Koha logs for details.",
                "internal_server_error",
            )
        return problem(500, "internal_error", "Erreur interne simulée par le bac à sable.")
    if mode == "rate_limit":
        if koha:
            return koha_error(
                429, "Too many requests", "too_many_requests", retry_after=fault.retry_after
            )
        return problem(
            429,
            "rate_limited",
            "Trop de requêtes : réessayez plus tard.",
            retry_after=fault.retry_after,
        )
    if mode == "unavailable":
        return _unavailable(fault, koha=koha)
    if mode == "malformed":
        # Claims to be JSON, is not: a proxy error page spliced into a truncated body.
        return Response(
            b'{"data": [1, 2, <html><body>502 Bad Gateway</body></html>',
            status=200,
            mimetype="application/json",
        )
    if mode == "wrong_schema":
        # Valid JSON that lacks every field a client relies on.
        return json_response({"status": "ok", "data": None})
    return None


def _unavailable(fault: Fault, *, koha: bool) -> Response:
    if koha:
        return koha_error(
            503, "System is under maintenance.", "under_maintenance", retry_after=fault.retry_after
        )
    return problem(
        503,
        "unavailable",
        "Service momentanément indisponible.",
        retry_after=fault.retry_after,
    )


def _hang(state: BackendState, fault: Fault, *, koha: bool) -> Response:
    """Answer nothing for ``hang_s`` seconds (a reset or a changed fault ends it early),
    then a 503, for the rare client patient enough to wait that long."""
    with state.lock:
        event = state.release
    event.wait(min(max(fault.hang_s, 0.0), MAX_HANG_S))
    return _unavailable(fault, koha=koha)


def hold_answer_back(response: Response) -> Response:
    """``answer_late``: the write has been done (and its answer stored for its
    Idempotency-Key, replays included) but its answer is held back for ``hang_s``
    seconds, past a client's read timeout, as on a server that processed a request and
    then stalled. Reads answer at once. A reset or a changed fault ends the wait early."""
    fault = g.pop("answer_late", None)
    if fault is None or request.method in ("GET", "HEAD"):
        return response
    state = backend_state()
    with state.lock:
        event = state.release
    event.wait(min(max(fault.hang_s, 0.0), MAX_HANG_S))
    return response


def _drop_connection() -> Response:
    """Close the TCP connection without sending a byte of answer.

    Needs the socket, which Werkzeug's server exposes as ``werkzeug.socket`` (``flask
    run`` and the tests' loopback servers). Without it (a test client, another WSGI
    server), raising is the closest thing: the caller gets no HTTP answer either.
    """
    sock = request.environ.get("werkzeug.socket")
    if sock is None:
        raise ConnectionAbortedError("connection reset by the sandbox (fault injection)")
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    # Werkzeug's attempt to write this response will fail quietly (broken pipe).
    return Response(b"", status=500)


def standard_credentials_ok(kind: str, tenant: str) -> bool:
    """An ``X-Api-Key`` or an OAuth2 bearer token issued by this tenant."""
    key = request.headers.get("X-Api-Key")
    if key is not None:
        return hmac.compare_digest(key.encode(), api_key(kind, tenant).encode())
    token = bearer_token()
    return token is not None and backend_state().token_valid(token, kind, tenant)


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def client_credentials_ok(kind: str, tenant: str) -> tuple[bool, bool]:
    """Check an OAuth2 token request's client (``client_secret_post`` or HTTP Basic).

    Returns (valid, used_basic) so a failed Basic attempt gets the WWW-Authenticate
    challenge RFC 6749 asks for.
    """
    authorization = request.authorization
    if authorization is not None and authorization.type == "basic":
        client_id = authorization.username or ""
        secret = authorization.password or ""
        used_basic = True
    else:
        client_id = request.form.get("client_id", "")
        secret = request.form.get("client_secret", "")
        used_basic = False
    valid = hmac.compare_digest(client_id.encode(), CLIENT_ID.encode()) and hmac.compare_digest(
        secret.encode(), client_secret(kind, tenant).encode()
    )
    return valid, used_basic


def standard_blueprint(kind: str, import_name: str) -> Blueprint:
    """A blueprint for one kind of standard API, mounted at ``/<kind>/<tenant>``."""
    bp = Blueprint(f"backend_{kind}", import_name, url_prefix=f"/{kind}/<tenant>")
    bp.url_value_preprocessor(pop_tenant)
    bp.register_error_handler(ProblemError, handle_problem)
    bp.after_request(hold_answer_back)

    @bp.before_request
    def _pipeline() -> Response | None:
        tenant = g.get("tenant", "")
        g.kind = kind
        if tenant not in TENANTS[kind]:
            return problem(404, "not_found", f"Instance inconnue : {kind}/{tenant}.")
        faulty = apply_fault(kind, tenant)
        if faulty is not None:
            return faulty
        if request.endpoint == f"{bp.name}.token":
            return None
        if not standard_credentials_ok(kind, tenant):
            return problem(
                401,
                "unauthorized",
                "Clé d'API ou jeton d'accès absent, invalide ou expiré.",
                headers={"WWW-Authenticate": f'Bearer realm="{kind}/{tenant}"'},
            )
        return None

    @bp.post("/oauth/token")
    def token() -> Response:
        """OAuth2 client credentials grant (RFC 6749 §4.4) for this tenant."""
        valid, used_basic = client_credentials_ok(kind, g.tenant)
        if not valid:
            response = jsonify(error="invalid_client")
            response.status_code = 401
            if used_basic:
                response.headers["WWW-Authenticate"] = f'Basic realm="{kind}/{g.tenant}"'
            return _no_store(response)
        if request.form.get("grant_type") != "client_credentials":
            response = jsonify(error="unsupported_grant_type")
            response.status_code = 400
            return _no_store(response)
        access_token = backend_state().issue_token(kind, g.tenant)
        return _no_store(
            jsonify(access_token=access_token, token_type="Bearer", expires_in=ACCESS_TOKEN_TTL_S)
        )

    @bp.route(
        "/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], endpoint="not_found"
    )
    def not_found(rest: str) -> Response:
        return problem(404, "not_found", "Cette adresse n'existe pas dans l'API.")

    return bp


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


# -- idempotency -----------------------------------------------------------------------------


def idempotent(view: F) -> F:
    """Make a standard write safe to retry.

    The Idempotency-Key header is required. The first answer (anything but a 5xx) is
    stored for the tenant and key, and replayed, byte for byte, for the same request; the
    same key on a different request is refused (422). The whole check-act-store runs under
    the state lock, so two concurrent requests with one key cannot both act.
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            return problem(
                400,
                "missing_idempotency_key",
                "L'en-tête Idempotency-Key est obligatoire pour cette opération.",
            )
        if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
            return problem(
                422, "invalid_request", "L'en-tête Idempotency-Key dépasse 255 caractères."
            )
        state = backend_state()
        scope = (g.kind, g.tenant, key)
        fingerprint = request_fingerprint(request.method, request.path, request.get_data())
        with state.lock:
            stored = state.stored_response(scope)
            if stored is not None:
                if not hmac.compare_digest(stored.fingerprint, fingerprint):
                    return problem(
                        422,
                        "idempotency_key_reused",
                        "Cette clé d'idempotence a déjà servi pour une autre requête.",
                    )
                replay = Response(stored.body, status=stored.status, headers=stored.headers)
                replay.headers["Idempotent-Replayed"] = "true"
                return replay
            try:
                response = make_response(view(*args, **kwargs))
            except ProblemError as error:
                response = handle_problem(error)
            if response.status_code < 500:
                kept = {
                    name: value
                    for name, value in response.headers.items()
                    if name.lower() in ("content-type", "location")
                }
                state.store_response(
                    scope, fingerprint, response.status_code, response.get_data(), kept
                )
            return response

    return wrapper  # type: ignore[return-value]
