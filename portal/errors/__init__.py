"""One place that turns every error into a page (or an htmx fragment) a person understands."""

from __future__ import annotations

import logging

from flask import Blueprint, render_template
from flask.globals import request_ctx as _request_ctx
from flask_babel import gettext as _
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from portal.extensions import db
from portal.hardening import PLAIN_400
from portal.htmx import is_partial

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
def csrf_error(exc: CSRFError) -> tuple[str, int]:
    return render_error(
        400,
        _(
            "Le formulaire a expiré ou a été envoyé depuis une autre page. Rien n'a été "
            "enregistré. Revenez à la page précédente, rechargez-la et réessayez."
        ),
    )


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
