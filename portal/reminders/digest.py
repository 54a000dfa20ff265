"""The reminders job: one digest a day at most, per resident who turned reminders on.

For each such resident the job reads their to-do list from the back-ends (the readers
the dashboard uses, ``portal.dashboard.todo.read_todo``), keeps the items of the kinds
they chose whose deadline is within their lead time, and sends them in one message.

Never twice, with a database as the only referee (every queue is at least once):

1. the day's digest is claimed by inserting a ``reminder_digest`` row, unique per
   resident and day: a second run or a second worker at the same moment finds the row
   and leaves the resident alone;
2. each reminder is inserted as a ``reminder_sent`` row, unique by its key (resident,
   item, deadline, lead time); a key already there is dropped from the digest;
3. both are committed *before* sending; a send that fails deletes them, so the next
   run tries again. A worker killed between the commit and the end of the send leaves
   the digest ``sending``: that day's message is given up rather than risk a second.

A resident whose services were all read and had nothing due gets a ``nothing_due`` row
for the day instead, so the job, which runs every few minutes, reads each resident's
back-ends about once a day.

A service that cannot be read now (down, or only a stale copy) is skipped, not
failed: its items are unknown, and are not counted as sent, so a later run catches
them up under the same key (``kinds.lead_due``). Nothing is read, and nothing is
sent, for a resident who did not turn reminders on.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from flask import current_app, render_template, url_for
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from sqlalchemy.dialects import postgresql, sqlite

from portal.actor import Actor
from portal.config import current_settings
from portal.extensions import db
from portal.models import Citizen, Mandate, ReminderDigest, ReminderSent, ReminderSettings
from portal.models._types import utcnow
from portal.models.reminder import NOTHING_DUE
from portal.reminders.kinds import MANDATE_KIND, by_item_kind, clean_leads, lead_due
from portal.reminders.notifiers import EmailNotifier, Message, Notifier
from portal.reminders.tokens import unsubscribe_token
from portal.services.todo import PARIS, paris_today

log = logging.getLogger(__name__)

#: Mandates told by a reminder: those opened for a month or more (a day's or a visit's
#: mandate ends the day it starts).
REMINDED_MANDATE_DURATIONS = ("1m", "6m", "1y")


@dataclass(frozen=True)
class Due:
    """One reminder to send now: what, by when, under which lead time."""

    key: str
    kind: str
    uid: str
    on: date
    lead: int
    summary: str
    service_title: str
    url: str
    note: str = ""
    #: The link's words when the page acts on the item (renews a loan); "" to see it.
    link_label: str = ""


@dataclass
class Tally:
    sent: int = 0
    reminders: int = 0
    skipped_services: int = 0
    failed: int = 0

    def summary(self) -> str:
        return (
            f"{self.sent} digest(s) sent with {self.reminders} reminder(s), "
            f"{self.failed} not sent (to try again), "
            f"{self.skipped_services} service(s) unreadable (caught up later)"
        )


def reminder_key(citizen_id: int, uid: str, on: date, lead: int) -> str:
    return hashlib.sha256(f"{citizen_id}:{uid}:{on.isoformat()}:{lead}".encode()).hexdigest()


def send_reminders(notifier: Notifier | None = None) -> str:
    """The worker's job (``portal.jobs.schedule``): every resident's digest due today.
    Idempotent: run again the same day, it sends nothing more."""
    notifier = notifier or EmailNotifier()
    if not notifier.configured():
        return "mail is not configured (PORTAL_MAIL_URL, PORTAL_MAIL_FROM): nothing sent"
    tally = Tally()
    # Links in the messages are built against the portal's public address.
    with current_app.test_request_context(base_url=current_settings().base_url):
        today = paris_today()
        ids = db.session.scalars(
            sa.select(ReminderSettings.citizen_id)
            .where(ReminderSettings.enabled.is_(True), ReminderSettings.email != "")
            .where(
                ~sa.exists().where(
                    ReminderDigest.citizen_id == ReminderSettings.citizen_id,
                    ReminderDigest.day == today,
                )
            )
            .order_by(ReminderSettings.citizen_id)
        ).all()
        db.session.commit()  # no transaction held while the back-ends are read
        for citizen_id in ids:
            try:
                remind(citizen_id, today, notifier, tally)
            except Exception:  # one resident's trouble never stops the others
                db.session.rollback()
                tally.failed += 1
                log.exception("reminders: resident %s's digest failed", citizen_id)
    return tally.summary()


def remind(citizen_id: int, today: date, notifier: Notifier, tally: Tally) -> None:
    prefs = db.session.get(ReminderSettings, citizen_id)
    citizen = db.session.get(Citizen, citizen_id)
    if prefs is None or citizen is None or not prefs.enabled or not prefs.email:
        return
    leads = clean_leads(prefs.leads)
    with force_locale(prefs.locale or citizen.preferred_locale or "fr"):
        items, complete = _due_items(citizen_id, leads, today, tally)
        due = items + _due_mandates(citizen_id, leads, today)
        if due:
            already = set(
                db.session.scalars(
                    sa.select(ReminderSent.key).where(ReminderSent.key.in_([d.key for d in due]))
                )
            )
            due = [d for d in due if d.key not in already]
        db.session.commit()
        if not due:
            if complete:
                # Everything was read and nothing is due: not read again today.
                _claim_digest(citizen_id, today, notifier.channel, state=NOTHING_DUE)
            return
        digest_id = _claim_digest(citizen_id, today, notifier.channel)
        if digest_id is None:
            return  # another run has it
        kept = _claim_reminders(citizen_id, digest_id, due)
        if not kept:
            db.session.execute(sa.delete(ReminderDigest).where(ReminderDigest.id == digest_id))
            db.session.commit()
            return
        db.session.commit()
        message = digest_message(prefs.email, citizen, kept)
        try:
            delivered = notifier.send(message)
        except Exception:  # never leave reminders marked sent that were not
            log.exception("reminders: resident %s's digest could not be sent", citizen_id)
            delivered = False
    if delivered:
        db.session.execute(
            sa.update(ReminderDigest)
            .where(ReminderDigest.id == digest_id)
            .values(state="sent", sent_at=utcnow(), items=len(kept))
        )
        db.session.commit()
        tally.sent += 1
        tally.reminders += len(kept)
        log.info("reminders: resident %s sent %s reminder(s)", citizen_id, len(kept))
    else:
        db.session.execute(sa.delete(ReminderSent).where(ReminderSent.digest_id == digest_id))
        db.session.execute(sa.delete(ReminderDigest).where(ReminderDigest.id == digest_id))
        db.session.commit()
        tally.failed += 1
        log.info("reminders: resident %s's digest not sent, to try again", citizen_id)


def _due_items(
    citizen_id: int, leads: dict[str, list[int]], today: date, tally: Tally
) -> tuple[list[Due], bool]:
    """The to-do items due now, and whether every service could be read live."""
    if not any(name != MANDATE_KIND for name in leads):
        return [], True  # only mandates chosen: no back-end to read
    from portal.dashboard.todo import read_todo

    base_url = current_settings().base_url
    # Fresh reads only (no cache, and a stale copy does not count): a loan renewed
    # since the last good read must not be reminded.
    todo = read_todo(
        citizen_id,
        current_settings().card_deadline_s,
        0.0,
        actor=Actor.citizen(citizen_id, channel="reminders"),
    )
    readable = {service.slug for service in todo.services if service.state == "ok"}
    tally.skipped_services += len(todo.services) - len(readable)
    kinds = by_item_kind()
    due = []
    for item in todo.items:
        kind = kinds.get(item.kind)
        if kind is None or kind.name not in leads or item.slug not in readable:
            continue
        lead = lead_due((item.on - today).days, leads[kind.name])
        if lead is None:
            continue
        due.append(
            Due(
                key=reminder_key(citizen_id, item.uid, item.on, lead),
                kind=kind.name,
                uid=item.uid,
                on=item.on,
                lead=lead,
                summary=item.summary,
                service_title=item.service_title,
                url=base_url + item.path,
                note=item.note,
                link_label=str(kind.link_label) if kind.link_label else "",
            )
        )
    return due, len(readable) == len(todo.services)


def _due_mandates(citizen_id: int, leads: dict[str, list[int]], today: date) -> list[Due]:
    if MANDATE_KIND not in leads:
        return []
    from portal.mandates import live_scopes

    now = utcnow()
    mandates = db.session.scalars(
        sa.select(Mandate)
        .where(Mandate.citizen_id == citizen_id, Mandate.ends_at > now)
        .where(Mandate.duration.in_(REMINDED_MANDATE_DURATIONS))
        .order_by(Mandate.id)
    ).all()
    url = current_settings().base_url + url_for("my_mandates.index")
    due = []
    for mandate in mandates:
        if not live_scopes(mandate, now):
            continue
        ends_on = mandate.ends_at.astimezone(PARIS).date()
        lead = lead_due((ends_on - today).days, leads[MANDATE_KIND])
        if lead is None:
            continue
        uid = "mandate-" + hashlib.sha256(str(mandate.id).encode()).hexdigest()[:32]
        due.append(
            Due(
                key=reminder_key(citizen_id, uid, ends_on, lead),
                kind=MANDATE_KIND,
                uid=uid,
                on=ends_on,
                lead=lead,
                summary=_(
                    "Votre mandat au guichet « %(desk)s » se termine", desk=mandate.desk_name
                ),
                service_title=mandate.desk_name,
                url=url,
            )
        )
    return due


def _insert(model: Any) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` in the database's own dialect."""
    if db.engine.dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def _claim_digest(citizen_id: int, today: date, channel: str, state: str = "sending") -> int | None:
    statement = (
        _insert(ReminderDigest)
        .values(
            citizen_id=citizen_id,
            day=today,
            state=state,
            channel=channel,
            items=0,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["citizen_id", "day"])
        .returning(ReminderDigest.id)
    )
    digest_id = db.session.execute(statement).scalar_one_or_none()
    db.session.commit()
    return digest_id


