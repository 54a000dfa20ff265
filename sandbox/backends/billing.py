"""Starting a payment and telling its state, as every standard back-end that bills does
(canteen, water): the same bodies, the same PayFiP-like hand-off, each kind answering only
for its own payments."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from flask import Response, g, url_for

from sandbox.backends.common import (
    ProblemError,
    backend_state,
    json_object,
    json_response,
    problem,
)
from sandbox.backends.state import Payment


def absolute_url(value: Any, name: str) -> str:
    if isinstance(value, str):
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.netloc:
            return value
    raise ProblemError(422, "invalid_request", f"« {name} » doit être une URL http(s) absolue.")


def start_payment(
    kind: str, account_id: str, invoice: Any, *, status_endpoint: str, account_param: str
) -> Response:
    """Create a payment of ``invoice`` for the account and hand the browser off to the
    PayFiP-like page; ``Location`` is the payment's status on ``status_endpoint``."""
    if invoice.paid:
        return problem(409, "already_paid", "Cette facture est déjà réglée.")
    body = json_object()
    return_url = absolute_url(body.get("return_url"), "return_url")
    notify_url = absolute_url(body.get("notify_url"), "notify_url")
    state = backend_state()
    payment = Payment(
        payment_id="pay-" + secrets.token_hex(8),
        tenant=g.tenant,
        family_id=account_id,
        invoice_id=invoice.invoice_id,
        amount_cents=invoice.amount_cents,
        label=invoice.label,
        return_url=return_url,
        notify_url=notify_url,
        created_at=state.now(),
        kind=kind,
    )
    with state.lock:
        state.payments[payment.payment_id] = payment
    redirect_url = url_for("payfip.pay_page", payment_id=payment.payment_id, _external=True)
    response = json_response(
        {"payment_id": payment.payment_id, "redirect_url": redirect_url}, status=201
    )
    response.headers["Location"] = url_for(
        status_endpoint,
        tenant=g.tenant,
        **{account_param: account_id},
        payment_id=payment.payment_id,
    )
    return response


def payment_status(kind: str, account_id: str, payment_id: str) -> Response:
    """The state of one of this account's payments; 404 for any other payment."""
    payment = backend_state().payment(payment_id)
    if (
        payment is None
        or payment.kind != kind
        or payment.tenant != g.tenant
        or payment.family_id != account_id
    ):
        return problem(404, "unknown_payment", "Ce paiement n'existe pas.")
    return json_response(
        {
            "payment_id": payment.payment_id,
            "invoice_id": payment.invoice_id,
            "state": payment.state,
            "reason": payment.reason,
        }
    )
