"""Every write to a back-end goes through ``perform``: once per idempotency key,
journaled, and never half-recorded.

The form carries a key made when it was rendered. ``perform`` claims the key by inserting
its ``WriteRecord`` (unique) before calling the back-end, passes the same key to the
back-end (which deduplicates on its side too), and stores the answer. A double click or a
replayed form finds the row and gets the first answer back without a second call.

A write sent without an answer coming back (``OutcomeUnknown``) may have been done: its
row is kept as ``unknown`` with its key and what the request was, and nothing final is
journaled. The next submission of the same form, or the next visit to the page
(``unknown_writes`` lists what to ask), sends the same request with the same key: the
back-end's idempotency replay then gives its stored answer (or acts now, once, if the
first request never reached it), and the write is settled and journaled once.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

from sqlalchemy import update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError

from connectors.base import (
    CallContext,
    ContractBroken,
    LinkInvalid,
    OutcomeUnknown,
    Refused,
    Unavailable,
)
from portal.actor import current_actor
from portal.extensions import db
from portal.models import JournalEntry, ServiceLink, WriteRecord

log = logging.getLogger(__name__)

KEY_RE = re.compile(r"^[0-9a-f]{32}$")

Status = Literal["done", "refused", "failed", "relink", "in_progress", "invalid", "unknown"]


def new_key() -> str:
    """A fresh idempotency key, rendered into each write form."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class WriteOutcome:
    status: Status
    #: JSON-able result of a done write (per-item outcomes, new dates...).
    result: Any = None
    #: The back-end's reason when refused, and its stable code (``portal.refusals``).
    reason: str = ""
    #: True when this answer is the stored one of an earlier identical submission.
    replayed: bool = False
    reason_code: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "done"


def perform(
    *,
    link: ServiceLink,
    action: str,
    key: str | None,
    deadline_s: float,
    call: Callable[[CallContext, str], Any],
    encode: Callable[[Any], Any] = lambda value: value,
    summary: Callable[[Any], dict[str, Any]] = lambda value: {},
    params: dict[str, Any] | None = None,
    journal: bool = True,
    request: dict[str, Any] | None = None,
    ask_again: bool = True,
) -> WriteOutcome:
    """Run ``call(ctx, key)`` once for ``key`` and journal it.

    ``encode`` turns the call's result into JSON-able data kept for replays; ``params``
    are the journal entry's non-secret parameters, ``summary`` those of a success.
    ``journal=False`` leaves journaling to the caller, for a write whose real outcome
    comes later (a payment is journaled once paid, refused or abandoned). ``request`` is
    what the write asked (JSON-able, non-secret), kept while its outcome is unknown so
    that a later page can send it again. ``ask_again`` is False for a back-end that does
    not replay an Idempotency-Key (sending again could act twice): an unknown write then
    stays unknown.
    """
    if not key or not KEY_RE.match(key):
        return WriteOutcome("invalid")
    citizen_id = link.citizen_id
    existing = db.session.execute(db.select(WriteRecord).filter_by(key=key)).scalar_one_or_none()
    if existing is not None:
        if existing.citizen_id != citizen_id or existing.action != action:
            return WriteOutcome("invalid")
        if existing.state == "done":
            stored = json.loads(existing.result or "{}")
            return WriteOutcome(
                stored.get("status", "done"),
                stored.get("result"),
                stored.get("reason", ""),
                replayed=True,
                reason_code=stored.get("reason_code", ""),
            )
        if existing.state == "pending":
            return WriteOutcome("in_progress")
        if existing.state == "unknown":
            if not ask_again:
                return WriteOutcome("unknown", replayed=True)
            return _ask_again(
                existing, link, action, deadline_s, call, encode, summary, params, journal
            )
        record = existing  # failed before: nothing was done, the same key may try again
        record.state = "pending"
    else:
        record = WriteRecord(
            key=key, citizen_id=citizen_id, instance_slug=link.instance_slug, action=action
        )
        db.session.add(record)
    try:
        db.session.commit()
    except IntegrityError:
        # Another request claimed this key a moment ago (double click).
        db.session.rollback()
        return WriteOutcome("in_progress")

    ctx = CallContext.with_timeout(
        deadline_s, actor=current_actor().context_actor, subject=str(link.id)
    )
    params = dict(params or {})
    try:
        value = call(ctx, key)
    except OutcomeUnknown:
        log.info("%s on %s: sent, no answer", action, link.instance_slug)
        return _unknown(record, request)
    except Refused as exc:
        refused = WriteOutcome("refused", reason=exc.reason, reason_code=exc.reason_code)
        return _finish(record, link, action, refused, params, journal)
    except LinkInvalid:
        link.status = "needs_relink"
        return _fail(record, link, action, "relink", params, journal)
    except (Unavailable, ContractBroken) as exc:
        log.info("%s on %s failed: %s", action, link.instance_slug, type(exc).__name__)
        return _fail(record, link, action, "failed", params, journal)
    except Exception:
        log.exception("%s on %s crashed", action, link.instance_slug)
        return _fail(record, link, action, "failed", params, journal)
    outcome = WriteOutcome("done", encode(value))
    return _finish(record, link, action, outcome, {**params, **summary(value)}, journal)