def _claim_reminders(citizen_id: int, digest_id: int, due: list[Due]) -> list[Due]:
    """The reminders this digest carries: those whose key this insert wrote."""
    now = utcnow()
    statement = (
        _insert(ReminderSent)
        .values(
            [
                {
                    "key": d.key,
                    "citizen_id": citizen_id,
                    "digest_id": digest_id,
                    "kind": d.kind,
                    "due_on": d.on,
                    "lead_days": d.lead,
                    "created_at": now,
                }
                for d in due
            ]
        )
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(ReminderSent.key)
    )
    written = set(db.session.execute(statement).scalars())
    return [d for d in due if d.key in written]


def days_left_text(on: date, today: date) -> str:
    days = (on - today).days
    if days <= 0:
        return _("aujourd'hui")
    if days == 1:
        return _("demain")
    return ngettext("dans %(num)d jour", "dans %(num)d jours", days)


def digest_message(to: str, citizen: Citizen, due: list[Due]) -> Message:
    """The digest, as text and HTML, in the locale in force, with the one-click
    unsubscribe headers (RFC 8058)."""
    base_url = current_settings().base_url
    unsubscribe_url = base_url + url_for(
        "reminders.unsubscribe", token=unsubscribe_token(citizen.id)
    )
    settings_url = base_url + url_for("reminders.settings")
    context = {
        "citizen": citizen,
        "due": sorted(due, key=lambda d: (d.on, d.summary)),
        "today": paris_today(),
        "days_left": days_left_text,
        "unsubscribe_url": unsubscribe_url,
        "settings_url": settings_url,
    }
    subject = ngettext(
        "Compte territorial : %(num)d échéance à venir",
        "Compte territorial : %(num)d échéances à venir",
        len(due),
    )
    return Message(
        to=to,
        subject=subject,
        text=render_template("reminders/email.txt", **context),
        html=render_template("reminders/email.html", **context),
        headers={
            "List-Unsubscribe": f"<{unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "auto-generated",
        },
    )
