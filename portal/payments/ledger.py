"""The portal's record of payments, and the server-side confirmation that moves it on.

A ``Payment`` row is created pending when the back-end hands the resident off to the
payment provider. It becomes paid, refused or abandoned only from the back-end's own
answer to ``payment_status``, asked through the payer's own link: neither the browser's
return nor the body of a notification is believed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeGuard

import sqlalchemy as sa
from babel.numbers import format_currency

from connectors.base import (
    CallContext,
    ConnectorError,
    Invoice,
    LinkInvalid,
    LinkRef,
    PaymentHandoff,
)
from portal.config import current_settings
from portal.extensions import db
from portal.integrations import registry
from portal.models import JournalEntry, Payment, ServiceLink, WriteRecord
from portal.models._types import utcnow
from portal.services.reading import Panel, Service, read_panel
from portal.writes import Status, WriteOutcome, perform

log = logging.getLogger(__name__)

ACTION = "pay_invoice"
RETURN_PATH = "/payments/return"
NOTIFY_PATH = "/payments/notify"

#: How each final state shows in the resident's activity.
JOURNAL_OUTCOMES = {"paid": "success", "refused": "refused", "abandoned": "failure"}

#: Which payment says most about an invoice: a confirmed one, else one under way.
_WEIGHT = {"paid": 2, "pending": 1}


def euros(cents: int) -> str:
    """An amount as the journal keeps it: in French, like the rest of its details."""
    return format_currency(cents / 100, "EUR", locale="fr_FR")


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
    reg = registry()
    if payment.instance_slug not in reg.instances:
        return None
    link = db.session.execute(
        db.select(ServiceLink).filter_by(
            citizen_id=payment.citizen_id, instance_slug=payment.instance_slug
        )
    ).scalar_one_or_none()
    if link is None:
        return None
    connector = reg.connector(payment.instance_slug)
    if connector.category != "canteen":
        return None
    return Service(link, reg.instances[payment.instance_slug], connector.category, connector)


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


def pending_for(link: ServiceLink, invoice_id: str) -> Payment | None:
    """The latest payment of ``invoice_id`` still waiting for the back-end's word."""
    return db.session.execute(
        db.select(Payment)
        .filter_by(
            citizen_id=link.citizen_id,
            instance_slug=link.instance_slug,
            invoice_id=invoice_id,
            state="pending",
        )
        .order_by(Payment.id.desc())
        .limit(1)
    ).scalar_one_or_none()


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
        if state == "pending":
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


def hand_off(service: Service, invoice_id: str, key: str | None, amount_cents: int) -> WriteOutcome:
    """Ask the back-end for a payment of ``invoice_id`` and remember it, once per ``key``.

    The ``Payment`` row is added inside the call, so that ``perform``'s final commit
    stores it with the write record and the journal entry, or not at all.
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
            db.session.add(
                Payment(
                    citizen_id=service.link.citizen_id,
                    instance_slug=service.slug,
                    invoice_id=invoice_id,
                    payment_id=handoff.payment_id,
                    amount_cents=amount_cents,
                    state="pending",
                )
            )
        return handoff

    def encode(handoff: PaymentHandoff) -> dict[str, Any]:
        return {
            "payment_id": handoff.payment_id,
            "redirect_url": handoff.redirect_url,
            "invoice_id": invoice_id,
        }

    def summary(handoff: PaymentHandoff) -> str:
        amount = f" ({euros(amount_cents)})" if amount_cents else ""
        return f"paiement commencé : facture {invoice_id}{amount}"

    return perform(
        link=service.link,
        action=ACTION,
        key=key,
        deadline_s=settings.page_deadline_s,
        call=call,
        encode=encode,
        summary=summary,
        detail=f"facture {invoice_id}",
    )


@dataclass(frozen=True)
class Start:
    """What came of a click on "Payer": ``done`` with the payment to go to, one of
    ``perform``'s other answers, or an invoice this family does not have."""

    status: Status | Literal["unknown_invoice", "unavailable"]
    payment_id: str = ""
    reason: str = ""


