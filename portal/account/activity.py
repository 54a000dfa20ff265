""" "My activity": the journal read back to the resident, in plain words.

Read only: this module (and the whole portal) has no path that updates or deletes a
journal entry; only deleting the whole account removes them (see ``portal.account.data``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadData, URLSafeSerializer
from markupsafe import Markup

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
class Position:
    """Where a page starts or ends: an entry's time and id (entries with the same time
    keep their order by id), the page number it leads to, and the filter it was made
    for."""

    at: datetime
    id: int
    page: int
    service: str = ""


#: Signs page links: one typed or changed by hand is refused, not followed.
CURSOR_SALT = "activity-page"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=CURSOR_SALT)


def cursor(entry: JournalEntry, page: int, service: str) -> str:
    """The opaque ``before``/``after`` value of a page link at ``entry``."""
    microseconds = (entry.at - EPOCH) // timedelta(microseconds=1)
    return _serializer().dumps([microseconds, entry.id, page, service])


#: Longer than any cursor this module writes: not even checked.
CURSOR_MAX = 200


def read_cursor(raw: str, service: str) -> Position | None:
    """The position ``raw`` names, or None when it is not one of ours (changed, cut,
    made for another filter)."""
    if len(raw) > CURSOR_MAX:
        return None
    try:
        value = _serializer().loads(raw)
    except BadData:
        return None
    if not (isinstance(value, list) and len(value) == 4):
        return None
    microseconds, entry_id, page, made_for = value
    numbers = (microseconds, entry_id, page)
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
        return None
    if made_for != service or page < 1 or entry_id < 1:
        return None
    try:
        at = EPOCH + timedelta(microseconds=microseconds)
    except OverflowError:
        return None
    return Position(at, entry_id, page, service)


@dataclass(frozen=True)
class ActivityRow:
    """One line of the table, in the reader's words."""

    entry: JournalEntry
    by: str
    action: str
    service: str
    outcome: str
    detail: Markup

    @property
    def succeeded(self) -> bool:
        return self.entry.outcome == "success"


@dataclass(frozen=True)
class ActivityPage:
    entries: list[JournalEntry]
    page: int
    #: The service the list is filtered on ("" for all of them).
    service: str = ""
    has_newer: bool = False
    has_older: bool = False
    #: An adviser's entries: who did it for the resident, at which desk, how (by id).
    done_for_you: dict[int, str] = field(default_factory=dict)

    @property
    def paged(self) -> bool:
        """More than one page: the page number and its links are shown."""
        return self.has_newer or self.has_older

    @property
    def newer_cursor(self) -> str:
        return cursor(self.entries[0], self.page - 1, self.service)

    @property
    def older_cursor(self) -> str:
        return cursor(self.entries[-1], self.page + 1, self.service)


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


def _newer_than(position: Position) -> sa.ColumnElement[bool]:
    # A row value: PostgreSQL (and SQLite) read it as one range of the index.
    return sa.tuple_(JournalEntry.at, JournalEntry.id) > sa.tuple_(
        sa.literal(position.at, JournalEntry.at.type), sa.literal(position.id)
    )


def _older_than(position: Position) -> sa.ColumnElement[bool]:
    return sa.tuple_(JournalEntry.at, JournalEntry.id) < sa.tuple_(
        sa.literal(position.at, JournalEntry.at.type), sa.literal(position.id)
    )


def activity_page(
    citizen_id: int,
    *,
    before: Position | None = None,
    after: Position | None = None,
    service: str = "",
) -> ActivityPage:
    """``PER_PAGE`` entries, newest first, of one service if ``service`` is given: the
    newest ones, those just older than ``before``, or those just newer than ``after``.
    Read by position (the index on resident, time and id), never by offset and never
    counted: one more row than shown says whether there is more that way, and one
    ``EXISTS`` whether there is any the other way. A position with nothing beyond it
    is the first page."""
    query = db.select(JournalEntry).filter_by(citizen_id=citizen_id)
    if service:
        query = query.filter_by(connector_instance=service)
    newest_first = (JournalEntry.at.desc(), JournalEntry.id.desc())
    if after is not None:
        rows = list(
            db.session.execute(
                query.where(_newer_than(after))
                .order_by(JournalEntry.at.asc(), JournalEntry.id.asc())
                .limit(PER_PAGE + 1)
            ).scalars()
        )
        has_newer = len(rows) > PER_PAGE
        entries = rows[:PER_PAGE][::-1]
        if entries:
            older = _older_than(Position(entries[-1].at, entries[-1].id, 0))
            has_older = bool(db.session.scalar(db.select(query.where(older).exists())))
            page = after.page if has_newer else 1
            return _page(entries, max(page, 1), service, has_newer, has_older)
    elif before is not None:
        rows = list(
            db.session.execute(
                query.where(_older_than(before)).order_by(*newest_first).limit(PER_PAGE + 1)
            ).scalars()
        )
        entries = rows[:PER_PAGE]
        if entries:
            newer = _newer_than(Position(entries[0].at, entries[0].id, 0))
            has_newer = bool(db.session.scalar(db.select(query.where(newer).exists())))
            page = before.page if has_newer else 1
            return _page(entries, page, service, has_newer, len(rows) > PER_PAGE)
    rows = list(db.session.execute(query.order_by(*newest_first).limit(PER_PAGE + 1)).scalars())
    return _page(rows[:PER_PAGE], 1, service, False, len(rows) > PER_PAGE)


def _page(
    entries: list[JournalEntry], page: int, service: str, has_newer: bool, has_older: bool
) -> ActivityPage:
    return ActivityPage(entries, page, service, has_newer, has_older, done_for_you(entries))


def activity_rows(activity: ActivityPage) -> list[ActivityRow]:
    """The page's lines: every label (who, what, which service, how it went) looked up
    in the catalogue once for the page, not once per line."""
    from portal.journal_text import actions, journal_line

    known = {code: str(label) for code, label in actions().items()}
    actors = {
        "citizen": _("vous"),
        "system": _("système"),
        "adviser": _("un conseiller numérique"),
    }
    outcomes = {"success": _("réussi"), "refused": _("refusé"), "failure": _("échec")}
    titles: dict[str, str] = {}
    rows = []
    for entry in activity.entries:
        line = journal_line(entry, known)
        slug = entry.connector_instance
        if slug and slug not in titles:
            titles[slug] = service_title(slug)
        rows.append(
            ActivityRow(
                entry=entry,
                by=activity.done_for_you.get(entry.id)
                or actors.get(entry.actor_kind, entry.actor_kind),
                action=line.action,
                service=titles.get(slug, ""),
                outcome=outcomes.get(entry.outcome, entry.outcome),
                detail=line.detail,
            )
        )
    return rows


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
