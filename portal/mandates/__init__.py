"""Mandates: opened at a desk with the resident, used by the desk's advisers, revoked by
the resident online or at any desk. The models are in ``portal.models.mandate``.

What a mandate allows at a given moment is computed here, in one place
(``live_scopes``): its scopes, less those revoked, and nothing once the whole mandate
is revoked or its end has passed. Everything that lets an adviser act asks this
function, at every request (a form opened before a revocation is refused when sent).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from flask_babel import lazy_gettext as _l

from portal.extensions import db
from portal.models import (
    Agent,
    Desk,
    DeskJournalEntry,
    Mandate,
    MandateRevocation,
    MandateScope,
)
from portal.models._types import utcnow
from portal.models.mandate import CHANNELS, DURATIONS, PAYMENTS_SUFFIX

__all__ = [
    "CHANNELS",
    "DURATIONS",
    "PAYMENTS_SUFFIX",
    "VISIT_ONLY_MAX",
    "ScopeChoice",
    "active_mandates",
    "desk_journal",
    "ends_at_for",
    "instance_of",
    "is_payment_scope",
    "live_scopes",
    "new_reference",
    "open_mandate",
    "revoke",
    "scope_choices",
    "status_of",
    "terms_hash",
]

#: A "this visit only" mandate ends with the visit, and at the latest after this.
VISIT_ONLY_MAX = timedelta(hours=2)

#: The menu, in plain words.
DURATION_LABELS = {
    "visit": _l("Cette visite seulement"),
    "1d": _l("1 jour"),
    "1m": _l("1 mois"),
    "6m": _l("6 mois"),
    "1y": _l("1 an"),
}
CHANNEL_LABELS = {"desk": _l("Au guichet"), "phone": _l("Par téléphone")}
#: Durations long enough that renewing them needs the resident at the desk again.
LONG_DURATIONS = ("6m", "1y")


def ends_at_for(duration: str, start: datetime) -> datetime:
    if duration == "visit":
        return start + VISIT_ONLY_MAX
    if duration == "1d":
        return start + timedelta(days=1)
    months = {"1m": 1, "6m": 6, "1y": 12}[duration]
    return start + relativedelta(months=months)


def is_payment_scope(scope: str) -> bool:
    return scope.endswith(PAYMENTS_SUFFIX)


def instance_of(scope: str) -> str:
    return scope.removesuffix(PAYMENTS_SUFFIX)


@dataclass(frozen=True)
class ScopeChoice:
    """One box the adviser may tick: a service, or paying its invoices."""

    scope: str
    title: str
    kind_title: str
    payment: bool


def scope_choices() -> list[tuple[str, list[ScopeChoice]]]:
    """What a mandate may cover, grouped by kind in the dashboard's order: every
    configured instance an installed kind serves, and for a kind that bills through the
    portal, paying its invoices as a separate choice."""
    from portal.integrations import registry
    from portal.services import kinds

    reg = registry()
    groups: dict[str, tuple[int, str, list[ScopeChoice]]] = {}
    for slug, instance in reg.instances.items():
        category = reg.connector(slug).category
        if not kinds.known(category):
            continue
        kind = kinds.kind(category)
        title = str(kind.title)
        _order, _title, choices = groups.setdefault(category, (kind.order, title, []))
        choices.append(ScopeChoice(slug, instance.title, title, False))
        if kind.bills:
            choices.append(ScopeChoice(slug + PAYMENTS_SUFFIX, instance.title, title, True))
    return [(title, choices) for _order, title, choices in sorted(groups.values(), key=_first)]


def _first(group: tuple[int, str, list[ScopeChoice]]) -> tuple[int, str]:
    return group[0], group[1]


def valid_scopes() -> set[str]:
    return {choice.scope for _title, choices in scope_choices() for choice in choices}


def scope_title(scope: str) -> str:
    """A scope in plain words: the service's title, or paying its invoices."""
    from portal.integrations import registry

    instance = registry().instances.get(instance_of(scope))
    title = instance.title if instance is not None else instance_of(scope)
    if is_payment_scope(scope):
        return str(_l("Payer les factures : %(service)s", service=title))
    return title


def new_reference() -> str:
    """« M-7K3F-9QX2 »: unambiguous letters and digits, read aloud or typed at a desk."""
    alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
    body = "".join(secrets.choice(alphabet) for _ in range(8))
    return f"M-{body[:4]}-{body[4:]}"


