""" "Mes mandats": the resident's side of mandates.

A resident sees every mandate they gave a help desk (active first, then ended), what it
covers, until when, and every action an adviser took under it; they revoke it, whole or
one service at a time, online, in one confirmed step that takes effect at once. Only
their own: another resident's mandate is not found. An adviser acting for the resident
(``g.actor.assisted``) may neither see nor change them.

The dashboard's notices (``dashboard_notices``) and the e-mail sent when a mandate is
opened (``notify_mandate_opened``, called by the desk visit after its commit) are here
too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, abort, flash, g, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import exists, or_
from werkzeug.wrappers import Response
from wtforms import HiddenField

from portal.account.activity import (
    adviser_names,
    outcome_label,
    service_title,
)
from portal.actor import Actor, current_actor
from portal.auth.session import login_required, see_other
from portal.config import current_settings
from portal.extensions import db
from portal.formatting import day, when
from portal.journal_text import journal_line
from portal.journeys import journey
from portal.mandates import (
    CHANNEL_LABELS,
    desk_journal,
    find_by_reference,
    live_scopes,
    revoke,
    scope_title,
    status_of,
)
from portal.models import Citizen, Desk, JournalEntry, Mandate, MandateRevocation
from portal.models._types import utcnow

bp = Blueprint("my_mandates", __name__, url_prefix="/account/mandates")
log = logging.getLogger(__name__)

#: How long a newly opened mandate, and one about to end, is shown on the dashboard.
NOTICE_WINDOW = timedelta(days=7)
#: The order of the list: in force first, then ended.
STATUS_ORDER = {"active": 0, "expired": 1, "revoked": 2}
STATUS_LABELS = {
    "active": _l("En cours"),
    "expired": _l("Terminé"),
    "revoked": _l("Révoqué"),
}
#: Durations short enough that their end is a time of day, not only a date.
SHORT_DURATIONS = ("visit", "1d")


class RevokeForm(FlaskForm):
    """One click, after the confirmation page: the form token, and the service if one."""

    scope = HiddenField()


# -- who may come here ---------------------------------------------------------------------


@bp.before_request
def refuse_advisers() -> tuple[str, int] | None:
    """An adviser acting for the resident never sees nor changes the resident's mandates:
    what they may do is the resident's decision alone."""
    actor = g.get("actor")
    if isinstance(actor, Actor) and actor.assisted:
        return render_template("account/mandates_refused.html"), 403
    return None


def own_mandate(reference: str) -> Mandate:
    """The signed-in resident's mandate by its reference; 404 for anyone else's, or for
    anything that is not a reference."""
    mandate = find_by_reference(reference[:40])
    if mandate is None or mandate.citizen_id != g.citizen.id:
        abort(404)
    return mandate


def locked_own_mandate(reference: str) -> Mandate:
    """The same, its row locked until the commit (PostgreSQL): two revocations sent at
    once (two tabs, a double click) are decided one after the other, on fresh rows."""
    own = own_mandate(reference)
    mandate = db.session.execute(
        db.select(Mandate)
        .where(Mandate.id == own.id)
        .with_for_update(of=Mandate)
        .execution_options(populate_existing=True)
    ).scalar_one()
    db.session.expire(mandate, ["revocations"])
    return mandate


# -- the list ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceLine:
    scope: str
    title: str
    live: bool
    #: When this one service was revoked on its own (None: it was not).
    revoked_at: datetime | None


@dataclass
class MandateView:
    mandate: Mandate
    status: str
    services: list[ServiceLine]
    #: When it stopped or stops: its end, or when it was revoked whole.
    ended_at: datetime
    actions: list[JournalEntry] = field(default_factory=list)

    @property
    def desk(self) -> Desk:
        return self.mandate.desk

    @property
    def status_label(self) -> str:
        return str(STATUS_LABELS[self.status])

    @property
    def short(self) -> bool:
        return self.mandate.duration in SHORT_DURATIONS

    @property
    def live_count(self) -> int:
        return sum(1 for service in self.services if service.live)


def mandate_view(mandate: Mandate, now: datetime) -> MandateView:
    live = live_scopes(mandate, now)
    revoked_alone = {r.scope: r.at for r in mandate.revocations if r.scope is not None}
    whole = [r.at for r in mandate.revocations if r.scope is None]
    services = [
        ServiceLine(
            row.scope, scope_title(row.scope), row.scope in live, revoked_alone.get(row.scope)
        )
        for row in mandate.scopes
    ]
    ended = min([mandate.ends_at, *whole])
    return MandateView(mandate, status_of(mandate, now), services, ended)


