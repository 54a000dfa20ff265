"""The school canteen's words: its journal action and its details, its refusal reasons."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from portal.journal_text import days_list, french, join

JOURNAL_ACTIONS = {"book_meals": _l("Réservation ou annulation de repas")}

REASONS = {
    "too_late": _l("Il est trop tard pour modifier ce jour."),
    "no_service_that_day": _l("Il n'y a pas de service de restauration ce jour-là."),
    "closed_to_booking": _l("Ce jour n'est pas ouvert à la réservation."),
}


def journal_detail(code: str, params: Mapping[str, Any]) -> Markup:
    parts: list[Markup | str] = [french(params["child"])] if params.get("child") else []
    for key, label in (
        ("booked", _("réservé : %(days)s")),
        ("cancelled", _("annulé : %(days)s")),
        ("refused", _("refusé : %(days)s")),
    ):
        if params.get(key):
            parts.append(escape(label % {"days": days_list(params[key])}))
    return join(*parts)