def terms_hash(
    *,
    reference: str,
    desk: Desk,
    citizen_id: int,
    scopes: Sequence[str],
    starts_at: datetime,
    ends_at: datetime,
    legal_version: str,
) -> str:
    """SHA-256 over the terms as printed, so a receipt can be checked against the record."""
    terms = {
        "reference": reference,
        "desk_siret": desk.siret,
        "citizen": citizen_id,
        "scopes": sorted(scopes),
        "starts_at": starts_at.isoformat(timespec="seconds"),
        "ends_at": ends_at.isoformat(timespec="seconds"),
        "legal_version": legal_version,
    }
    encoded = json.dumps(terms, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


def live_scopes(mandate: Mandate, now: datetime | None = None) -> set[str]:
    """What the mandate allows now: empty once it has ended or was revoked whole."""
    now = now or utcnow()
    if now >= mandate.ends_at or now < mandate.starts_at:
        return set()
    revoked: set[str] = set()
    for revocation in mandate.revocations:
        if revocation.at > now:
            continue
        if revocation.scope is None:
            return set()
        revoked.add(revocation.scope)
    return {row.scope for row in mandate.scopes} - revoked


def status_of(mandate: Mandate, now: datetime | None = None) -> str:
    """``active``, ``expired`` or ``revoked`` (whole, or every service one by one)."""
    now = now or utcnow()
    whole = next((r for r in mandate.revocations if r.scope is None and r.at <= now), None)
    if whole is not None and whole.at < mandate.ends_at:
        return "revoked"
    if now >= mandate.ends_at:
        return "expired"
    return "active" if live_scopes(mandate, now) else "revoked"


def ended_at(mandate: Mandate) -> datetime:
    """When it stopped or stops: its end, or the revocation of the whole, if earlier."""
    whole = [r.at for r in mandate.revocations if r.scope is None]
    return min([mandate.ends_at, *whole])


def active_mandates(*, desk_id: int | None = None, citizen_id: int | None = None) -> list[Mandate]:
    """Mandates still in force for a desk or a resident, newest first."""
    now = utcnow()
    query = db.select(Mandate).where(Mandate.ends_at > now).order_by(Mandate.id.desc())
    if desk_id is not None:
        query = query.filter_by(desk_id=desk_id)
    if citizen_id is not None:
        query = query.filter_by(citizen_id=citizen_id)
    return [m for m in db.session.scalars(query) if live_scopes(m, now)]


def revoke(
    mandate: Mandate,
    scope: str | None,
    *,
    by_kind: str,
    by_id: str = "",
    by_label: str = "",
    at: datetime | None = None,
) -> MandateRevocation | None:
    """Add a revocation, effective at once; None when there was nothing left to revoke
    (already ended, or that service already revoked: a second click changes nothing)."""
    now = at or utcnow()
    scopes = live_scopes(mandate, now)
    if not scopes or (scope is not None and scope not in scopes):
        return None
    if scope is not None and scopes == {scope}:
        scope = None  # the last service: the whole mandate ends
    row = MandateRevocation(
        mandate_id=mandate.id,
        scope=scope,
        at=now,
        by_kind=by_kind,
        by_id=by_id,
        by_label=by_label,
    )
    db.session.add(row)
    db.session.flush()
    db.session.expire(mandate, ["revocations"])
    return row


def open_mandate(
    *,
    visit_id: str,
    desk: Desk,
    agent: Agent,
    citizen_id: int,
    scopes: Iterable[str],
    duration: str,
    channel: str,
    legal_version: str,
) -> Mandate:
    """Open a mandate, replacing the desk's active mandates for this resident that cover
    any of the same services (their remaining services are not carried over: the new
    mandate says what holds). Flushes; the caller commits."""
    now = utcnow()
    scopes = sorted(set(scopes))
    for older in active_mandates(desk_id=desk.id, citizen_id=citizen_id):
        if live_scopes(older, now) & set(scopes):
            revoke(older, None, by_kind="replaced", at=now)
    ends = ends_at_for(duration, now)
    reference = new_reference()
    mandate = Mandate(
        reference=reference,
        desk_id=desk.id,
        citizen_id=citizen_id,
        opened_by_agent_id=agent.id,
        duration=duration,
        channel=channel,
        starts_at=now,
        ends_at=ends,
        legal_version=legal_version,
        terms_hash=terms_hash(
            reference=reference,
            desk=desk,
            citizen_id=citizen_id,
            scopes=scopes,
            starts_at=now,
            ends_at=ends,
            legal_version=legal_version,
        ),
        visit_id=visit_id,
        desk_name=desk.name,
        adviser_name=agent.display_name,
    )
    db.session.add(mandate)
    db.session.flush()
    for scope in scopes:
        db.session.add(MandateScope(mandate_id=mandate.id, scope=scope))
    db.session.flush()
    db.session.expire(mandate, ["scopes"])
    return mandate


def desk_journal(
    desk_id: int,
    action: str,
    *,
    agent: Agent | None = None,
    mandate: Mandate | None = None,
    params: dict[str, Any] | None = None,
) -> DeskJournalEntry:
    """Append one line to the desk's journal (never a resident's name: a reference)."""
    entry = DeskJournalEntry(
        desk_id=desk_id,
        agent_id=agent.id if agent is not None else None,
        agent_name=agent.display_name if agent is not None else "",
        action=action,
        mandate_reference=mandate.reference if mandate is not None else "",
        params=params or None,
    )
    db.session.add(entry)
    return entry


def find_by_reference(text: str) -> Mandate | None:
    """A mandate by its receipt's reference, typed loosely (« m 7k3f 9qx2 »)."""
    cleaned = "".join(ch for ch in text.upper() if ch.isalnum())
    if cleaned.startswith("M"):
        cleaned = cleaned[1:]
    if len(cleaned) != 8:
        return None
    reference = f"M-{cleaned[:4]}-{cleaned[4:]}"
    return db.session.execute(
        db.select(Mandate).filter_by(reference=reference)
    ).scalar_one_or_none()
