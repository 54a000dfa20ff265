"""Test controls of the identity provider, under ``/_admin/idp``.

They let the portal's tests make the provider misbehave in one precise way at a time,
over real HTTP, and prove the portal refuses each failure.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from sandbox.admin import require_admin
from sandbox.idp.routes import idp_state

bp = Blueprint("idp_admin", __name__, url_prefix="/_admin/idp")
bp.before_request(require_admin)


@bp.get("/behaviour")
def get_behaviour() -> Response:
    """Current behaviour, plus the active ``signing_alg`` and ``kid``."""
    return jsonify(idp_state().behaviour_snapshot())


@bp.post("/behaviour")
def update_behaviour() -> Response | tuple[Response, int]:
    """Merge a JSON object into the behaviour; ``null`` restores a key's default.

    Unknown keys and bad values are refused as a whole (400), so a typo in a test
    cannot silently leave the provider well-behaved.
    """
    changes = request.get_json(silent=True)
    if not isinstance(changes, dict):
        return jsonify(error="Le corps de la requête doit être un objet JSON."), 400
    try:
        snapshot = idp_state().update_behaviour(changes)
    except ValueError as error:
        return jsonify(error=str(error)), 400
    return jsonify(snapshot)


@bp.post("/rotate-keys")
def rotate_keys() -> Response:
    """Replace the signing key: new ``kid``, old key gone from the JWKS."""
    state = idp_state()
    with state.lock:
        previous_kid = state.keys.kid
        state.keys.rotate()
        return jsonify(kid=state.keys.kid, previous_kid=previous_kid, alg=state.keys.alg)