def start(service: Service, invoice_id: str, key: str | None) -> Start:
    """Start paying ``invoice_id``, or find the payment already started for it."""
    settings = current_settings()
    panel = _invoices(service)
    invoices = panel.data
    if invoices is not None and not panel.writable and not _answered(key):
        # Only the last known list: the service is unavailable, nothing is started.
        return Start("unavailable")
    amount_cents = 0
    if invoices is not None:
        invoice = next((i for i in invoices if i.id == invoice_id), None)
        if invoice is None:
            return Start("unknown_invoice")
        amount_cents = invoice.amount_cents
    # Without the list (back-end down, no copy kept), the hand-off below will say so.
    under_way = pending_for(service.link, invoice_id)
    if under_way is not None:
        confirm(
            under_way,
            actor_kind="citizen",
            actor_id=str(service.link.citizen_id),
            deadline_s=settings.card_deadline_s,
        )
        if under_way.state == "pending":
            # Already handed off (a replayed form, a second tab): back to that payment,
            # never a second one for the same invoice while the first may still go through.
            return Start("done", under_way.payment_id)
    outcome = hand_off(service, invoice_id, key, amount_cents)
    if outcome.status == "in_progress" and key:
        wait_for_first_submission(key, settings.page_deadline_s)
        outcome = hand_off(service, invoice_id, key, amount_cents)
    if outcome.ok:
        return Start("done", outcome.result["payment_id"])
    return Start(outcome.status, reason=outcome.reason)


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

    return read_panel(service, read, current_settings().page_deadline_s)


def wait_for_first_submission(key: str, timeout_s: float) -> None:
    """A double click: the first submission of this form is still talking to the
    back-end. Wait for it (briefly), so that the second one, whose answer is the one the
    browser shows, can be given the same payment page."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        db.session.rollback()  # end our transaction to see the other request's commit
        state = db.session.execute(
            db.select(WriteRecord.state).filter_by(key=key)
        ).scalar_one_or_none()
        if state != "pending":
            return
        time.sleep(0.1)


# -- confirmation --------------------------------------------------------------------------


def confirm(payment: Payment, *, actor_kind: str, actor_id: str, deadline_s: float) -> bool:
    """Ask the back-end where a pending payment stands, and record its answer.

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
        deadline_s, actor=f"{actor_kind}:{actor_id}", subject=str(service.link.id)
    )
    try:
        status = service.connector.payment_status(ctx, service.ref, payment.payment_id)
    except LinkInvalid:
        service.link.status = "needs_relink"
        db.session.commit()
        return False
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
        settle(payment, status.state, status.reason, actor_kind=actor_kind, actor_id=actor_id)
    return True


def settle(payment: Payment, state: str, reason: str, *, actor_kind: str, actor_id: str) -> None:
    """Record a final state, and journal it, exactly once: the notification and the
    browser's return often arrive together, and whichever comes second changes nothing."""
    changed = db.session.execute(
        sa.update(Payment)
        .where(Payment.id == payment.id, Payment.state == "pending")
        .values(state=state, reason=reason[:500], updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed:
        JournalEntry.record(
            payment.citizen_id,
            ACTION,
            JOURNAL_OUTCOMES.get(state, "failure"),
            actor_kind=actor_kind,
            actor_id=actor_id,
            connector_instance=payment.instance_slug,
            detail=_journal_detail(payment, state, reason),
        )
    db.session.commit()
    db.session.refresh(payment)


def _journal_detail(payment: Payment, state: str, reason: str) -> str:
    invoice = f"facture {payment.invoice_id}"
    if payment.amount_cents:
        invoice += f" ({euros(payment.amount_cents)})"
    if state == "paid":
        return f"paiement confirmé : {invoice}"
    if state == "refused":
        return f"paiement refusé : {invoice}" + (f" – {reason}" if reason else "")
    return f"paiement abandonné : {invoice}"
