"""One page per linked service, and the dashboard cards, generic over the connector
protocols: the category says what a view may ask, never the concrete type."""

from flask import Blueprint

bp = Blueprint("services", __name__, url_prefix="/services")

from portal.services import actions, routes  # noqa: E402,F401
