"""The to-do list as an iCalendar feed a calendar application can subscribe to.

The feed URL carries a random token and nothing else: calendar applications send no
cookie, so the token is the credential. Only its SHA-256 is stored, like a password
hash: a copy of the database does not give anyone the residents' feeds. Creating a new
URL replaces the old one; revoking clears the hash, and the URL answers 404 at once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import timedelta

from flask_babel import gettext as _
from icalendar import Calendar, Event, vDuration

from portal.config import current_settings
from portal.extensions import db
from portal.models import Citizen
from portal.models._types import utcnow
from portal.services.todo import TodoItem

#: 32 random bytes, as ``secrets.token_urlsafe`` writes them (43 characters).
TOKEN_BYTES = 32
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43,128}$")
#: How often calendar applications are invited to refresh.
REFRESH_INTERVAL = timedelta(hours=6)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def create_feed(citizen: Citizen) -> str:
    """A new token for ``citizen`` (any previous feed URL stops working); the caller
    shows it once and commits."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    citizen.calendar_token_hash = token_hash(token)
    return token


def revoke_feed(citizen: Citizen) -> None:
    citizen.calendar_token_hash = None


def citizen_for_token(token: str) -> Citizen | None:
    if not TOKEN_RE.fullmatch(token):
        return None
    return db.session.execute(
        db.select(Citizen).filter_by(calendar_token_hash=token_hash(token))
    ).scalar_one_or_none()


def build_calendar(items: Iterable[TodoItem]) -> bytes:
    """One all-day event per item. Only what the item needs: what to do, by when, at
    which service, and the link to do it; never an account number."""
    base_url = current_settings().base_url
    stamp = utcnow()
    cal = Calendar()
    cal.add("prodid", "-//Compte territorial//À faire//FR")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", _("Compte territorial : à faire"))
    cal.add("refresh-interval", REFRESH_INTERVAL, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", vDuration(REFRESH_INTERVAL))
    for item in items:
        event = Event()
        event.add("uid", item.uid)
        event.add("dtstamp", stamp)
        event.add("dtstart", item.on)
        event.add("dtend", item.on + timedelta(days=1))
        event.add("summary", f"{item.summary} – {item.service_title}")
        url = base_url + item.path
        description = [item.note] if item.note else []
        description.append(url)
        event.add("description", "\n".join(description))
        event.add("url", url)
        event.add("transp", "TRANSPARENT")
        cal.add_component(event)
    return cal.to_ical()
