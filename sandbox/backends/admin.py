"""Test controls of the fake back-ends, under ``/_admin`` (JSON in and out).

- ``/_admin/faults/<kind>/<tenant>``: GET shows, POST sets, DELETE clears how one tenant
  misbehaves, so the portal's tests can prove it survives each failure over real HTTP;
  ``GET /_admin/faults`` lists every active fault.
- ``GET /_admin/proof-checks``: how many proofs of ownership each tenant has checked
  (``{"library/merignac": 3}``), well-formed or not.
- ``/_admin/payfip``: GET shows, POST changes the payment page's behaviour
  (``suppress_redirect``; ``session_lifetime_s``, after which a payment left pending is
  forgotten) and lists the payments started and the notifications sent.

``POST /_admin/reset`` (the shared admin blueprint) clears all of it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox.admin import require_admin
from sandbox.backends.common import backend_state
from sandbox.backends.state import (
    FAULT_MODES,
    MAX_HANG_S,
    TENANTS,
    Fault,
)

bp = Blueprint("backends_admin", __name__, url_prefix="/_admin")
bp.before_request(require_admin)

MAX_LATENCY_MS = 60_000


def _error(message: str, status: int = 400) -> tuple[Response, int]:
    return jsonify(error=message), status


def _known(kind: str, tenant: str) -> bool:
    return tenant in TENANTS.get(kind, ())


def _integer(value: Any, name: str, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} : doit être un entier positif ou nul")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} : au plus {maximum}")
    return value


def parse_fault(body: dict[str, Any]) -> Fault:
    """Validate a whole fault first, so a typo never leaves a tenant half-configured.

    Raises ValueError with a French message naming the offending key.
    """
    allowed = {"mode", "latency_ms", "retry_after", "hang_s", "writes_only"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValueError(f"clé inconnue : {', '.join(unknown)}")
    mode = body.get("mode")
    if mode not in FAULT_MODES:
        choices = ", ".join("null" if m is None else m for m in FAULT_MODES)
        raise ValueError(f"mode : valeurs possibles : {choices}")
    latency = body.get("latency_ms")
    retry_after = body.get("retry_after")
    hang_s = body.get("hang_s")
    writes_only = body.get("writes_only", False)
    if not isinstance(writes_only, bool):
        raise ValueError("writes_only : doit être true ou false")
    fault = Fault(mode=mode, writes_only=writes_only)
    if latency is not None:
        fault.latency_ms = _integer(latency, "latency_ms", MAX_LATENCY_MS)
    if retry_after is not None:
        fault.retry_after = _integer(retry_after, "retry_after")
    if hang_s is not None:
        if isinstance(hang_s, bool) or not isinstance(hang_s, int | float) or hang_s < 0:
            raise ValueError("hang_s : doit être un nombre positif ou nul")
        fault.hang_s = min(float(hang_s), MAX_HANG_S)
    return fault


@bp.get("/faults")
def list_faults() -> Response:
    state = backend_state()
    with state.lock:
        active = {f"{kind}/{tenant}": f.as_dict() for (kind, tenant), f in state.faults.items()}
    return jsonify(faults=active, tenants={kind: list(names) for kind, names in TENANTS.items()})


@bp.get("/faults/<kind>/<tenant>")
def get_fault(kind: str, tenant: str) -> Response | tuple[Response, int]:
    if not _known(kind, tenant):
        return _error(f"instance inconnue : {kind}/{tenant}", 404)
    return jsonify(backend_state().fault(kind, tenant).as_dict())


@bp.post("/faults/<kind>/<tenant>")
def set_fault(kind: str, tenant: str) -> Response | tuple[Response, int]:
    """Replace the tenant's fault: keys left out take their defaults
    (``latency_ms`` 0, ``retry_after`` 10, ``hang_s`` 30, bounded to 60; ``writes_only``
    false, true to misbehave on writes only while reads work)."""
    if not _known(kind, tenant):
        return _error(f"instance inconnue : {kind}/{tenant}", 404)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _error("Le corps de la requête doit être un objet JSON.")
    try:
        fault = parse_fault(body)
    except ValueError as error:
        return _error(str(error))
    backend_state().set_fault(kind, tenant, fault)
    return jsonify(fault.as_dict())


@bp.delete("/faults/<kind>/<tenant>")
def clear_fault(kind: str, tenant: str) -> Response | tuple[Response, int]:
    if not _known(kind, tenant):
        return _error(f"instance inconnue : {kind}/{tenant}", 404)
    backend_state().clear_fault(kind, tenant)
    return jsonify(Fault().as_dict())


def _payfip_snapshot() -> dict[str, Any]:
    state = backend_state()
    with state.lock:
        return {
            "suppress_redirect": state.payfip.suppress_redirect,
            "session_lifetime_s": state.payfip.session_lifetime_s,
            "payments": [
                {
                    "payment_id": p.payment_id,
                    "tenant": p.tenant,
                    "family_id": p.family_id,
                    "invoice_id": p.invoice_id,
                    "amount_cents": p.amount_cents,
                    "state": p.state,
                }
                for p in state.payments.values()
            ],
            "notifications": [
                {
                    "payment_id": n.payment_id,
                    "url": n.url,
                    "payload": n.payload,
                    "status": n.status,
                    "error": n.error,
                }
                for n in state.notifications
            ],
        }


@bp.get("/payfip")
def get_payfip() -> Response:
    return jsonify(_payfip_snapshot())


@bp.post("/payfip")
def set_payfip() -> Response | tuple[Response, int]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _error("Le corps de la requête doit être un objet JSON.")
    unknown = sorted(set(body) - {"suppress_redirect", "session_lifetime_s"})
    if unknown:
        return _error(f"clé inconnue : {', '.join(unknown)}")
    value = body.get("suppress_redirect", False)
    if value is None:
        value = False
    if not isinstance(value, bool):
        return _error("suppress_redirect : doit être un booléen")
    lifetime = body.get("session_lifetime_s")
    if lifetime is not None and (
        isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime < 0
    ):
        return _error("session_lifetime_s\u00a0: doit être un nombre positif ou nul, ou null")
    state = backend_state()
    with state.lock:
        state.payfip.suppress_redirect = value
        state.payfip.session_lifetime_s = None if lifetime is None else float(lifetime)
    return jsonify(_payfip_snapshot())


@bp.get("/proof-checks")
def proof_checks() -> Response:
    state = backend_state()
    with state.lock:
        return jsonify(dict(state.proof_checks))


@bp.get("/calls")
def calls() -> Response:
    """Requests each tenant received since the last reset (``kind/tenant`` → count): what
    a benchmark counts a page's back-end calls with."""
    state = backend_state()
    with state.lock:
        return jsonify(dict(state.calls))