def mandates_of(citizen_id: int) -> list[MandateView]:
    """Every mandate of the resident, in force first, each newest first, with the actions
    taken under it (three queries, whatever the number of mandates: the mandates with
    their desks, services and revocations; their journal entries; the advisers)."""
    now = utcnow()
    mandates = db.session.execute(
        db.select(Mandate)
        .filter_by(citizen_id=citizen_id)
        .options(db.joinedload(Mandate.desk))
        .order_by(Mandate.starts_at.desc(), Mandate.id.desc())
    ).scalars()
    views = [mandate_view(m, now) for m in mandates]
    views.sort(key=lambda v: STATUS_ORDER.get(v.status, 3))
    by_id = {view.mandate.id: view for view in views}
    if by_id:
        entries = db.session.execute(
            db.select(JournalEntry)
            .filter_by(citizen_id=citizen_id)
            .where(JournalEntry.mandate_id.in_(by_id))
            .order_by(JournalEntry.at.desc(), JournalEntry.id.desc())
        ).scalars()
        for entry in entries:
            by_id[entry.mandate_id or 0].actions.append(entry)
    return views


@bp.get("")
@login_required
@journey("account", "mandates")
def index() -> str:
    views = mandates_of(g.citizen.id)
    names = adviser_names(entry for view in views for entry in view.actions)
    return render_template(
        "account/mandates.html",
        views=views,
        adviser_names=names,
        journal_line=journal_line,
        service_title=service_title,
        outcome_label=outcome_label,
        channel_label=channel_label,
    )


def channel_label(channel: str) -> str:
    label = CHANNEL_LABELS.get(channel)
    return str(label) if label is not None else _("En ligne")


# -- revoking ------------------------------------------------------------------------------


def _scope_asked(mandate: Mandate, raw: str | None) -> str | None:
    """The service named in the request, or None for the whole mandate; 404 for a
    service this mandate never covered."""
    if not raw:
        return None
    if raw not in {row.scope for row in mandate.scopes}:
        abort(404)
    return raw


@bp.get("/<reference>/revoke")
@login_required
@journey("account", "mandate-revoke")
def confirm_revoke(reference: str) -> str:
    mandate = own_mandate(reference)
    scope = _scope_asked(mandate, request.args.get("scope"))
    now = utcnow()
    view = mandate_view(mandate, now)
    live = live_scopes(mandate, now)
    form = RevokeForm(scope=scope or "")
    return render_template(
        "account/mandates_revoke.html",
        view=view,
        scope=scope,
        scope_title=scope_title(scope) if scope else "",
        nothing_left=not live,
        already_revoked=scope is not None and bool(live) and scope not in live,
        # Revoking the last service in force ends the whole mandate: the page says so.
        last_service=scope is not None and live == {scope},
        form=form,
    )


@bp.post("/<reference>/revoke")
@login_required
@journey("account", "mandate-revoke-confirm")
def revoke_post(reference: str) -> Response:
    form = RevokeForm()
    if not form.validate_on_submit():  # pragma: no cover  (the token is checked first)
        abort(400)
    mandate = locked_own_mandate(reference)
    scope = _scope_asked(mandate, form.scope.data)
    citizen: Citizen = g.citizen
    row = revoke(mandate, scope, by_kind="citizen", by_id=str(citizen.id))
    if row is None:
        db.session.rollback()
        if scope is not None and live_scopes(mandate):
            message = _("Ce service n'était déjà plus couvert par ce mandat : rien n'a changé.")
        else:
            message = _("Ce mandat avait déjà pris fin : rien n'a changé.")
        flash(message, "info")
        return see_other(url_for("my_mandates.index"))
    whole = row.scope is None
    desk_journal(
        mandate.desk_id,
        "mandate_revoked" if whole else "scope_revoked",
        mandate=mandate,
        params={"by": "citizen", "scope": row.scope},
    )
    params: dict[str, Any] = {"desk": mandate.desk_name, "reference": mandate.reference}
    if not whole:
        params["scope"] = row.scope
    elif scope is not None:
        # The last service in force: the whole mandate ended with it.
        params["last_scope"] = scope
    JournalEntry.record(
        citizen.id,
        "mandate_revoked" if whole else "mandate_scope_revoked",
        actor=current_actor(),
        params=params,
    )
    db.session.commit()
    if whole:
        flash(
            _(
                "Le mandat est révoqué : « %(desk)s » ne peut plus rien faire pour vous, "
                "dès maintenant.",
                desk=mandate.desk_name,
            ),
            "success",
        )
    else:
        flash(
            _(
                "« %(service)s » n'est plus couvert par le mandat, dès maintenant. Les autres "
                "services du mandat restent couverts.",
                service=scope_title(row.scope or ""),
            ),
            "success",
        )
    return see_other(url_for("my_mandates.index"))


