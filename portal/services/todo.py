"""One thing to do, as every kind says it for the to-do list and the calendar feed.

A kind's ``todo_items`` builds its items with ``todo_item``; the dashboard gathers them
(``portal.dashboard.todo``) without knowing which kind said what.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import url_for

from portal.services.core import Service

PARIS = ZoneInfo("Europe/Paris")


def paris_today() -> date:
    """The territory's today: deadlines are local days."""
    return datetime.now(PARIS).date()


@dataclass(frozen=True)
class TodoItem:
    """One thing to do, by when, and where to do it."""

    on: date
    kind: str
    slug: str
    service_title: str
    summary: str
    anchor: str
    #: Stable across reads (the calendar updates the event instead of adding one); a
    #: hash, so it reveals neither the link nor the back-end's ids.
    uid: str
    note: str = ""
    overdue: bool = False
    #: The exact deadline when there is one (a booking may close at a given hour).
    deadline: datetime | None = None
    #: Done through the portal (a booking, a payment, a renewal), which is impossible
    #: while the service is unavailable (``Panel.writable``): then said, not offered.
    unavailable: bool = False
    #: Done through the portal rather than at the service's counter: marked
    #: ``unavailable`` while the service cannot be acted on.
    through_portal: bool = False
    #: Same date: what must be done first comes first (smaller first).
    order: int = 100

    @property
    def path(self) -> str:
        base = url_for("services.service", slug=self.slug)
        return f"{base}#{self.anchor}" if self.anchor else base


@dataclass(frozen=True)
class ReminderKind:
    """What a resident may be reminded of before its deadline: the to-do items of some
    kinds (``TodoItem.kind``), under a name residents choose in their reminder settings.
    A kind of service declares its own (``ServiceKind.reminders``); ``portal.reminders``
    gathers them without naming any."""

    #: Stable: stored in the resident's settings.
    name: str
    #: ``TodoItem.kind`` values it reminds of (none: the reminders find their own).
    item_kinds: tuple[str, ...]
    #: For residents (lazy_gettext).
    title: Any
    #: Lead times offered, in days before the deadline, largest first; the first is the
    #: default.
    choices: tuple[tuple[int, ...], ...]
    #: The words of the reminder's link to the item's page, when that page acts on it
    #: (« Prolonger le prêt »); None: a plain link to see it.
    link_label: Any = None

    @property
    def default(self) -> tuple[int, ...]:
        return self.choices[0]


def _uid(link_id: int, kind: str, thing: str) -> str:
    digest = hashlib.sha256(f"{link_id}:{kind}:{thing}".encode()).hexdigest()[:32]
    return f"{kind}-{digest}@compte-territorial"


def todo_item(svc: Service, kind: str, thing: str, **values: Any) -> TodoItem:
    """An item of ``svc`` about ``thing`` (a loan id, a child id…), its uid derived."""
    return TodoItem(
        kind=kind,
        slug=svc.slug,
        service_title=svc.instance.title,
        uid=_uid(svc.link.id, kind, thing),
        **values,
    )
