""" "My activity": the journal read back to the resident, in plain words.

Read only: this module (and the whole portal) has no path that updates or deletes a
journal entry; only deleting the whole account removes them (see ``portal.account.data``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from flask_babel import gettext as _

from portal.extensions import db
from portal.integrations import registry
from portal.models import Agent, JournalEntry, Mandate

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
    #: An adviser's entries: who did it for the resident, at which desk, how (by id).
    done_for_you: dict[int, str] = field(default_factory=dict)

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
    return ActivityPage(entries, page, pages, total, service, done_for_you(entries))


def adviser_names(entries: Iterable[JournalEntry]) -> dict[str, str]:
    """The advisers who wrote ``entries``, by ``actor_id``: one query for them all."""
    ids = {
        int(entry.actor_id)
        for entry in entries
        if entry.actor_kind == "adviser" and entry.actor_id.isdigit()
    }
    if not ids:
        return {}
    agents = db.session.execute(db.select(Agent).where(Agent.id.in_(ids))).scalars()
    return {str(agent.id): agent.display_name for agent in agents}


def done_for_you(entries: list[JournalEntry]) -> dict[int, str]:
    """« Fait pour vous par Claire Martin, Maison France services du Lac, au guichet »,
    by entry id, for the entries an adviser wrote: the mandates and the agents named are
    read in one query each."""
    advised = [entry for entry in entries if entry.actor_kind == "adviser"]
    if not advised:
        return {}
    mandate_ids = {entry.mandate_id for entry in advised if entry.mandate_id is not None}
    mandates = (
        {
            row.id: (row.desk_name, row.adviser_name)
            for row in db.session.execute(
                db.select(Mandate.id, Mandate.desk_name, Mandate.adviser_name).where(
                    Mandate.id.in_(mandate_ids)
                )
            )
        }
        if mandate_ids
        else {}
    )
    names = adviser_names(advised)
    labels: dict[int, str] = {}
    for entry in advised:
        desk, opened_by = mandates.get(entry.mandate_id or 0, ("", ""))
        labels[entry.id] = done_for_you_label(
            names.get(entry.actor_id) or opened_by, desk, entry.channel
        )
    return labels


def done_for_you_label(adviser: str, desk: str, channel: str) -> str:
    """Who acted for the resident, where and how, in one sentence."""
    adviser = adviser or _("un conseiller")
    if not desk:
        return _("Fait pour vous par %(adviser)s", adviser=adviser)
    if channel == "phone":
        return _(
            "Fait pour vous par %(adviser)s, %(desk)s, par téléphone", adviser=adviser, desk=desk
        )
    return _("Fait pour vous par %(adviser)s, %(desk)s, au guichet", adviser=adviser, desk=desk)
