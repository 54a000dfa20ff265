"""The resident's own account: my activity, my data (export, delete). What to do next
and its calendar feed are the dashboard's (``portal.dashboard``), at ``/account/...``."""

from flask import Blueprint

bp = Blueprint("account", __name__, url_prefix="/account")

from portal.account import routes  # noqa: E402,F401  (registers the views)
