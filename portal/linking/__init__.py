"""Prove-and-link a service account, and unlink it."""

from flask import Blueprint

bp = Blueprint("linking", __name__, url_prefix="/link")

from portal.linking import routes  # noqa: E402,F401
