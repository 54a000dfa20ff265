"""The standard's stable refusal codes, in the reader's language.

The back-ends send a code (``reason_code`` in the specs, or a problem's ``code``) with
their own French words. The portal shows its own sentence for a code it knows; for one it
does not, the back-end's words are shown as they are, marked ``lang="fr"`` so that a
screen reader on an English page reads them in French.
"""

from __future__ import annotations

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

REASONS = {
    # meals
    "too_late": _l("Il est trop tard pour modifier ce jour."),
    "no_service_that_day": _l("Il n'y a pas de service de restauration ce jour-là."),
    "closed_to_booking": _l("Ce jour n'est pas ouvert à la réservation."),
    # loans
    "loan_overdue": _l("Ce prêt est en retard : rapportez le document pour l'emprunter à nouveau."),
    "renewal_limit": _l("Ce prêt a déjà été prolongé autant de fois que possible."),
    "on_hold": _l("Ce document est réservé par un autre lecteur."),
    "card_expired": _l("Votre carte a expiré : renouvelez-la à l'accueil de la bibliothèque."),
    "not_renewable": _l("La bibliothèque n'a pas accepté de prolonger ce prêt."),
    # holds
    "not_cancellable": _l("Cette réservation ne peut plus être annulée."),
    "not_found": _l("Cet élément n'apparaît plus sur votre compte."),
    # linking
    "invalid_proof": _l("Les informations ne correspondaient pas."),
    "card_locked": _l("La carte est bloquée par le service."),
    "pin_expired": _l("Le code a expiré."),
    "missing_proof": _l("Aucune preuve n'a été donnée."),
    "proof_not_supported": _l("Ce service n'accepte pas cette preuve."),
    "unavailable": _l("Le service ne répondait pas."),
    # housing
    "outside_window": _l("La demande ne peut pas encore être renouvelée."),
    "application_closed": _l("La demande est close."),
}


def with_reason(template: str, **values: object) -> Markup:
    """``template`` (already translated, placeholders left) filled with ``values``,
    escaped, keeping the ``lang`` mark of a reason from ``reason_text``."""
    return escape(template) % values


def plain_reason(code: str | None, free_text: str = "") -> str:
    """Like ``reason_text``, as plain text (for a line built before it is shown)."""
    if free_text and str(get_locale() or "fr") == "fr":
        return free_text
    return str(REASONS[code]) if code and code in REASONS else free_text


def known(code: str | None) -> bool:
    return bool(code) and code in REASONS


def reason_text(code: str | None, free_text: str = "") -> Markup:
    """The reason of a refusal for a person: in French, the back-end's own words (ours
    when it gave none); in another language, ours for a known code, else the back-end's
    words marked as French."""
    french = str(get_locale() or "fr") == "fr"
    if free_text and french:
        return escape(free_text)  # the back-end's own words say most, in its language
    if code and code in REASONS:
        return escape(str(REASONS[code]))
    if not free_text:
        return Markup("")
    return Markup('<span lang="fr">{}</span>').format(free_text)
