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

from portal.services import kinds

#: The generic codes: items, linking, availability. Each kind brings its own
#: (``ServiceKind.reasons``); ``reasons()`` gathers them.
GENERIC_REASONS = {
    "not_found": _l("Cet élément n'apparaît plus sur votre compte."),
    # linking
    "invalid_proof": _l("Les informations ne correspondaient pas."),
    "card_locked": _l("La carte est bloquée par le service."),
    "pin_expired": _l("Le code a expiré."),
    "missing_proof": _l("Aucune preuve n'a été donnée."),
    "proof_not_supported": _l("Ce service n'accepte pas cette preuve."),
    "unavailable": _l("Le service ne répondait pas."),
}


def reasons() -> dict[str, object]:
    """Every refusal reason known: the generic ones and each installed kind's."""
    merged: dict[str, object] = dict(GENERIC_REASONS)
    for kind in kinds.kinds():
        merged.update(kind.reasons)
    return merged


def with_reason(template: str, **values: object) -> Markup:
    """``template`` (already translated, placeholders left) filled with ``values``,
    escaped, keeping the ``lang`` mark of a reason from ``reason_text``."""
    return escape(template) % values


def plain_reason(code: str | None, free_text: str = "") -> str:
    """Like ``reason_text``, as plain text (for a line built before it is shown)."""
    if free_text and str(get_locale() or "fr") == "fr":
        return free_text
    known_reasons = reasons()
    return str(known_reasons[code]) if code and code in known_reasons else free_text


def known(code: str | None) -> bool:
    return bool(code) and code in reasons()


def reason_text(code: str | None, free_text: str = "") -> Markup:
    """The reason of a refusal for a person: in French, the back-end's own words (ours
    when it gave none); in another language, ours for a known code, else the back-end's
    words marked as French."""
    french = str(get_locale() or "fr") == "fr"
    if free_text and french:
        return escape(free_text)  # the back-end's own words say most, in its language
    known_reasons = reasons()
    if code and code in known_reasons:
        return escape(str(known_reasons[code]))
    if not free_text:
        return Markup("")
    return Markup('<span lang="fr">{}</span>').format(free_text)
