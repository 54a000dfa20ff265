"""The page of one linked service, generic: its kind says what to read and how to show it."""

from __future__ import annotations

from flask import Blueprint, g, render_template, request

from portal.auth.session import login_required
from portal.config import current_settings
from portal.htmx import is_partial
from portal.journeys import journey
from portal.services.answers import settle_unknown
from portal.services.core import own_service, read_panel

bp = Blueprint("services", __name__, url_prefix="/services")


@bp.get("/<slug>")
@login_required
@journey("services", "page")
def service(slug: str) -> str:
    svc = own_service(slug)
    g.journey = (svc.category, "page")
    deadline_s = current_settings().page_deadline_s
    if not is_partial():
        settle_unknown(svc, deadline_s / 2)  # before its forms are offered again
    panel = read_panel(svc, svc.kind.page_reader(request.args), deadline_s)
    return render_template(svc.kind.page_template, service=svc, panel=panel)
