"""The dashboard's views: the shell, its cards, the to-do list and the calendar feed."""

from __future__ import annotations

import logging

from flask import abort, flash, g, render_template, request, session, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from portal.actor import Actor, current_actor
from portal.auth.session import login_required, see_other
from portal.config import current_settings
from portal.dashboard import bp, feed_bp
from portal.dashboard.calendar import build_calendar, citizen_for_token, create_feed, revoke_feed
from portal.dashboard.cards import MAX_CARDS_PER_REQUEST, card_loaders, last_known
from portal.dashboard.todo import read_todo
from portal.extensions import db, limiter
from portal.htmx import is_partial, render
from portal.journeys import journey
from portal.mandates.resident import dashboard_notices
from portal.models import JournalEntry
from portal.reminders.preferences import is_on
from portal.services.core import linked_services, own_service, read_concurrently, read_panel

log = logging.getLogger(__name__)

#: Seconds a calendar application is asked to wait when a service could not be read.
FEED_RETRY_AFTER_S = 900
#: Session key holding a just-created feed URL until the page shows it, once.
NEW_FEED_URL = "calendar_feed_url"


def _feed_limit() -> str:
    """``PORTAL_FEED_RATE_LIMIT``, read when a request comes (settings are per app)."""
    return current_settings().feed_rate_limit


def _record(action: str) -> None:
    JournalEntry.record(g.citizen.id, action, actor=current_actor())


# -- the shell and its cards ---------------------------------------------------------------


@bp.get("/")
@login_required
@journey("dashboard", "view")
def home() -> str:
    """The shell renders at once: one placeholder per linked service, each a plain link
    to the service's page that htmx replaces by its card. No back-end is called here,
    so a hanging one cannot delay the page: what it shows of each is its last snapshot.
    Past ``MAX_CARD_REQUESTS`` services, cards come in groups, so the page stays within
    its request budget."""
    services = linked_services(g.citizen.id)
    return render_template(
        "dashboard/home.html",
        mandate_notices=dashboard_notices(g.citizen.id),
        # Reminders are the resident's to turn on: not offered to an adviser for them.
        reminders_on=None if current_actor().assisted else is_on(g.citizen.id),
        services=services,
        loaders=card_loaders(services),
        known=last_known(services),
    )


@bp.get("/cards")
@login_required
@journey("dashboard", "cards")
def cards() -> str | Response:
    """Several cards in one answer, read at once under the card deadline: the first
    replaces its placeholder, the others theirs, out of band. Only htmx asks for this;
    a browser that comes here is sent to the dashboard."""
    if not is_partial():
        return see_other(url_for("dashboard.home"))
    slugs = request.args.getlist("slug")
    if not slugs or len(slugs) > MAX_CARDS_PER_REQUEST or len(set(slugs)) != len(slugs):
        abort(404)
    services = [own_service(slug) for slug in slugs]
    panels = read_concurrently(
        services,
        {svc.slug: svc.kind.card_reader() for svc in services},
        current_settings().card_deadline_s,
    )
    return "".join(
        render_template(
            "dashboard/_card.html",
            service=svc,
            panel=panels[svc.slug],
            oob_status=True,
            oob_card=i > 0,
        )
        for i, svc in enumerate(services)
    )


@bp.get("/services/<slug>/card")
@login_required
@journey("dashboard", "card")
def card(slug: str) -> str:
    """The card alone for htmx; the same card on a page of its own otherwise (so the
    URL never shows a bare fragment)."""
    svc = own_service(slug)
    g.journey = (svc.category, "card")
    panel = read_panel(svc, svc.kind.card_reader(), current_settings().card_deadline_s)
    template = "dashboard/_card.html" if is_partial() else "dashboard/card_page.html"
    return render_template(template, service=svc, panel=panel, oob_status=is_partial())


# -- what to do next -----------------------------------------------------------------------


@bp.get("/account/todo")
@login_required
@journey("dashboard", "todo")
def todo() -> str:
    """The list alone for htmx (swapped into the dashboard), a page otherwise."""
    result = read_todo(g.citizen.id, *_todo_budget())
    return render(
        "dashboard/todo.html", "dashboard/_todo.html", todo=result, oob_status=is_partial()
    )


# -- the calendar feed -------------------------------------------------------------------


@bp.get("/account/calendar")
@login_required
@journey("account", "calendar")
def calendar() -> str:
    new_url = session.pop(NEW_FEED_URL, None)
    return render_template(
        "dashboard/calendar.html",
        has_feed=g.citizen.calendar_token_hash is not None,
        new_url=new_url,
        webcal_url=_webcal(new_url) if new_url else None,
    )


@bp.post("/account/calendar")
@login_required
@journey("account", "calendar-create")
def calendar_create() -> Response:
    token = create_feed(g.citizen)
    _record("create_calendar_feed")
    db.session.commit()
    # Carried by the session cookie to the next page only, which shows it once and drops
    # it: the database keeps the hash alone.
    session[NEW_FEED_URL] = current_settings().base_url + url_for("calendar_feed.feed", token=token)
    return see_other(url_for("dashboard.calendar"))


@bp.post("/account/calendar/revoke")
@login_required
@journey("account", "calendar-revoke")
def calendar_revoke() -> Response:
    if g.citizen.calendar_token_hash is not None:
        revoke_feed(g.citizen)
        _record("revoke_calendar_feed")
        db.session.commit()
        flash(_("Le lien d'agenda est supprimé : il ne donne plus accès à rien."), "success")
    return see_other(url_for("dashboard.calendar"))


@bp.get("/account/calendar.ics")
@login_required
@journey("account", "calendar-download")
def calendar_download() -> Response:
    result = read_todo(g.citizen.id, *_todo_budget())
    return _ics(build_calendar(result.items), attachment=True)


@feed_bp.get("/calendar/<token>.ics")
@limiter.limit(_feed_limit)
@journey("account", "calendar-feed")
def feed(token: str) -> Response:
    citizen = citizen_for_token(token)
    if citizen is None:
        abort(404)
    with force_locale(citizen.preferred_locale or "fr"):
        # No session here: the feed's token says whose calendar it is, and who reads.
        actor = Actor.citizen(citizen.id, channel="calendar")
        result = read_todo(citizen.id, *_todo_budget(), actor=actor)
        if result.temporarily_unreadable:
            # A partial feed would make calendar applications delete the missing events;
            # on an error they keep the copy they have and try again later.
            return Response("", status=503, headers={"Retry-After": str(FEED_RETRY_AFTER_S)})
        return _ics(build_calendar(result.items), attachment=False)


def _todo_budget() -> tuple[float, float]:
    """The to-do list's deadline, and how recent a card's read may serve it again."""
    settings = current_settings()
    return settings.card_deadline_s, settings.read_cache_s


def _ics(body: bytes, *, attachment: bool) -> Response:
    headers = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
    if attachment:
        headers["Content-Disposition"] = 'attachment; filename="compte-territorial-a-faire.ics"'
    return Response(body, mimetype="text/calendar", headers=headers)


def _webcal(url: str) -> str:
    return "webcal://" + url.split("://", 1)[1]
