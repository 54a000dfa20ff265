"""The dashboard: the shell (``/``), the cards, the to-do list and its calendar feed.

Two blueprints: ``dashboard`` for the signed-in resident, and ``calendar_feed`` for the
feed URL a calendar application polls. That one needs no session: the secret token in
its URL is the only credential. Nothing here names a kind of service: each card, each
to-do item comes from the service's kind (``portal.services.kinds``).
"""

from flask import Blueprint

bp = Blueprint("dashboard", __name__)
feed_bp = Blueprint("calendar_feed", __name__)

from portal.dashboard import routes  # noqa: E402,F401  (registers the views on both)
