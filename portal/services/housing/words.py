"""Social housing's words: its journal action and its detail, its refusal reasons."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from portal.formatting import day
from portal.journal_text import iso_day

JOURNAL_ACTIONS = {"renew_application": _l("Renouvellement de la demande de logement")}

REASONS = {
    "outside_window": _l("La demande ne peut pas encore être renouvelée."),
    "application_closed": _l("La demande est close."),
}


def journal_detail(code: str, params: Mapping[str, Any]) -> Markup:
    until = iso_day(params.get("new_expires_on"))
    return escape(_("renouvelée jusqu'au %(date)s", date=day(until))) if until else Markup("")
