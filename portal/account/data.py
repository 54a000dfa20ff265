"""What the portal holds about a resident: read back in full, or deleted in full.

The export is the right of access in a machine-readable form; deletion is the right to
erasure. Both are written against the list of tables that hold a resident's data, so a
new table has to be added here too (``tests/integration/test_account.py`` checks every
row is gone).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from portal.account.activity import service_title
from portal.extensions import db
from portal.mandates import scope_title
from portal.models import (
    AssistedSession,
    AuthSession,
    Citizen,
    ConnectorSnapshot,
    DeskVisit,
    JournalEntry,
    Mandate,
    MandateNotice,
    MandateRevocation,
    MandateScope,
    Payment,
    ReminderDigest,
    ReminderSent,
    ReminderSettings,
    ServiceLink,
    WriteRecord,
)


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def masked_number(number: str) -> str:
    """A card, family or application number as the resident knows it, masked: it is
    half of a proof of ownership, so only its last four characters are shown
    (« •••• 4521 »)."""
    number = "".join((number or "").split())
    if not number:
        return ""
    if len(number) <= 4:
        return "•" * len(number)
    return "••••\u00a0" + number[-4:]


def links_of(citizen_id: int) -> list[ServiceLink]:
    return list(
        db.session.execute(
            db.select(ServiceLink).filter_by(citizen_id=citizen_id).order_by(ServiceLink.linked_at)
        ).scalars()
    )


def _rows(model: Any, citizen_id: int, order: Any) -> list[Any]:
    return list(
        db.session.execute(
            db.select(model).filter_by(citizen_id=citizen_id).order_by(order)
        ).scalars()
    )


def export_data(citizen: Citizen) -> dict[str, Any]:
    """Everything about the resident, except secrets: a link's encrypted secret is
    reported as present or not, never copied out (it is the back-end's credential)."""
    links = links_of(citizen.id)
    link_ids = [str(link.id) for link in links]
    snapshots = (
        list(
            db.session.execute(
                db.select(ConnectorSnapshot.instance_slug, ConnectorSnapshot.fetched_at).where(
                    ConnectorSnapshot.subject.in_(link_ids)
                )
            )
        )
        if link_ids
        else []
    )
    return {
        "format": "compte-territorial-export/1",
        "identity": {
            "franceconnect_sub": citizen.sub,
            "given_name": citizen.given_name,
            "family_name": citizen.family_name,
            "usage_name": citizen.usage_name,
            "birthdate": _iso(citizen.birthdate),
            "email": citizen.email,
            "preferred_locale": citizen.preferred_locale,
            "created_at": _iso(citizen.created_at),
            "updated_at": _iso(citizen.updated_at),
            "last_sign_in_at": _iso(citizen.last_sign_in_at),
        },
        "links": [
            {
                "service": link.instance_slug,
                "service_title": service_title(link.instance_slug),
                "external_id": link.external_id,
                "account_number": link.account_number,
                "display_name": link.display_name,
                "linked_at": _iso(link.linked_at),
                "linked_by": link.linked_by_kind,
                "status": link.status,
                "has_stored_secret": link.secret_ciphertext is not None,
            }
            for link in links
        ],
        "activity": [
            {
                "at": _iso(entry.at),
                "actor": entry.actor_kind,
                "actor_id": entry.actor_id,
                "action": entry.action,
                "service": entry.connector_instance,
                "outcome": entry.outcome,
                "detail": entry.detail,
                "code": entry.code,
                "params": entry.params,
            }
            for entry in _rows(JournalEntry, citizen.id, JournalEntry.id)
        ],
        "payments": [
            {
                "service": payment.instance_slug,
                "invoice_id": payment.invoice_id,
                "invoice_label": payment.invoice_label,
                "payment_id": payment.payment_id,
                "amount_cents": payment.amount_cents,
                "state": payment.state,
                "reason": payment.reason,
                "created_at": _iso(payment.created_at),
                "updated_at": _iso(payment.updated_at),
            }
            for payment in _rows(Payment, citizen.id, Payment.id)
        ],
        "requests_sent_to_services": [
            {
                "service": write.instance_slug,
                "action": write.action,
                "state": write.state,
                "result": _json_or_text(write.result),
                "created_at": _iso(write.created_at),
            }
            for write in _rows(WriteRecord, citizen.id, WriteRecord.id)
        ],
        "cached_service_data": [
            {"service": slug, "fetched_at": _iso(fetched_at)} for slug, fetched_at in snapshots
        ],
        "calendar_feed": {"exists": citizen.calendar_token_hash is not None},
        "mandates": _mandates(citizen.id),
        "reminders": _reminders(citizen.id),
    }


def _reminders(citizen_id: int) -> dict[str, Any]:
    """The reminder settings and what was sent: kind, deadline and lead time (what the
    item was is the service's to say; the row keeps only a hash of it)."""
    prefs = db.session.get(ReminderSettings, citizen_id)
    return {
        "enabled": bool(prefs and prefs.enabled),
        "email": prefs.email if prefs else None,
        "email_waiting_confirmation": (prefs.pending_email or None) if prefs else None,
        "kinds": prefs.leads if prefs else {},
        "locale": prefs.locale if prefs else None,
        "digests": [
            {"day": _iso(d.day), "state": d.state, "channel": d.channel, "reminders": d.items}
            for d in _rows(ReminderDigest, citizen_id, ReminderDigest.id)
            if d.items
        ],
        "sent": [
            {"kind": r.kind, "deadline": _iso(r.due_on), "days_before": r.lead_days}
            for r in _rows(ReminderSent, citizen_id, ReminderSent.id)
        ],
    }


def _mandates(citizen_id: int) -> list[dict[str, Any]]:
    """The mandates given to help desks: terms, what was revoked, and how many actions
    were taken under each (the actions themselves are in ``activity``)."""
    from portal.mandates import ended_at, status_of

    mandates = _rows(Mandate, citizen_id, Mandate.id)
    counts = dict(
        db.session.execute(
            db.select(JournalEntry.mandate_id, db.func.count())
            .filter_by(citizen_id=citizen_id)
            .where(JournalEntry.mandate_id.is_not(None))
            .group_by(JournalEntry.mandate_id)
        ).all()
    )
    return [
        {
            "reference": mandate.reference,
            "desk": mandate.desk_name,
            "opened_by": mandate.adviser_name,
            "channel": mandate.channel,
            "duration": mandate.duration,
            "services": [
                {"service": row.scope, "service_title": scope_title(row.scope)}
                for row in mandate.scopes
            ],
            "starts_at": _iso(mandate.starts_at),
            "ends_at": _iso(mandate.ends_at),
            "ended_at": _iso(ended_at(mandate)),
            "status": status_of(mandate),
            "revocations": [
                {"service": r.scope, "at": _iso(r.at), "by": r.by_kind} for r in mandate.revocations
            ],
            "legal_version": mandate.legal_version,
            "terms_hash": mandate.terms_hash,
            "actions": counts.get(mandate.id, 0),
        }
        for mandate in mandates
    ]


def _json_or_text(value: str) -> Any:
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value


def delete_account(citizen_id: int) -> None:
    """Delete the resident and every row about them, in the caller's transaction.

    Explicit deletes rather than trusting ``ON DELETE CASCADE``: SQLite enforces foreign
    keys only when asked to, and snapshots point at a link by a plain ``subject`` column.
    The resident's row goes first: the journal is append-only in the database while its
    resident exists (a trigger), so it can be erased only with the whole account.
    """
    link_ids = [
        str(link_id)
        for link_id in db.session.scalars(
            db.select(ServiceLink.id).filter_by(citizen_id=citizen_id)
        )
    ]
    mandate_ids = list(db.session.scalars(db.select(Mandate.id).filter_by(citizen_id=citizen_id)))
    db.session.execute(db.delete(Citizen).where(Citizen.id == citizen_id))
    # Links before their snapshots: a read still saving one holds its link's row (see
    # ``DatabaseSnapshotStore.put``), so this waits for it, then deletes what it saved.
    for model in (ServiceLink, JournalEntry, WriteRecord, Payment, AuthSession):
        db.session.execute(db.delete(model).where(model.citizen_id == citizen_id))
    if link_ids:
        db.session.execute(
            db.delete(ConnectorSnapshot).where(ConnectorSnapshot.subject.in_(link_ids))
        )
    # Mandates are append-only while their resident exists (triggers): now they may go,
    # what points at them first.
    db.session.execute(db.delete(DeskVisit).where(DeskVisit.citizen_id == citizen_id))
    if mandate_ids:
        for child in (DeskVisit, AssistedSession, MandateNotice, MandateScope, MandateRevocation):
            db.session.execute(db.delete(child).where(child.mandate_id.in_(mandate_ids)))
    db.session.execute(db.delete(Mandate).where(Mandate.citizen_id == citizen_id))
    for reminder_model in (ReminderSent, ReminderDigest, ReminderSettings):
        db.session.execute(db.delete(reminder_model).where(reminder_model.citizen_id == citizen_id))
