"""The portal's record of payments, and the server-side confirmation that moves it on.

A ``Payment`` row is claimed ``starting`` before the back-end is asked for a payment: a
partial unique index admits one open (starting or pending) payment per resident and
invoice, so of several tabs clicking "Payer" at the same moment exactly one reaches the
back-end and the others are sent to its payment. The row becomes pending when the
back-end hands the resident off to the payment provider, and paid, refused or abandoned
only from the back-end's own answer to ``payment_status``, asked through the payer's own
link: neither the browser's return nor the body of a notification is believed. A payment
the back-end no longer knows (its provider's session ended) is settled abandoned, so the
invoice can be paid again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeGuard, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError

from connectors.base import (
    CallContext,
    ConnectorError,
    Invoice,
    LinkInvalid,
    LinkRef,
    PaymentHandoff,
    Refused,
)
from portal.actor import Actor, current_actor
from portal.config import current_settings
from portal.extensions import db
from portal.integrations import registry
from portal.models import JournalEntry, Payment, ServiceLink, WriteRecord
from portal.models._types import utcnow
from portal.models.write import OPEN_PAYMENT_STATES
from portal.services.core import Panel, Service, bills_through_portal, read_panel, service_for
from portal.writes import Status, WriteOutcome, perform

log = logging.getLogger(__name__)

ACTION = "pay_invoice"
RETURN_PATH = "/payments/return"
NOTIFY_PATH = "/payments/notify"

#: How each final state shows in the resident's activity.
JOURNAL_OUTCOMES = {"paid": "success", "refused": "refused", "abandoned": "failure"}

#: Which payment says most about an invoice: a confirmed one, else one under way.
_WEIGHT = {"paid": 2, "pending": 1, "starting": 1}

#: A payment left ``starting`` this long belongs to a request that died between claiming
#: the invoice and recording the provider's answer: it no longer blocks the invoice.
STALE_START_S = 120.0
#: How many times a click on "Payer" looks again after the payment it joined ended.
START_ATTEMPTS = 3
#: The back-end's problem code for a payment it does not (or no longer) know.
UNKNOWN_PAYMENT = "unknown_payment"


# -- lookups -------------------------------------------------------------------------------


def find(payment_id: str, citizen_id: int | None = None) -> Payment | None:
    """The payment with the back-end's id ``payment_id``, restricted to ``citizen_id``'s
    own payments when given (object-level authorisation for the resident's pages)."""
    if not payment_id or len(payment_id) > 128:
        return None
    query = db.select(Payment).filter_by(payment_id=payment_id)
    if citizen_id is not None:
        query = query.filter_by(citizen_id=citizen_id)
    return db.session.execute(query).scalar_one_or_none()


def payer_service(payment: Payment) -> Service | None:
    """The payer's own link at the payment's instance, the only account through which
    the back-end is asked about it; None if it was unlinked or unconfigured since."""
    if payment.instance_slug not in registry().instances:
        return None
    link = db.session.execute(
        db.select(ServiceLink).filter_by(
            citizen_id=payment.citizen_id, instance_slug=payment.instance_slug
        )
    ).scalar_one_or_none()
    service = service_for(link) if link is not None else None
    if service is None or not bills_through_portal(service):
        return None
    return service


def handoff_url(payment: Payment) -> str | None:
    """The provider's page for a payment, to send the resident (back) there.

    ``perform`` keeps the hand-off's answer already (it is what a replayed form gets
    back), so it is read from there rather than stored a second time.
    """
    records = db.session.execute(
        db.select(WriteRecord)
        .filter_by(
            citizen_id=payment.citizen_id,
            instance_slug=payment.instance_slug,
            action=ACTION,
            state="done",
        )
        .where(WriteRecord.result.contains(payment.payment_id, autoescape=True))
        .order_by(WriteRecord.id.desc())
        .limit(5)
    ).scalars()
    for record in records:
        try:
            result = json.loads(record.result).get("result")
        except (ValueError, AttributeError):
            continue
        if isinstance(result, dict) and result.get("payment_id") == payment.payment_id:
            url = result.get("redirect_url")
            if _plain_web_address(url):
                return url
    return None


def _plain_web_address(url: object) -> TypeGuard[str]:
    """An http(s) address with nothing that could break out of a header or an attribute."""
    return (
        isinstance(url, str)
        and url.startswith(("https://", "http://"))
        and not any(c.isspace() or ord(c) < 0x20 or c == "\x7f" for c in url)
    )


def open_for(link: ServiceLink, invoice_id: str) -> Payment | None:
    """The payment of ``invoice_id`` being started or waiting for the back-end's word
    (the database admits one at most)."""
    return db.session.execute(
        db.select(Payment)
        .filter_by(
            citizen_id=link.citizen_id, instance_slug=link.instance_slug, invoice_id=invoice_id
        )
        .where(Payment.state.in_(OPEN_PAYMENT_STATES))
        .order_by(Payment.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def invoice_settled(payment: Payment) -> bool:
    """Whether the invoice of a payment that did not go through is paid all the same (by
    another payment, from another tab or another channel): as the portal recorded it, or
    as the back-end's list (its last known copy will do) says."""
    other = db.session.execute(
        db.select(Payment.id)
        .filter_by(
            citizen_id=payment.citizen_id,
            instance_slug=payment.instance_slug,
            invoice_id=payment.invoice_id,
            state="paid",
        )
        .limit(1)
    ).scalar_one_or_none()
    if other is not None:
        return True
    service = payer_service(payment)
    invoices = _invoices(service).data if service is not None else None
    return any(i.id == payment.invoice_id and i.paid for i in invoices or ())


@dataclass(frozen=True)
class InvoiceLine:
    """An invoice as the resident sees it: the back-end's ``paid`` flag, or a payment
    the back-end confirmed to the portal, makes it paid; a payment still waiting for
    that confirmation makes it "in progress" (and it cannot be paid twice meanwhile)."""

    invoice: Invoice
    payment: Payment | None = None

    @property
    def status(self) -> Literal["paid", "in_progress", "to_pay"]:
        state = self.payment.state if self.payment is not None else ""
        if self.invoice.paid or state == "paid":
            return "paid"
        if state in OPEN_PAYMENT_STATES:
            return "in_progress"
        return "to_pay"


def invoice_lines(link: ServiceLink, invoices: Sequence[Invoice]) -> list[InvoiceLine]:
    chosen: dict[str, Payment] = {}
    for payment in db.session.execute(
        db.select(Payment)
        .filter_by(citizen_id=link.citizen_id, instance_slug=link.instance_slug)
        .order_by(Payment.id)
    ).scalars():
        current = chosen.get(payment.invoice_id)
        if current is None or _WEIGHT.get(payment.state, 0) >= _WEIGHT.get(current.state, 0):
            chosen[payment.invoice_id] = payment
    return [InvoiceLine(invoice, chosen.get(invoice.id)) for invoice in invoices]


# -- the hand-off --------------------------------------------------------------------------


def hand_off(service: Service, invoice_id: str, key: str | None, claim: Payment) -> WriteOutcome:
    """Ask the back-end for a payment of ``invoice_id`` and remember it, once per ``key``.

    ``claim`` is this request's ``starting`` row: it gets the provider's id and becomes
    pending inside the call, so that ``perform``'s final commit stores it with the write
    record, or not at all. Starting a payment is not journaled: it is journaled once, when
    the back-end says it was paid, refused or abandoned.
    """
    settings = current_settings()

    def call(ctx: CallContext, idempotency_key: str) -> PaymentHandoff:
        handoff: PaymentHandoff = service.connector.start_payment(
            ctx,
            service.ref,
            invoice_id,
            return_url=settings.base_url + RETURN_PATH,
            notify_url=settings.base_url + NOTIFY_PATH,
            idempotency_key=idempotency_key,
        )
        if find(handoff.payment_id) is None:
            claim.payment_id = handoff.payment_id
            claim.state = "pending"
        return handoff

    def encode(handoff: PaymentHandoff) -> dict[str, Any]:
        return {
            "payment_id": handoff.payment_id,
            "redirect_url": handoff.redirect_url,
            "invoice_id": invoice_id,
        }

    return perform(
        link=service.link,
        action=ACTION,
        key=key,
        deadline_s=settings.page_deadline_s,
        call=call,
        encode=encode,
        journal=False,
        request={"item": invoice_id},
    )


@dataclass(frozen=True)
class Start:
    """What came of a click on "Payer": ``done`` with the payment to go to, one of
    ``perform``'s other answers, or an invoice this family does not have."""

    status: Status | Literal["unknown_invoice", "unavailable"]
    payment_id: str = ""
    reason: str = ""


def start(service: Service, invoice_id: str, key: str | None) -> Start:
    """Start paying ``invoice_id``, or join the payment already started for it.

    Not a read-then-write: the ``starting`` row is inserted before the back-end is
    called, and the database's partial unique index refuses a second open payment of the
    invoice. The request that loses waits for the winner's payment and is sent to it.
    """
    panel = _invoices(service)
    invoices = panel.data
    if invoices is not None and not panel.writable and not _answered(key):
        # Only the last known list: the service is unavailable, nothing is started.
        return Start("unavailable")
    amount_cents, label = 0, ""
    if invoices is not None:
        invoice = next((i for i in invoices if i.id == invoice_id), None)
        if invoice is None:
            return Start("unknown_invoice")
        amount_cents, label = invoice.amount_cents, invoice.label
    # Without the list (back-end down, no copy kept), the hand-off below will say so.
    for _attempt in range(START_ATTEMPTS):
        under_way = open_for(service.link, invoice_id)
        if under_way is not None:
            joined = _join(under_way)
            if joined is not None:
                return joined
            continue  # it ended, or its start failed: look again
        replayed = _replayed(key)
        if replayed is not None:
            return replayed
        claim = _claim(service, invoice_id, amount_cents, label)
        if claim is None:
            continue  # another tab claimed the invoice a moment ago: join it
        claim_pk = claim.id
        try:
            outcome = hand_off(service, invoice_id, key, claim)
        finally:
            _release(claim_pk)
        if outcome.ok:
            return Start("done", outcome.result["payment_id"])
        return Start(outcome.status, reason=outcome.reason)
    return Start("in_progress")


def _claim(service: Service, invoice_id: str, amount_cents: int, label: str = "") -> Payment | None:
    """Insert this request's ``starting`` row, or None if the invoice has an open one."""
    claim = Payment(
        citizen_id=service.link.citizen_id,
        instance_slug=service.slug,
        invoice_id=invoice_id,
        amount_cents=amount_cents,
        invoice_label=label[:255],
        state="starting",
    )
    db.session.add(claim)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return None
    return claim


def _release(claim_pk: int) -> None:
    """Remove a claim the hand-off did not turn into a payment (refused, failed,
    replayed, crashed): the invoice can be paid again at once."""
    db.session.rollback()  # whatever the hand-off left unfinished
    db.session.execute(
        sa.delete(Payment)
        .where(Payment.id == claim_pk, Payment.state == "starting")
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _replayed(key: str | None) -> Start | None:
    """The stored answer of a pay form already sent (and answered) with ``key``."""
    if not key:
        return None
    record = db.session.execute(
        db.select(WriteRecord).filter_by(key=key, action=ACTION, state="done")
    ).scalar_one_or_none()
    if record is None:
        return None
    try:
        stored = json.loads(record.result or "{}")
    except ValueError:
        return None
    result = stored.get("result")
    if stored.get("status") == "done" and isinstance(result, dict) and result.get("payment_id"):
        return Start("done", result["payment_id"])
    return None  # a refusal: the form may ask again (perform replays it)


def _join(payment: Payment) -> Start | None:
    """Where a click goes when the invoice already has an open payment: to it once it
    is handed off and still pending (or paid), never to a second one. None when it
    ended otherwise, or its start failed: the invoice may then be paid again."""
    settings = current_settings()
    payment_pk = payment.id
    end = time.monotonic() + settings.page_deadline_s
    while payment.state == "starting":
        if payment.created_at < utcnow() - timedelta(seconds=STALE_START_S):
            _abandon_start(payment_pk)
            return None
        if time.monotonic() >= end:
            return Start("in_progress")
        time.sleep(0.1)
        db.session.rollback()  # end our transaction to see the other request's commit
        found = db.session.get(Payment, payment_pk)
        if found is None:
            return None
        payment = found
    if payment.state == "pending":
        confirm(payment, actor=current_actor(), deadline_s=settings.card_deadline_s)
    if payment.state in ("pending", "paid") and payment.payment_id:
        return Start("done", payment.payment_id)
    return None


def _abandon_start(payment_pk: int) -> None:
    db.session.execute(
        sa.update(Payment)
        .where(Payment.id == payment_pk, Payment.state == "starting")
        .values(state="failed", updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _answered(key: str | None) -> bool:
    """Whether this form was already answered (its answer is then given again)."""
    if not key:
        return False
    record = db.session.execute(
        db.select(WriteRecord).filter_by(key=key, action=ACTION)
    ).scalar_one_or_none()
    return record is not None and record.state == "done"


def _invoices(service: Service) -> Panel[Sequence[Invoice]]:
    """The family's invoices, as a panel: its data is None if unknown, and a stale copy
    (the service unavailable) is not writable."""

    def read(conn: Any, ctx: CallContext, ref: LinkRef) -> tuple[Any, datetime, bool]:
        result = conn.invoices(ctx, ref)
        return result.data, result.fetched_at, result.stale

    return read_panel(service, read, current_settings().page_deadline_s, for_write=True)


# -- confirmation --------------------------------------------------------------------------


def confirm(payment: Payment, *, actor: Actor, deadline_s: float) -> bool:
    """Ask the back-end where a pending payment stands, and record its answer, as
    ``actor`` (the resident coming back, or the system told by the provider).

    Returns False when the back-end could not say (down, link gone, payment unknown to
    it): the payment then stays as it was, to be asked again later.
    """
    if payment.state != "pending":
        return True
    slug = payment.instance_slug
    service = payer_service(payment)
    if service is None:
        log.info("payment on %s: no link left to confirm it through", slug)
        return False
    ctx = CallContext.with_timeout(
        deadline_s, actor=actor.context_actor, subject=str(service.link.id)
    )
    try:
        status = service.connector.payment_status(ctx, service.ref, payment.payment_id)
    except LinkInvalid:
        service.link.status = "needs_relink"
        db.session.commit()
        return False
    except Refused as exc:
        if exc.code != UNKNOWN_PAYMENT:
            log.info("payment status on %s refused: %s", slug, exc.code)
            return False
        # The provider's session ended and the back-end forgot the payment: it can no
        # longer go through, and nothing was taken. Left pending, it would block the
        # invoice for good.
        log.info("payment on %s unknown to the back-end: settled abandoned", slug)
        settle(payment, "abandoned", "", actor=actor, forgotten=True)
        return True
    except ConnectorError as exc:
        log.info("payment status on %s failed: %s", slug, type(exc).__name__)
        return False
    except Exception:
        log.exception("payment status on %s crashed", slug)
        return False
    if status.payment_id != payment.payment_id or status.invoice_id != payment.invoice_id:
        log.warning("payment status on %s answered about another payment", slug)
        return False
    if status.state != "pending":
        settle(payment, status.state, status.reason, actor=actor)
    return True


def settle(
    payment: Payment,
    state: str,
    reason: str,
    *,
    actor: Actor,
    forgotten: bool = False,
) -> None:
    """Record a final state, and journal it, exactly once: the notification and the
    browser's return often arrive together, and whichever comes second changes nothing."""
    # Session.execute is typed as returning a Result; for an UPDATE it is a CursorResult.
    changed = cast(
        CursorResult[Any],
        db.session.execute(
            sa.update(Payment)
            .where(Payment.id == payment.id, Payment.state == "pending")
            .values(state=state, reason=reason[:500], updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    if changed:
        JournalEntry.record(
            payment.citizen_id,
            ACTION,
            JOURNAL_OUTCOMES.get(state, "failure"),
            actor=actor,
            connector_instance=payment.instance_slug,
            code=f"payment_{state}",
            params={
                "invoice": payment.invoice_label,
                "amount_cents": payment.amount_cents,
                "reason": reason[:300],
                "forgotten": forgotten,
            },
        )
    db.session.commit()
    db.session.refresh(payment)
