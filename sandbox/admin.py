"""Test-control API shared by every fake back-end of the sandbox.

Each back-end registers a reset hook, so ``POST /_admin/reset`` puts the whole sandbox
back to its default behaviour between two tests. The whole ``/_admin`` tree answers 404
when ``SANDBOX_ADMIN`` is false, so a demo instance cannot be steered by visitors.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Flask, Response, abort, current_app, jsonify

ResetHook = Callable[[], None]

_RESET_HOOKS = "sandbox_reset_hooks"

bp = Blueprint("admin", __name__, url_prefix="/_admin")


def admin_enabled() -> bool:
    """Whether the test-control API is switched on for the current app."""
    return bool(current_app.config.get("SANDBOX_ADMIN", True))


def require_admin() -> None:
    """``before_request`` guard for admin blueprints: hide them entirely when disabled."""
    if not admin_enabled():
        abort(404)


def register_reset_hook(app: Flask, hook: ResetHook) -> None:
    """Have ``hook`` run on ``POST /_admin/reset``."""
    app.extensions.setdefault(_RESET_HOOKS, []).append(hook)


bp.before_request(require_admin)


@bp.post("/reset")
def reset() -> Response:
    """Reset every fake back-end to its default behaviour."""
    for hook in current_app.extensions.get(_RESET_HOOKS, []):
        hook()
    return jsonify(status="reset")
