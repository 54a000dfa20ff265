"""Reminders before deadlines: the resident's settings, the daily digest, unsubscribing.

``routes`` holds the resident's settings page (signed in, never for an adviser acting
under a mandate) and the unsubscribe pages (no sign-in: the signed token in the link is
the credential); ``digest`` the worker's job; ``kinds`` what may be reminded and when.
"""

from flask import Blueprint

bp = Blueprint("reminders", __name__, url_prefix="/reminders")

from portal.reminders import routes  # noqa: E402,F401  (registers the views)
