"""A resident's reminder settings: read, turned on, changed, turned off.

Each function changes the row in the caller's transaction (the view commits, with the
journal line that says it)."""

from __future__ import annotations

from flask_babel import get_locale

from portal.extensions import db
from portal.i18n import DEFAULT_LOCALE, LOCALES
from portal.models import Citizen, ReminderDigest, ReminderSettings
from portal.models.reminder import NOTHING_DUE
from portal.reminders.kinds import clean_leads, default_leads
from portal.services.todo import paris_today


def _look_again_today(citizen_id: int) -> None:
    """Settings changed: today's "nothing due" check no longer holds."""
    db.session.execute(
        db.delete(ReminderDigest).where(
            ReminderDigest.citizen_id == citizen_id,
            ReminderDigest.day == paris_today(),
            ReminderDigest.state == NOTHING_DUE,
        )
    )


def settings_of(citizen_id: int) -> ReminderSettings | None:
    return db.session.get(ReminderSettings, citizen_id)


def is_on(citizen_id: int) -> bool:
    prefs = settings_of(citizen_id)
    return prefs is not None and prefs.enabled


def _locale() -> str:
    current = str(get_locale() or DEFAULT_LOCALE)
    return current if current in LOCALES else DEFAULT_LOCALE


def turn_on(citizen: Citizen) -> ReminderSettings:
    """On, to the FranceConnect address unless another was confirmed before, with the
    kinds chosen before or, the first time, every kind at its default lead times."""
    prefs = settings_of(citizen.id)
    if prefs is None:
        prefs = ReminderSettings(citizen_id=citizen.id, leads=default_leads(), pending_email="")
        db.session.add(prefs)
    prefs.enabled = True
    prefs.email = prefs.email or citizen.email
    prefs.leads = clean_leads(prefs.leads) or default_leads()
    prefs.locale = _locale()
    _look_again_today(citizen.id)
    return prefs


def change_leads(prefs: ReminderSettings, leads: dict[str, list[int]]) -> None:
    prefs.leads = clean_leads(leads)
    prefs.locale = _locale()
    _look_again_today(prefs.citizen_id)


def ask_address(prefs: ReminderSettings, email: str) -> None:
    """Remember the address to confirm; digests still go to the current one."""
    prefs.pending_email = email


def confirm_address(prefs: ReminderSettings, email: str) -> bool:
    """The link sent to ``email`` was followed: it becomes the digests' address, if it
    is still the one waiting (a newer request voids older links)."""
    if not email or prefs.pending_email.lower() != email.lower():
        return False
    prefs.email = prefs.pending_email
    prefs.pending_email = ""
    _look_again_today(prefs.citizen_id)
    return True


def turn_off(citizen_id: int) -> bool:
    """Off (kinds and address kept for a later turn on); True when it was on."""
    prefs = settings_of(citizen_id)
    if prefs is None or not prefs.enabled:
        return False
    prefs.enabled = False
    return True
