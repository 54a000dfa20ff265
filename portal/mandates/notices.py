"""The resident is told by e-mail when a mandate nears its end, once per mandate.

A ``mandate_notice`` row is written before sending, in its own transaction: its unique
key stops a second run, or a second worker, from sending again; a send that fails
removes the row, so that the next run tries again. Mandates of a day or of a visit get
no notice (their end is the day itself); the dashboard says it to the resident anyway.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from portal.config import current_settings
from portal.extensions import db
from portal.formatting import day
from portal.mandates import live_scopes, scope_title
from portal.models import Citizen, Mandate, MandateNotice
from portal.models._types import utcnow

log = logging.getLogger(__name__)

NOTIFIED_DURATIONS = ("1m", "6m", "1y")


def notify_ending(days: int = 7) -> tuple[int, int]:
    """Send the notices due; (sent, skipped). Runs outside requests (a command, a job):
    addresses are built against ``PORTAL_BASE_URL``."""
    with current_app.test_request_context(base_url=current_settings().base_url):
        return _notify_ending(days)


def _notify_ending(days: int) -> tuple[int, int]:
    from portal.notify import send_mail

    now = utcnow()
    due = db.session.scalars(
        db.select(Mandate)
        .where(Mandate.ends_at > now, Mandate.ends_at <= now + timedelta(days=days))
        .where(Mandate.duration.in_(NOTIFIED_DURATIONS))
        .where(~db.exists().where(MandateNotice.mandate_id == Mandate.id))
        .order_by(Mandate.id)
    ).all()
    sent = skipped = 0
    for mandate in due:
        scopes = live_scopes(mandate, now)
        citizen = db.session.get(Citizen, mandate.citizen_id)
        if not scopes or citizen is None or not citizen.email:
            skipped += 1
            continue
        notice = MandateNotice(mandate_id=mandate.id, kind="ending")
        db.session.add(notice)
        try:
            db.session.commit()
        except IntegrityError:  # another run took it
            db.session.rollback()
            continue
        try:
            with force_locale(citizen.preferred_locale or "fr"):
                subject, text = ending_message(mandate, sorted(scopes))
            delivered = send_mail(citizen.email, subject, text)
        except Exception:  # never leave a notice marked sent that was not
            log.exception("mandate %s: ending notice failed", mandate.id)
            delivered = False
        if delivered:
            sent += 1
        else:
            db.session.delete(notice)
            db.session.commit()
            skipped += 1
            log.info("mandate %s: ending notice not sent, to try again", mandate.id)
    return sent, skipped


def ending_message(mandate: Mandate, scopes: list[str]) -> tuple[str, str]:
    services = "\n".join(f"- {scope_title(scope)}" for scope in scopes)
    link = current_settings().base_url + url_for("my_mandates.index")
    subject = _("Votre mandat au guichet « %(desk)s » se termine bientôt", desk=mandate.desk_name)
    text = _(
        "Bonjour,\n\n"
        "Le mandat que vous avez donné à « %(desk)s » (référence %(reference)s) se "
        "termine le %(until)s. Il couvre :\n%(services)s\n\n"
        "Après cette date, le guichet ne pourra plus agir pour vous. Pour le renouveler, "
        "rendez-vous au guichet. Vous pouvez aussi y mettre fin avant, dans « Mes "
        "mandats » : %(link)s\n\n"
        "Le Compte territorial",
        desk=mandate.desk_name,
        reference=mandate.reference,
        until=day(mandate.ends_at),
        services=services,
        link=link,
    )
    return subject, text