# -- the dashboard's notices ----------------------------------------------------------------


@dataclass(frozen=True)
class MandateNotice:
    kind: str  # "opened" or "ending"
    desk_name: str
    channel: str
    at: datetime
    short: bool


def dashboard_notices(citizen_id: int) -> list[MandateNotice]:
    """Mandates opened in the last ``NOTICE_WINDOW``, and those in force ending within
    it: one query, of the few columns said."""
    now = utcnow()
    revoked_whole = exists().where(
        MandateRevocation.mandate_id == Mandate.id, MandateRevocation.scope.is_(None)
    )
    rows = db.session.execute(
        db.select(
            Mandate.starts_at,
            Mandate.ends_at,
            Mandate.desk_name,
            Mandate.channel,
            Mandate.duration,
            revoked_whole.label("revoked"),
        )
        .filter_by(citizen_id=citizen_id)
        .where(
            or_(
                Mandate.starts_at >= now - NOTICE_WINDOW,
                (Mandate.ends_at > now) & (Mandate.ends_at <= now + NOTICE_WINDOW),
            )
        )
        .order_by(Mandate.starts_at.desc())
    ).all()
    notices: list[MandateNotice] = []
    for row in rows:
        short = row.duration in SHORT_DURATIONS
        if row.starts_at >= now - NOTICE_WINDOW:
            notices.append(
                MandateNotice("opened", row.desk_name, row.channel, row.starts_at, short)
            )
        ending = now < row.ends_at <= now + NOTICE_WINDOW
        if ending and not row.revoked and row.duration != "visit":
            notices.append(MandateNotice("ending", row.desk_name, row.channel, row.ends_at, short))
    return notices


# -- the e-mail when a mandate is opened ----------------------------------------------------


def notify_mandate_opened(mandate: Mandate) -> bool:
    """Tell the resident by e-mail that a mandate was opened in their name, if they have
    an address and mail is configured; to be called once the mandate is committed.
    Never raises: a failure is logged without the address or the name. True when sent."""
    try:
        citizen = db.session.get(Citizen, mandate.citizen_id)
        if citizen is None or not citizen.email:
            return False
        from portal.notify import send_mail

        with force_locale(citizen.preferred_locale or "fr"):
            subject, text = mandate_opened_message(mandate)
        return send_mail(citizen.email, subject, text)
    except Exception:
        log.exception("mandate %s: the resident's notice could not be sent", mandate.id)
        return False


def mandate_opened_message(mandate: Mandate) -> tuple[str, str]:
    """The e-mail's subject and text, in the current locale."""
    services = "\n".join(f"- {scope_title(row.scope)}" for row in mandate.scopes)
    short = mandate.duration in SHORT_DURATIONS
    until = when(mandate.ends_at) if short else day(mandate.ends_at)
    link = current_settings().base_url + url_for("my_mandates.index")
    subject = _("Un mandat a été ouvert sur votre Compte territorial")
    channel = channel_label(mandate.channel).lower()
    text = _(
        "Bonjour,\n\n"
        "Le %(date)s, %(channel)s, vous avez donné un mandat à « %(desk)s ». Ce guichet "
        "peut agir pour vous, jusqu'au %(until)s, sur :\n%(services)s\n\n"
        "Votre reçu porte la référence %(reference)s.\n\n"
        "Vous pouvez voir ce qui est fait pour vous, et révoquer ce mandat à tout "
        "moment, dans « Mes mandats » : %(link)s\n\n"
        "Si vous n'avez pas donné ce mandat, révoquez-le et signalez-le au guichet.\n\n"
        "Le Compte territorial",
        date=when(mandate.starts_at),
        channel=channel,
        desk=mandate.desk_name,
        until=until,
        services=services,
        reference=mandate.reference,
        link=link,
    )
    return subject, text
