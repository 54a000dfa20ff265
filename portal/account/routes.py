"""My activity, my data (readable, exported, deleted)."""

from __future__ import annotations

import json
import logging

from flask import g, render_template, request, session, url_for
from werkzeug.wrappers import Response

from portal.account import bp
from portal.account.activity import (
    action_label,
    activity_page,
    activity_rows,
    actor_label,
    count_entries,
    outcome_label,
    read_cursor,
    service_title,
    services_in_activity,
)
from portal.account.data import delete_account, export_data, links_of, masked_number
from portal.account.forms import DeleteAccountForm
from portal.actor import current_actor
from portal.auth.routes import end_franceconnect_session
from portal.auth.session import end_session, login_required, see_other
from portal.config import current_settings
from portal.extensions import db
from portal.journal_text import journal_line
from portal.journeys import journey
from portal.models import JournalEntry
from portal.services.todo import paris_today

log = logging.getLogger(__name__)


def _record(action: str) -> None:
    JournalEntry.record(g.citizen.id, action, actor=current_actor())


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
    (not one the activity names) is ignored, and the page says so. Pages are reached by
    signed positions (``before``: older than, ``after``: newer than), never by number."""
    services = services_in_activity(g.citizen.id)
    service = request.args.get("service", "")
    unknown_service = bool(service) and service not in dict(services)
    if unknown_service:
        service = ""
    before, after = request.args.get("before"), request.args.get("after")
    positions = {
        name: read_cursor(raw, service)
        for name, raw in (("before", before), ("after", after))
        if raw
    }
    # A page link changed by hand, cut, or made for another filter: the newest entries,
    # and the page says why (never an error).
    bad_link = len(positions) > 1 or any(p is None for p in positions.values())
    if bad_link or unknown_service:
        positions = {}
    bad_link = bad_link and not unknown_service  # one message is enough
    page = activity_page(g.citizen.id, service=service, **positions)
    return render_template(
        "account/activity.html",
        activity=page,
        rows=activity_rows(page),
        services=services,
        unknown_service=unknown_service,
        bad_link=bad_link,
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
