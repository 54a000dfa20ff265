"""One place that turns every error into a page (or an htmx fragment) a person understands."""

from __future__ import annotations

import logging

from flask import Blueprint, g, render_template, request
from flask.globals import request_ctx as _request_ctx
from flask_babel import gettext as _
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

from portal.auth.session import (
    KEEPABLE_FIELDS,
    keep_form_values,
    kept_form_values,
    load_current_citizen,
    page_to_return_to,
    same_site_path,
    signed_out_response,
)
from portal.extensions import db
from portal.hardening import PLAIN_400
from portal.htmx import is_partial
from portal.measure.events import write_not_done
from portal.services.failures import ItemGone, WriteFailure, responder

bp = Blueprint("errors", __name__)
log = logging.getLogger(__name__)


def _messages(code: int) -> tuple[str, str]:
    """Title and explanation, with what to do next."""
    known = {
        400: (
            _("Demande incorrecte"),
            _("Votre demande n'a pas pu être comprise. Revenez à la page précédente et réessayez."),
        ),
        403: (_("Accès refusé"), _("Vous n'avez pas accès à cette page.")),
        404: (
            _("Page introuvable"),
            _(
                "Cette page n'existe pas ou n'existe plus. "
                "Vérifiez l'adresse ou revenez à l'accueil."
            ),
        ),
        405: (
            _("Action impossible"),
            _("Cette adresse ne permet pas cette action. Revenez à l'accueil."),
        ),
        413: (
            _("Envoi trop volumineux"),
            _(
                "Ce que vous avez envoyé est trop volumineux. Rien n'a été enregistré. "
                "Revenez à la page précédente et réessayez."
            ),
        ),
        429: (
            _("Trop de tentatives"),
            _(
                "Vous avez fait trop de demandes en peu de temps. "
                "Patientez une minute puis réessayez."
            ),
        ),
        503: (
            _("Service momentanément indisponible"),
            _(
                "Le service est momentanément indisponible. "
                "Veuillez réessayer dans quelques minutes."
            ),
        ),
    }
    return known.get(
        code,
        (
            _("Une erreur est survenue"),
            _(
                "Une erreur inattendue est survenue de notre côté. Rien n'a été enregistré. "
                "Veuillez réessayer dans quelques minutes."
            ),
        ),
    )


def render_error(code: int, message: str | None = None) -> tuple[str, int]:
    if _request_ctx.url_adapter is None:
        # No URL can be built for this request (``HostGuard`` refuses most such hosts
        # first): a page that links nowhere rather than a second error.
        return PLAIN_400.decode(), 400
    title, text = _messages(code)
    template = "errors/_error.html" if is_partial() else "errors/error.html"
    return render_template(template, code=code, title=title, message=message or text), code


@bp.app_errorhandler(CSRFError)
def csrf_error(exc: CSRFError) -> tuple[str, int] | Response:
    """A refused form token never leaves a blank screen. No session any more (signed
    out in another tab): the same as an expired session. Otherwise htmx gets the message
    in the page's alert region (htmx swaps no 4xx answer), a plain form an error page
    with a link back to its page, where the non-secret values typed come back."""
    if request.blueprint == "agents":
        # The agents' area has its own session: never send an agent to the residents'
        # sign-in page.
        return render_error(
            400,
            _(
                "Le formulaire a expiré ou a été envoyé depuis une autre page. Rien n'a été "
                "enregistré. Rechargez la page et réessayez."
            ),
        )
    if "citizen" not in g:  # the token is checked before the session is loaded
        load_current_citizen()
    if g.get("citizen") is None:
        # Values from a form another site posted must not come back in ours.
        return signed_out_response(keep_values=same_site_path(request.referrer) is not None)
    message = _(
        "Le formulaire a expiré ou a été envoyé depuis une autre page. Rien n'a été "
        "enregistré. Rechargez la page et réessayez."
    )
    back = page_to_return_to()
    if request.headers.get("HX-Request"):
        html = render_template("errors/_csrf.html", message=message, back=back)
        response = Response(html, status=200, mimetype="text/html")
        response.headers["HX-Retarget"] = "#page-alert"
        response.headers["HX-Reswap"] = "innerHTML show:top"
        return response
    if request.endpoint in KEEPABLE_FIELDS and same_site_path(request.path) == back:
        keep_form_values(kept_form_values())
    title, _text = _messages(400)
    html = render_template("errors/error.html", code=400, title=title, message=message, back=back)
    return html, 400


@bp.app_errorhandler(WriteFailure)  # type: ignore[type-var]  # any response value
def write_failure(exc: WriteFailure) -> object:
    """A write that was not done, or whose outcome is not known, answered through the
    answer its view declared (``portal.services.failures.answering``): its section for
    htmx, a flash and a 303 back to its page, or a 400 page for an unusable form. An
    item not on the resident's account is the 404 page, the same whoever's it is."""
    write_not_done(exc)  # the journey's failure, when no journal entry said it
    if isinstance(exc, ItemGone):
        return render_error(ItemGone.code)
    message = exc.message()
    respond = responder()
    if respond is None:  # raised by a view that did not say how it answers
        return render_error(400 if message.invalid else 503, message.text)
    return respond(message)


@bp.app_errorhandler(RateLimitExceeded)
def rate_limited(exc: RateLimitExceeded) -> tuple[str, int]:
    return render_error(429)


@bp.app_errorhandler(HTTPException)
def http_error(exc: HTTPException) -> tuple[str, int]:
    code = exc.code or 500
    if code >= 500:
        db.session.rollback()
    return render_error(code)


@bp.app_errorhandler(Exception)
def unexpected_error(exc: Exception) -> tuple[str, int]:
    log.exception("unhandled error", exc_info=exc)
    db.session.rollback()
    return render_error(InternalServerError.code)
