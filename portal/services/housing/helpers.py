"""Names social housing's templates use."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask_babel import gettext as _

from portal.formatting import day as long_day


def renewal_note(application: Any, today: date | None = None) -> str:
    """Why a housing application cannot be renewed today, or ``""`` if it can."""
    today = today or date.today()
    if application.renewable_on(today):
        return ""
    if application.status == "closed":
        return _("Cette demande est close : elle ne peut pas être renouvelée.")
    if application.status == "expired":
        if application.expires_on is not None:
            return _(
                "Votre demande a expiré le %(date)s : elle ne peut plus être renouvelée. "
                "Il faut déposer une nouvelle demande.",
                date=long_day(application.expires_on),
            )
        return _("Votre demande a expiré : il faut déposer une nouvelle demande.")
    if application.status == "filed" or application.expires_on is None:
        return _(
            "Votre demande est en cours d'enregistrement : elle ne peut pas encore être renouvelée."
        )
    opens, closes = application.renewal_opens_on, application.renewal_closes_on
    if opens is not None and today < opens:
        if closes is not None:
            return _(
                "Vous pourrez renouveler votre demande du %(start)s au %(end)s.",
                start=long_day(opens),
                end=long_day(closes),
            )
        return _(
            "Vous pourrez renouveler votre demande à partir du %(start)s.", start=long_day(opens)
        )
    return _(
        "Cette demande ne peut pas être renouvelée en ligne pour le moment. "
        "Adressez-vous au service."
    )
