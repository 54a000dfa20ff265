"""The site's information pages."""

from __future__ import annotations

from flask import flash, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from portal.auth.session import see_other
from portal.config import current_settings
from portal.journeys import journey
from portal.main import bp
from portal.measure.events import OPTOUT_COOKIE, VISITOR_COOKIE, opted_out


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
    return render_template(
        "main/privacy.html",
        measure_optout=opted_out(),
        measure_gpc=request.headers.get("Sec-GPC") == "1",
    )


#: The objection is remembered this long (the CNIL's maximum for such a cookie).
OPTOUT_MAX_AGE_S = 395 * 24 * 3600


@bp.post("/donnees-personnelles/mesure-d-audience")
@journey("site", "privacy")
def measure_choice() -> Response:
    """Object to the anonymous audience measurement in this browser, or stop objecting:
    a cookie that says only that (``measure_optout=1``); nothing is recorded while it
    is there (``portal.measure.events``)."""
    settings = current_settings()
    response = see_other(url_for("main.privacy") + "#mesure-d-audience")
    if request.form.get("choice") == "optin":
        response.delete_cookie(OPTOUT_COOKIE, path="/", secure=settings.is_production)
        flash(_("La mesure d'audience anonyme compte à nouveau vos visites. Merci."), "success")
    else:
        response.set_cookie(
            OPTOUT_COOKIE,
            "1",
            max_age=OPTOUT_MAX_AGE_S,
            path="/",
            secure=settings.is_production,
            httponly=True,
            samesite="Lax",
        )
        response.delete_cookie(VISITOR_COOKIE, path="/", secure=settings.is_production)
        flash(
            _("C'est noté\u00a0: vos visites depuis ce navigateur ne sont plus mesurées."),
            "success",
        )
    return response
