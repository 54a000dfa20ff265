"""The site's information pages."""

from __future__ import annotations

from flask import render_template

from portal.journeys import journey
from portal.main import bp


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
