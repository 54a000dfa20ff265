"""Water's words: its journal actions and their details, its refusal reasons."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from portal.formatting import day
from portal.journal_text import iso_day

JOURNAL_ACTIONS = {
    "declare_reading": _l("Relevé de compteur d'eau déclaré"),
    "request_cap": _l("Demande d'écrêtement pour fuite"),
}

REASONS = {
    "below_last_reading": _l("L'index est inférieur à celui du dernier relevé."),
    "implausible_reading": _l(
        "L'index correspondrait à une consommation bien supérieure à la vôtre."
    ),
    "contract_closed": _l("Ce contrat est résilié."),
    "alert_closed": _l("Une demande a déjà été faite pour cette alerte, ou le service a décidé."),
    "deadline_passed": _l("Le délai d'un mois pour faire la demande est passé."),
    "attachment_rejected": _l("La facture jointe n'a pas été acceptée."),
    "unknown_alert": _l("Cette alerte n'existe plus sur votre contrat."),
}


def journal_detail(code: str, params: Mapping[str, Any]) -> Markup:
    if code.startswith("declare_reading"):
        index = params.get("index_m3")
        taken = iso_day(params.get("taken_on"))
        if isinstance(index, int) and taken is not None:
            return escape(
                _(
                    "index %(index)s\u00a0m³ le %(date)s",
                    index=format_decimal(index),
                    date=day(taken),
                )
            )
        return Markup("")
    if code.startswith("request_cap"):
        repaired = iso_day(params.get("repaired_on"))
        return (
            escape(_("fuite réparée le %(date)s", date=day(repaired))) if repaired else Markup("")
        )
    return Markup("")