def _ask_again(
    record: WriteRecord,
    link: ServiceLink,
    action: str,
    deadline_s: float,
    call: Callable[[CallContext, str], Any],
    encode: Callable[[Any], Any],
    summary: Callable[[Any], dict[str, Any]],
    params: dict[str, Any] | None,
    journal: bool,
) -> WriteOutcome:
    """Send an unknown write again with its own key; settle it if the back-end answers.

    Whatever stops the answer this time (down, slow, link refused) says nothing more
    about the first sending: the write stays unknown, and nothing is journaled.
    """
    # Session.execute is typed as returning a Result; for an UPDATE it is a CursorResult.
    claimed = cast(
        CursorResult[Any],
        db.session.execute(
            update(WriteRecord)
            .where(WriteRecord.id == record.id, WriteRecord.state == "unknown")
            .values(state="pending")
        ),
    )
    db.session.commit()
    if claimed.rowcount != 1:  # another tab is asking at this very moment
        return WriteOutcome("in_progress")
    db.session.refresh(record)
    ctx = CallContext.with_timeout(
        deadline_s, actor=current_actor().context_actor, subject=str(link.id)
    )
    try:
        value = call(ctx, record.key)
    except Refused as exc:
        refused = WriteOutcome("refused", reason=exc.reason, reason_code=exc.reason_code)
        return _finish(record, link, action, refused, dict(params or {}), journal)
    except LinkInvalid:
        link.status = "needs_relink"
        _unknown(record, None)
        return WriteOutcome("relink")
    except (OutcomeUnknown, Unavailable, ContractBroken) as exc:
        log.info("%s on %s still unknown: %s", action, link.instance_slug, type(exc).__name__)
        return _unknown(record, None)
    except Exception:
        log.exception("%s on %s crashed", action, link.instance_slug)
        return _unknown(record, None)
    outcome = WriteOutcome("done", encode(value))
    return _finish(record, link, action, outcome, {**(params or {}), **summary(value)}, journal)


def _unknown(record: WriteRecord, request: dict[str, Any] | None) -> WriteOutcome:
    """Keep the write, its key and what it asked, to be asked again; journal nothing."""
    if request is None:
        request = stored_request(record)
    record.state = "unknown"
    record.result = json.dumps({"status": "unknown", "request": request})
    db.session.commit()
    return WriteOutcome("unknown")


def stored_request(record: WriteRecord) -> dict[str, Any]:
    """What an unknown write asked, as ``perform`` was given it (``{}`` if nothing)."""
    try:
        stored = json.loads(record.result or "{}")
    except ValueError:
        return {}
    request = stored.get("request") if isinstance(stored, dict) else None
    return request if isinstance(request, dict) else {}


def unknown_writes(link: ServiceLink, action: str | None = None) -> list[WriteRecord]:
    """The writes on this link whose outcome is not known yet, oldest first."""
    query = db.select(WriteRecord).filter_by(
        citizen_id=link.citizen_id, instance_slug=link.instance_slug, state="unknown"
    )
    if action is not None:
        query = query.filter_by(action=action)
    return list(db.session.execute(query.order_by(WriteRecord.id)).scalars())


def _finish(
    record: WriteRecord,
    link: ServiceLink,
    action: str,
    outcome: WriteOutcome,
    params: dict[str, Any],
    journal: bool,
) -> WriteOutcome:
    record.state = "done"
    record.result = json.dumps(
        {
            "status": outcome.status,
            "result": outcome.result,
            "reason": outcome.reason,
            "reason_code": outcome.reason_code,
        }
    )
    if journal:
        if outcome.status != "done":
            params = {**params, "reason": outcome.reason[:300], "reason_code": outcome.reason_code}
        JournalEntry.record(
            link.citizen_id,
            action,
            "success" if outcome.status == "done" else "refused",
            actor=current_actor(),
            connector_instance=link.instance_slug,
            code=action if outcome.status == "done" else f"{action}_refused",
            params=params,
        )
    db.session.commit()
    return outcome


def _fail(
    record: WriteRecord,
    link: ServiceLink,
    action: str,
    status: Status,
    params: dict[str, Any],
    journal: bool,
) -> WriteOutcome:
    record.state = "failed"
    if journal:
        JournalEntry.record(
            link.citizen_id,
            action,
            "failure",
            actor=current_actor(),
            connector_instance=link.instance_slug,
            code=f"{action}_not_done",
            params=params,
        )
    db.session.commit()
    return WriteOutcome(status)
