""" "My activity": the journal read back to the resident, in plain words.

Read only: this module (and the whole portal) has no path that updates or deletes a
journal entry; only deleting the whole account removes them (see ``portal.account.data``).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _

from portal.extensions import db
from portal.integrations import registry
from portal.models import JournalEntry

PER_PAGE = 20


def action_label(action: str) -> str:
    """An action as a resident would say it (see ``portal.journal_text``)."""
    from portal.journal_text import actions

    label = actions().get(action)
    return str(label) if label is not None else ""


def actor_label(kind: str) -> str:
    if kind == "citizen":
        return _("vous")
    if kind == "system":
        return _("système")
    if kind == "adviser":
        return _("un conseiller numérique")
    return kind


def outcome_label(outcome: str) -> str:
    labels = {"success": _("réussi"), "refused": _("refusé"), "failure": _("échec")}
    return labels.get(outcome, outcome)


def service_title(slug: str) -> str:
    """The instance's title, or its slug once it is no longer configured."""
    instance = registry().instances.get(slug)
    return instance.title if instance is not None else slug


@dataclass(frozen=True)
class ActivityPage:
    entries: list[JournalEntry]
    page: int
    pages: int
    total: int
    #: The service the list is filtered on ("" for all of them).
    service: str = ""

    @property
    def has_newer(self) -> bool:
        return self.page > 1

    @property
    def has_older(self) -> bool:
        return self.page < self.pages


def count_entries(citizen_id: int) -> int:
    return db.session.scalar(
        db.select(db.func.count()).select_from(JournalEntry).filter_by(citizen_id=citizen_id)
    )


def services_in_activity(citizen_id: int) -> list[tuple[str, str]]:
    """The services the resident's activity names, as (slug, title), by title: what the
    list can be filtered on (an unlinked or retired service included, its entries stay)."""
    slugs = db.session.scalars(
        db.select(JournalEntry.connector_instance)
        .filter_by(citizen_id=citizen_id)
        .filter(JournalEntry.connector_instance != "")
        .distinct()
    )
    return sorted(((slug, service_title(slug)) for slug in slugs), key=lambda s: s[1].lower())


def parse_page(raw: str | None) -> int:
    """A page number from the query; anything that is not one is the first page, never
    an error (too big is clamped to the last by ``activity_page``)."""
    try:
        page = int((raw or "1").strip())
    except ValueError:
        return 1
    return page if page >= 1 else 1


def activity_page(citizen_id: int, page: int, service: str = "") -> ActivityPage:
    """One page of the journal, newest first, ``PER_PAGE`` a page, of one service if
    ``service`` is given; a page past the last is the last."""
    query = db.select(JournalEntry).filter_by(citizen_id=citizen_id)
    if service:
        query = query.filter_by(connector_instance=service)
    total = db.session.scalar(db.select(db.func.count()).select_from(query.subquery()))
    pages = max(1, -(-total // PER_PAGE))
    page = min(page, pages)
    entries = list(
        db.session.execute(
            query.order_by(JournalEntry.at.desc(), JournalEntry.id.desc())
            .offset((page - 1) * PER_PAGE)
            .limit(PER_PAGE)
        ).scalars()
    )
    return ActivityPage(entries, page, pages, total, service)
