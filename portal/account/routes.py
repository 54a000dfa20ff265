"""My activity, my data (readable, exported, deleted), what to do next, the calendar feed."""

from __future__ import annotations

import json
import logging

from flask import abort, flash, g, render_template, request, session, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from portal.account import bp, feed_bp
from portal.account.activity import (
    action_label,
    activity_page,
    actor_label,
    count_entries,
    outcome_label,
    parse_page,
    service_title,
    services_in_activity,
)
from portal.account.calendar import build_calendar, citizen_for_token, create_feed, revoke_feed
from portal.account.data import delete_account, export_data, links_of, masked_number
from portal.account.forms import DeleteAccountForm
from portal.account.todo import paris_today, read_todo
from portal.auth.routes import end_franceconnect_session
from portal.auth.session import end_session, login_required, see_other
from portal.config import current_settings
from portal.extensions import db, limiter
from portal.htmx import is_partial, render
from portal.journal_text import journal_line
from portal.journeys import journey
from portal.models import JournalEntry

log = logging.getLogger(__name__)


def _feed_limit() -> str:
    """``PORTAL_FEED_RATE_LIMIT``, read when a request comes (settings are per app)."""
    return current_settings().feed_rate_limit


#: Seconds a calendar application is asked to wait when a service could not be read.
FEED_RETRY_AFTER_S = 900
#: Session key holding a just-created feed URL until the page shows it, once.
NEW_FEED_URL = "calendar_feed_url"


def _record(action: str) -> None:
    JournalEntry.record(g.citizen.id, action, actor_id=str(g.citizen.id))


@bp.context_processor
def account_labels() -> dict[str, object]:
    return {
        "action_label": action_label,
        "actor_label": actor_label,
        "outcome_label": outcome_label,
        "service_title": service_title,
        "journal_line": journal_line,
        "masked_number": masked_number,
    }


# -- my activity ---------------------------------------------------------------------------


@bp.get("/activity")
@login_required
@journey("account", "activity")
def activity() -> str:
    """The journal, a page at a time, of every service or one: an unknown ``service``
    (not one the activity names) is ignored, and the page says so."""
    services = services_in_activity(g.citizen.id)
    service = request.args.get("service", "")
    unknown_service = bool(service) and service not in dict(services)
    if unknown_service:
        service = ""
    page = activity_page(g.citizen.id, parse_page(request.args.get("page")), service)
    return render_template(
        "account/activity.html",
        activity=page,
        services=services,
        unknown_service=unknown_service,
    )


# -- my data -------------------------------------------------------------------------------


@bp.get("/data")
@login_required
@journey("account", "data")
def data() -> str:
    return render_template(
        "account/data.html",
        links=links_of(g.citizen.id),
        activity_count=count_entries(g.citizen.id),
        settings=current_settings(),
    )


@bp.route("/data.json", methods=["GET", "POST"])
@login_required
@journey("account", "export")
def data_json() -> Response:
    """The download is a POST with the form token: it writes (the journal), and a GET
    another site could trigger (an image, a link) must not. A GET shows the page."""
    if request.method == "GET":
        return see_other(url_for("account.data"))
    _record("export_data")
    db.session.commit()
    body = json.dumps(export_data(g.citizen), ensure_ascii=False, indent=2)
    filename = f"compte-territorial-mes-donnees-{paris_today().isoformat()}.json"
    return Response(
        body,
        mimetype="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@bp.route("/delete", methods=["GET", "POST"])
@login_required
@journey("account", "delete")
def delete() -> str | Response | tuple[str, int]:
    form = DeleteAccountForm()
    if form.validate_on_submit():
        citizen_id = g.citizen.id
        auth = end_session()
        id_token = auth.id_token if auth is not None else ""
        delete_account(citizen_id)
        db.session.commit()
        log.info("citizen %s deleted their account", citizen_id)
        session["account_deleted"] = True
        return end_franceconnect_session(id_token)
    page = render_template("account/delete.html", form=form, links=links_of(g.citizen.id))
    return (page, 422) if request.method == "POST" else page


# -- what to do next -------------------------------------------------------------------


@bp.get("/todo")
@login_required
@journey("dashboard", "todo")
def todo() -> str:
    """The list alone for htmx (swapped into the dashboard), a page otherwise."""
    result = read_todo(g.citizen.id, current_settings().card_deadline_s)
    return render("account/todo.html", "account/_todo.html", todo=result, oob_status=is_partial())


# -- the calendar feed -------------------------------------------------------------------


@bp.get("/calendar")
@login_required
@journey("account", "calendar")
def calendar() -> str:
    new_url = session.pop(NEW_FEED_URL, None)
    return render_template(
        "account/calendar.html",
        has_feed=g.citizen.calendar_token_hash is not None,
        new_url=new_url,
        webcal_url=_webcal(new_url) if new_url else None,
    )


@bp.post("/calendar")
@login_required
@journey("account", "calendar-create")
def calendar_create() -> Response:
    token = create_feed(g.citizen)
    _record("create_calendar_feed")
    db.session.commit()
    # Carried by the session cookie to the next page only, which shows it once and drops
    # it: the database keeps the hash alone.
    session[NEW_FEED_URL] = current_settings().base_url + url_for("calendar_feed.feed", token=token)
    return see_other(url_for("account.calendar"))


@bp.post("/calendar/revoke")
@login_required
@journey("account", "calendar-revoke")
def calendar_revoke() -> Response:
    if g.citizen.calendar_token_hash is not None:
        revoke_feed(g.citizen)
        _record("revoke_calendar_feed")
        db.session.commit()
        flash(_("Le lien d'agenda est supprimé : il ne donne plus accès à rien."), "success")
    return see_other(url_for("account.calendar"))


@bp.get("/calendar.ics")
@login_required
@journey("account", "calendar-download")
def calendar_download() -> Response:
    result = read_todo(g.citizen.id, current_settings().card_deadline_s)
    return _ics(build_calendar(result.items), attachment=True)


@feed_bp.get("/calendar/<token>.ics")
@limiter.limit(_feed_limit)
@journey("account", "calendar-feed")
def feed(token: str) -> Response:
    citizen = citizen_for_token(token)
    if citizen is None:
        abort(404)
    with force_locale(citizen.preferred_locale or "fr"):
        result = read_todo(citizen.id, current_settings().card_deadline_s)
        if result.temporarily_unreadable:
            # A partial feed would make calendar applications delete the missing events;
            # on an error they keep the copy they have and try again later.
            return Response("", status=503, headers={"Retry-After": str(FEED_RETRY_AFTER_S)})
        return _ics(build_calendar(result.items), attachment=False)


def _ics(body: bytes, *, attachment: bool) -> Response:
    headers = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
    if attachment:
        headers["Content-Disposition"] = 'attachment; filename="compte-territorial-a-faire.ics"'
    return Response(body, mimetype="text/calendar", headers=headers)


def _webcal(url: str) -> str:
    return "webcal://" + url.split("://", 1)[1]
