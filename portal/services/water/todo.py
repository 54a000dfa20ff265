"""Water's to-do items: a meter reading the operator asked for, the one-month deadline
of an abnormal-consumption alert, and the invoices to pay (said by the shared payments
capability)."""

from __future__ import annotations

from datetime import date, datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.formatting import short_day
from portal.payments.todo import invoice_items
from portal.services.answers import dom_id
from portal.services.core import Reader, Service
from portal.services.todo import ReminderKind, TodoItem, todo_item
from portal.services.water.reading import WaterView, water_card

#: Same date: the alert's last day comes first, then the reading asked for.
ALERT_ORDER = 2
READING_ORDER = 6


#: What a resident may ask to be reminded of (``portal.reminders``), and when.
REMINDERS = (
    ReminderKind(
        "water_reading",
        ("water_reading",),
        _l("Relevé du compteur d'eau demandé"),
        ((7,), (3,), (1,)),
    ),
)


def todo_reader(today: date, now: datetime) -> Reader[WaterView]:
    return water_card


def todo_items(svc: Service, data: WaterView, today: date) -> list[TodoItem]:
    items = []
    for alert in data.alerts:
        if alert.status != "open" or alert.respond_by < today:
            continue
        items.append(
            todo_item(
                svc,
                "water_alert",
                alert.id,
                on=alert.respond_by,
                summary=_("Demander l'écrêtement de votre facture d'eau après une fuite"),
                note=_(
                    "Consommation anormale du %(start)s au %(end)s : envoyez la facture du "
                    "plombier au plus tard le %(date)s.",
                    start=short_day(alert.period_start),
                    end=short_day(alert.period_end),
                    date=short_day(alert.respond_by),
                ),
                anchor=f"alert-{dom_id(alert.id)}",
                through_portal=True,
                order=ALERT_ORDER,
            )
        )
    requested = data.contract.reading_requested_by
    if requested is not None and not data.closed:
        items.append(
            todo_item(
                svc,
                "water_reading",
                data.contract.meter_number,
                on=requested,
                summary=_("Relever votre compteur d'eau et déclarer l'index"),
                note=_("Le service de l'eau n'a pas pu accéder à votre compteur."),
                anchor="reading",
                overdue=requested < today,
                through_portal=True,
                order=READING_ORDER,
            )
        )
    items.extend(invoice_items(svc, data.invoices, today))
    return items
