"""Service pages (read-only for now) and the dashboard's cards."""

from __future__ import annotations

from flask import g, render_template

from portal.auth.session import login_required
from portal.config import current_settings
from portal.htmx import is_partial
from portal.journeys import journey
from portal.services import bp
from portal.services.actions import settle_unknown
from portal.services.reading import own_service, read_panel, reader_for


@bp.get("/<slug>")
@login_required
@journey("services", "page")
def service(slug: str) -> str:
    svc = own_service(slug)
    g.journey = (svc.category, "page")
    deadline_s = current_settings().page_deadline_s
    if not is_partial():
        settle_unknown(svc, deadline_s / 2)  # before its forms are offered again
    panel = read_panel(svc, reader_for(svc.category, page=True), deadline_s)
    return render_template(f"services/{svc.category}.html", service=svc, panel=panel)


@bp.get("/<slug>/card")
@login_required
@journey("dashboard", "card")
def card(slug: str) -> str:
    """The card alone for htmx; the same card on a page of its own otherwise (so the
    URL never shows a bare fragment)."""
    svc = own_service(slug)
    g.journey = (svc.category, "card")
    panel = read_panel(
        svc, reader_for(svc.category, page=False), current_settings().card_deadline_s
    )
    template = "dashboard/_card.html" if is_partial() else "dashboard/card_page.html"
    return render_template(template, service=svc, panel=panel, oob_status=is_partial())
