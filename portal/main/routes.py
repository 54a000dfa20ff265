"""Home (the dashboard shell) and the site's information pages."""

from __future__ import annotations

from flask import g, render_template

from portal.auth.session import login_required
from portal.journeys import journey
from portal.main import bp
from portal.services.reading import linked_services


@bp.get("/")
@login_required
@journey("dashboard", "view")
def home() -> str:
    """The shell renders at once: one placeholder per linked service, each a plain link
    to the service's page that htmx replaces by its card. No back-end is called here,
    so a hanging one cannot delay the page."""
    return render_template("main/home.html", services=linked_services(g.citizen.id))


@bp.get("/accessibilite")
@journey("site", "accessibility")
def accessibility() -> str:
    return render_template("main/accessibility.html")


@bp.get("/mentions-legales")
@journey("site", "legal")
def legal() -> str:
    return render_template("main/legal.html")


@bp.get("/donnees-personnelles")
@journey("site", "privacy")
def privacy() -> str:
    return render_template("main/privacy.html")
