"""The kinds of service the portal knows, and what each brings.

A kind of service (lending books, school meals, social renting…) is one package under
``portal/services/<kind>/`` with its templates under ``templates/services/<kind>/``. The
package describes itself with one frozen ``ServiceKind`` and calls ``register`` when it is
imported; the list of installed kinds is one line in ``portal/services/installed.py``.
This module never imports a kind: linking, the dashboard, the to-do list, the calendar,
activity and the data export ask it, by the connector category of an instance.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Blueprint

    from portal.services.todo import ReminderKind

#: A read of one linked account: ``(connector, ctx, ref) -> (data, fetched_at, stale)``.
Reader = Callable[[Any, Any, Any], "tuple[Any, datetime, bool]"]


@dataclass(frozen=True)
class LinkSpec:
    """How a resident proves they own an account of this kind.

    ``form(connector, formdata)`` builds the Flask-WTF form (``formdata`` is None on GET);
    ``verify(connector, ctx, form)`` asks the back-end and returns its
    ``VerifiedAccount`` or raises a connector error; ``target(form)`` is the account
    number the attempt limits count against; ``number(form)`` the number kept to show
    the resident (may equal ``target``); ``keepable`` the field names that may be put back
    in the form after a lost session (never a secret). ``template`` renders the fields.
    """

    form: Callable[[Any, Any], Any]
    verify: Callable[[Any, Any, Any], Any]
    target: Callable[[Any], str]
    number: Callable[[Any], str]
    template: str
    #: What the resident agrees to, in plain words, shown above the button.
    consent: Any = ""
    keepable: Sequence[str] = ()


@dataclass(frozen=True)
class ServiceKind:
    """Everything the rest of the portal may know of one kind of service."""

    #: The connector category it serves (``connectors.base.Category``).
    category: str
    #: Its name for residents, plural (lazy_gettext): the heading of its group.
    title: Any
    #: ``(request_args) -> Reader`` for the dashboard card and for the service page.
    card_reader: Callable[[], Reader]
    page_reader: Callable[[Mapping[str, str]], Reader]
    #: Templates, under ``templates/services/<kind>/``.
    card_template: str
    page_template: str
    link: LinkSpec
    #: ``(today, now) -> Reader`` of what the to-do list needs, and
    #: ``(service, data, today) -> list[TodoItem]``; None when it has nothing to remind.
    todo_reader: Callable[[date, datetime], Reader] | None = None
    todo_items: Callable[[Any, Any, date], list[Any]] | None = None
    #: What a resident may ask to be reminded of (``portal.services.todo.ReminderKind``):
    #: some of its to-do items, with the lead times offered.
    reminders: Sequence[ReminderKind] = ()
    #: The kind's own views (its writes, its sub-pages), registered on the app.
    blueprint: Blueprint | None = None
    #: Names available to every template and macro (Jinja globals), e.g. formatters.
    template_helpers: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    #: Journal actions this kind writes, by code (lazy_gettext labels); the journal reads
    #: them from here.
    journal_actions: Mapping[str, Any] = field(default_factory=dict)
    #: ``(code, params) -> Markup``: the detail of one of its journal entries.
    journal_detail: Callable[[str, Mapping[str, Any]], Any] | None = None
    #: The back-end's stable refusal codes this kind knows, in plain words.
    reasons: Mapping[str, Any] = field(default_factory=dict)
    #: ``action -> (service, key, stored_request, seconds_left) -> Message | None``: asks
    #: again a write whose outcome is not known yet.
    resend: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    #: Its accounts have invoices paid through the shared payment flow
    #: (``portal/payments``); its connectors implement ``BillingConnector``.
    bills: bool = False
    #: Place of its group on the dashboard and the linking page (smaller first).
    order: int = 100


_KINDS: dict[str, ServiceKind] = {}


def register(kind: ServiceKind) -> ServiceKind:
    """Called once by each kind's package when imported."""
    existing = _KINDS.get(kind.category)
    if existing is not None and existing is not kind:
        raise RuntimeError(f"two kinds registered for category {kind.category!r}")
    _KINDS[kind.category] = kind
    return kind


def load(modules: Sequence[str]) -> None:
    """Import the installed kinds' packages (each registers itself)."""
    for module in modules:
        importlib.import_module(module)


def kind(category: str) -> ServiceKind:
    """The kind serving ``category``; LookupError for a category no package serves."""
    try:
        return _KINDS[category]
    except KeyError:
        raise LookupError(category) from None


def known(category: str) -> bool:
    return category in _KINDS


def kinds() -> Iterator[ServiceKind]:
    """Every installed kind, in dashboard order."""
    return iter(sorted(_KINDS.values(), key=lambda k: (k.order, k.category)))
