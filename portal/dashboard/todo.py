"""What to do next, across every linked service, in one list sorted by date.

The services are read at the same time, each in a worker thread of its own with its own
application context (and so its own database session), under the card deadline: one
hanging back-end costs its own items, never the list. Workers return the connectors'
frozen dataclasses; the items, whose text is translated, are built afterwards in the
request's thread, where the locale is known. What each service reads and says is its
kind's (``ServiceKind.todo_reader``, ``todo_items``); this module names no kind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from portal.actor import Actor
from portal.models._types import utcnow
from portal.services.core import Reader, linked_services, read_concurrently
from portal.services.todo import TodoItem, paris_today

log = logging.getLogger(__name__)

__all__ = ["ServiceState", "TodoItem", "TodoList", "paris_today", "read_todo"]


@dataclass(frozen=True)
class ServiceState:
    slug: str
    title: str
    state: str
    fetched_at: datetime | None = None


@dataclass
class TodoList:
    items: list[TodoItem] = field(default_factory=list)
    services: list[ServiceState] = field(default_factory=list)

    @property
    def unreadable(self) -> list[ServiceState]:
        return [s for s in self.services if s.state in ("unavailable", "relink")]

    @property
    def relink(self) -> list[ServiceState]:
        return [s for s in self.services if s.state == "relink"]

    @property
    def temporarily_unreadable(self) -> list[ServiceState]:
        return [s for s in self.services if s.state == "unavailable"]

    @property
    def stale(self) -> list[ServiceState]:
        return [s for s in self.services if s.state == "stale"]


def read_todo(
    citizen_id: int, deadline_s: float, max_age_s: float = 0.0, *, actor: Actor | None = None
) -> TodoList:
    """Every linked service read concurrently; never raises, never waits past the
    deadline (plus a small grace) for a slow one. ``max_age_s``: what the cards read
    that recently serves again (the list comes right after them on the dashboard).
    ``actor``: who reads, the request's actor unless given (the calendar feed, which no
    session signs in)."""
    today, now = paris_today(), utcnow()
    readers: dict[str, Reader[Any]] = {}
    services = []
    for svc in linked_services(citizen_id):
        kind = svc.kind
        if kind.todo_reader is None or kind.todo_items is None:
            continue  # a kind with nothing to put in the list (yet)
        readers[svc.slug] = kind.todo_reader(today, now)
        services.append(svc)
    if not services:
        return TodoList()
    panels = read_concurrently(services, readers, deadline_s, max_age_s=max_age_s, actor=actor)

    todo = TodoList()
    for svc in services:
        panel = panels[svc.slug]
        todo.services.append(
            ServiceState(svc.slug, svc.instance.title, panel.state, panel.fetched_at)
        )
        if panel.has_data and svc.kind.todo_items is not None:
            items = svc.kind.todo_items(svc, panel.data, today)
            if not panel.writable:
                items = [
                    replace(item, unavailable=True) if item.through_portal else item
                    for item in items
                ]
            todo.items.extend(items)
    todo.items.sort(
        key=lambda i: (
            i.on,
            i.deadline.timestamp() if i.deadline else float("inf"),
            i.order,
        )
    )
    return todo
