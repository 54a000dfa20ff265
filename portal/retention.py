"""How long the portal keeps what expires, and the purge that enforces it.

``flask --app portal purge`` deletes, in one transaction:

- sessions past their idle or absolute timeout (each row holds a FranceConnect ID
  token, kept only to sign out there), and agents' sessions past theirs (ProConnect);
- idempotency records of writes that ended (``done`` or ``failed``) more than
  ``WRITE_RECORD_RETENTION`` ago: a form that old is never replayed; ``pending`` ones
  are kept, their outcome is still to be known;
- snapshots fetched more than ``SNAPSHOT_RETENTION`` ago (too old to be worth showing
  during an outage), and snapshots whose link no longer exists;
- agents' access requests (kept from a refused sign-in for a desk's referent to use)
  older than ``ACCESS_REQUEST_RETENTION``;
- desk visits (a mandate being opened) whose step is over (``DESK_VISIT_RETENTION``);
- assisted sessions (the record of an adviser's visit) older than
  ``ASSISTED_SESSION_RETENTION``;
- mandates, with their services and revocations, ended more than
  ``MANDATE_RETENTION`` ago, and desk journal lines older than
  ``DESK_JOURNAL_RETENTION``: the database refuses to delete either within a year
  (triggers, see the mandates' migration), the purge comes a day later than that.
- anonymous measurement's raw events older than ``RAW_EVENT_RETENTION`` (13 months),
  and the visitor keys of days already over (``portal.measure.rollup``; the daily
  roll-ups are kept);
- reminders sent (``reminder_sent``) whose deadline passed more than
  ``REMINDER_RETENTION`` ago (their key only stops a second message for a deadline
  still to come), then the day's digests older than that which carry none any more;
- connector probes older than ``PROBE_RETENTION`` (2 days; the status page reads the
  last 15 minutes), and the worker's job runs past theirs (succeeded: 7 days, failed:
  30 days; ``portal.jobs.runs``).

Payments and the activity journal stay as long as the account (they are the resident's
record of what was done); deleting the account deletes them. The worker runs the purge
every hour (``portal.jobs.schedule``); see ``docs/operations.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult

from portal.config import current_settings
from portal.extensions import db
from portal.integrations import PROBE_RETENTION, delete_old_probes
from portal.jobs.runs import delete_old_runs
from portal.measure.events import paris_day
from portal.measure.rollup import delete_old_events, delete_past_keys
from portal.models import (
    AgentAccessRequest,
    AgentSession,
    AssistedSession,
    AuthSession,
    ConnectorSnapshot,
    DeskJournalEntry,
    DeskVisit,
    Mandate,
    MandateNotice,
    MandateRevocation,
    MandateScope,
    ReminderDigest,
    ReminderSent,
    ServiceLink,
    WriteRecord,
)
from portal.models._types import utcnow
from portal.models.measure import RAW_EVENT_RETENTION

#: A write's idempotency record outlives any form that could replay it.
WRITE_RECORD_RETENTION = timedelta(days=30)
#: A copy older than this is not shown as "last known" any more: it is deleted.
SNAPSHOT_RETENTION = timedelta(days=30)
#: A refused agent asks again (signs in once more) after this.
ACCESS_REQUEST_RETENTION = timedelta(days=30)
#: A desk visit's step lasts 5 minutes; past it, the visit cannot go on.
DESK_VISIT_RETENTION = timedelta(minutes=5)
#: The record of an adviser's visit (the desk's "today's visits").
ASSISTED_SESSION_RETENTION = timedelta(days=365)
#: A mandate is kept a year after its end (the legal text says so); the database
#: refuses its deletion within 365 days of its end.
MANDATE_RETENTION = timedelta(days=366)
#: A desk journal line is kept a year; the database refuses its deletion before.
DESK_JOURNAL_RETENTION = timedelta(days=366)
#: A reminder's row outlives its deadline by this (what was sent, for the resident's
#: export and for support), then goes: a deadline past is never reminded.
REMINDER_RETENTION = timedelta(days=30)


@dataclass(frozen=True)
class Purged:
    sessions: int
    write_records: int
    old_snapshots: int
    orphan_snapshots: int
    agent_sessions: int = 0
    access_requests: int = 0
    desk_visits: int = 0
    assisted_sessions: int = 0
    mandates: int = 0
    desk_journal_lines: int = 0
    measure_events: int = 0
    visitor_keys: int = 0
    probes: int = 0
    job_runs: int = 0
    reminders: int = 0
    reminder_digests: int = 0

    def lines(self) -> list[str]:
        return [
            f"{self.sessions} expired session(s) deleted",
            f"{self.write_records} write record(s) older than "
            f"{WRITE_RECORD_RETENTION.days} days deleted",
            f"{self.old_snapshots} snapshot(s) older than {SNAPSHOT_RETENTION.days} days deleted",
            f"{self.orphan_snapshots} snapshot(s) of links that no longer exist deleted",
            f"{self.agent_sessions} expired agent session(s) deleted",
            f"{self.access_requests} agent access request(s) older than "
            f"{ACCESS_REQUEST_RETENTION.days} days deleted",
            f"{self.desk_visits} desk visit(s) past their step deleted",
            f"{self.assisted_sessions} assisted session(s) older than "
            f"{ASSISTED_SESSION_RETENTION.days} days deleted",
            f"{self.mandates} mandate(s) ended more than {MANDATE_RETENTION.days} days ago deleted",
            f"{self.desk_journal_lines} desk journal line(s) older than "
            f"{DESK_JOURNAL_RETENTION.days} days deleted",
            f"{self.measure_events} measurement event(s) older than "
            f"{RAW_EVENT_RETENTION.days} days deleted",
            f"{self.visitor_keys} past day(s)' visitor key(s) deleted",
            f"{self.probes} connector probe(s) older than {PROBE_RETENTION.days} days deleted",
            f"{self.job_runs} old job run(s) deleted",
            f"{self.reminders} reminder(s) whose deadline passed more than "
            f"{REMINDER_RETENTION.days} days ago deleted",
            f"{self.reminder_digests} old reminder digest(s) deleted",
        ]


def purge_expired(now: datetime | None = None) -> Purged:
    """Delete every expired row (see the module) and commit; the counts deleted."""
    now = now or utcnow()
    settings = current_settings()
    idle_before = now - timedelta(minutes=settings.session_idle_minutes)
    started_before = now - timedelta(hours=settings.session_absolute_hours)

    def delete(statement: sa.Delete) -> int:
        # Session.execute is typed as returning a Result; for a DELETE it is a CursorResult.
        return cast(CursorResult[Any], db.session.execute(statement)).rowcount or 0

    sessions = delete(
        sa.delete(AuthSession).where(
            (AuthSession.last_seen_at < idle_before) | (AuthSession.created_at < started_before)
        )
    )
    agent_sessions = delete(
        sa.delete(AgentSession).where(
            (
                AgentSession.last_seen_at
                < now - timedelta(minutes=settings.agent_session_idle_minutes)
            )
            | (
                AgentSession.created_at
                < now - timedelta(hours=settings.agent_session_absolute_hours)
            )
        )
    )
    write_records = delete(
        sa.delete(WriteRecord).where(
            WriteRecord.state.in_(("done", "failed")),
            WriteRecord.updated_at < now - WRITE_RECORD_RETENTION,
        )
    )
    old_snapshots = delete(
        sa.delete(ConnectorSnapshot).where(ConnectorSnapshot.fetched_at < now - SNAPSHOT_RETENTION)
    )
    link_exists = sa.exists(
        sa.select(ServiceLink.id).where(
            sa.cast(ServiceLink.id, sa.String) == ConnectorSnapshot.subject
        )
    )
    orphan_snapshots = delete(sa.delete(ConnectorSnapshot).where(~link_exists))
    access_requests = delete(
        sa.delete(AgentAccessRequest).where(
            AgentAccessRequest.created_at < now - ACCESS_REQUEST_RETENTION
        )
    )
    desk_visits = delete(sa.delete(DeskVisit).where(DeskVisit.step_at < now - DESK_VISIT_RETENTION))
    assisted_sessions = delete(
        sa.delete(AssistedSession).where(
            AssistedSession.started_at < now - ASSISTED_SESSION_RETENTION
        )
    )
    mandates = _purge_mandates(delete, now - MANDATE_RETENTION)
    desk_journal_lines = delete(
        sa.delete(DeskJournalEntry).where(DeskJournalEntry.at < now - DESK_JOURNAL_RETENTION)
    )
    measure_events = delete_old_events(now)
    visitor_keys = delete_past_keys(paris_day(now))
    probes = delete_old_probes(now)
    job_runs = delete_old_runs(now)
    reminders, reminder_digests = _purge_reminders(delete, paris_day(now) - REMINDER_RETENTION)
    db.session.commit()
    return Purged(
        sessions,
        write_records,
        old_snapshots,
        orphan_snapshots,
        agent_sessions,
        access_requests,
        desk_visits,
        assisted_sessions,
        mandates,
        desk_journal_lines,
        measure_events,
        visitor_keys,
        probes,
        job_runs,
        reminders,
        reminder_digests,
    )


def _purge_reminders(delete: Callable[[sa.Delete], int], before: date) -> tuple[int, int]:
    """Reminders of deadlines before ``before``, then digests of days before it that
    carry no reminder any more."""
    reminders = delete(sa.delete(ReminderSent).where(ReminderSent.due_on < before))
    carried = sa.exists().where(ReminderSent.digest_id == ReminderDigest.id)
    digests = delete(sa.delete(ReminderDigest).where(ReminderDigest.day < before, ~carried))
    return reminders, digests


def _purge_mandates(delete: Callable[[sa.Delete], int], ended_before: datetime) -> int:
    """Mandates whose end is before ``ended_before``, and what hangs on them (deleted
    first: SQLite does not cascade). The end is the mandate's own: a mandate revoked
    early is kept until a year after the end it was opened with, since the database's
    guard looks at that end."""
    old = sa.select(Mandate.id).where(Mandate.ends_at < ended_before).scalar_subquery()
    delete(sa.delete(DeskVisit).where(DeskVisit.mandate_id.in_(old)))
    delete(sa.delete(AssistedSession).where(AssistedSession.mandate_id.in_(old)))
    delete(sa.delete(MandateNotice).where(MandateNotice.mandate_id.in_(old)))
    delete(sa.delete(MandateScope).where(MandateScope.mandate_id.in_(old)))
    delete(sa.delete(MandateRevocation).where(MandateRevocation.mandate_id.in_(old)))
    return delete(sa.delete(Mandate).where(Mandate.ends_at < ended_before))
