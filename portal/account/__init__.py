"""The resident's own account: my activity, my data (export, delete), what to do next
and the calendar feed of it.

Two blueprints: ``account`` under ``/account`` for the signed-in resident, and
``calendar_feed`` for the feed URL a calendar application polls. That one lives outside
``/account`` and needs no session: the secret token in its URL is the only credential.
"""

from flask import Blueprint

bp = Blueprint("account", __name__, url_prefix="/account")
feed_bp = Blueprint("calendar_feed", __name__)

from portal.account import routes  # noqa: E402,F401  (registers the views on both)
