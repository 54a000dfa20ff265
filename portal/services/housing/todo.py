"""Social housing's to-do items: when renewing the application opens, and its last day."""

from __future__ import annotations

from datetime import date, datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from connectors.base import HousingApplication
from portal.formatting import short_day
from portal.services.core import Reader, Service
from portal.services.housing.reading import housing_page
from portal.services.todo import ReminderKind, TodoItem, todo_item

#: Same date: the last day to renew comes before the news that renewing opens.
CLOSES_ORDER = 4
OPENS_ORDER = 5


#: What a resident may ask to be reminded of (``portal.reminders``), and when.
REMINDERS = (
    ReminderKind(
        "housing_renewal",
        ("housing_opens",),
        _l("Ouverture du renouvellement de la demande de logement"),
        ((0,), (7,)),
    ),
)


def todo_reader(today: date, now: datetime) -> Reader[HousingApplication]:
    return housing_page


def todo_items(svc: Service, data: HousingApplication, today: date) -> list[TodoItem]:
    opens, closes = data.renewal_opens_on, data.renewal_closes_on
    if opens is None or closes is None or data.status not in ("active", "renewal_due"):
        return []
    items = []
    if today < opens:
        items.append(
            todo_item(
                svc,
                "housing_opens",
                svc.link.external_id,  # stable, fresh or from the snapshot
                on=opens,
                summary=_("Le renouvellement de votre demande de logement devient possible"),
                note=_("Jusqu'au %(date)s inclus.", date=short_day(closes)),
                anchor="renewal",
                order=OPENS_ORDER,
            )
        )
    if today <= closes:
        items.append(
            todo_item(
                svc,
                "housing_closes",
                svc.link.external_id,  # stable, fresh or from the snapshot
                on=closes,
                summary=_("Renouveler votre demande de logement (dernier jour)"),
                note=_("Sans renouvellement, la demande sera radiée."),
                anchor="renewal",
                through_portal=True,
                order=CLOSES_ORDER,
            )
        )
    return items
