"""Invoices and their payment as the standard APIs say them, shared by every standard type
that bills (canteen, water): the same bodies and the same routes under each account.

A type mixes in ``StandardBilling`` and says where its accounts live (``account_route``,
e.g. ``/v1/families/{family_id}``, and the name of its parameter), and how it names a
vanished invoice to the resident; the PDF, the payment hand-off and the payment status
are then the standard's.
"""

from __future__ import annotations

from typing import Any, ClassVar, get_args

from connectors.base import (
    CallContext,
    Invoice,
    LinkRef,
    PaymentHandoff,
    PaymentState,
    PaymentStatus,
)
from connectors.contract import as_bool, as_date, as_int, as_optional_date, as_str
from connectors.http import ResilientHTTP

PAYMENT_STATES = get_args(PaymentState)
PAYMENT_GONE_REASON = "Ce paiement est inconnu du service."


def parse_invoices(body: Any) -> tuple[Invoice, ...]:
    return tuple(
        Invoice(
            id=as_str(i["invoice_id"]),
            label=str(i.get("label") or ""),
            amount_cents=as_int(i["amount_cents"]),
            issued_on=as_date(i["issued_on"]),
            due_date=as_date(i["due_date"]),
            paid=as_bool(i["paid"]),
            paid_on=as_optional_date(i.get("paid_on")),
            pdf_available=as_bool(i.get("pdf_available", True)),
        )
        for i in body["invoices"]
    )


def parse_handoff(body: Any) -> PaymentHandoff:
    redirect_url = as_str(body["redirect_url"])
    if not redirect_url.startswith(("https://", "http://")):
        raise ValueError("redirect_url is not a web address")
    return PaymentHandoff(payment_id=as_str(body["payment_id"]), redirect_url=redirect_url)


def parse_payment(body: Any) -> PaymentStatus:
    state = body["state"]
    if state not in PAYMENT_STATES:
        raise ValueError("unknown payment state")
    return PaymentStatus(
        payment_id=as_str(body["payment_id"]),
        invoice_id=as_str(body["invoice_id"]),
        state=state,
        reason=str(body.get("reason") or ""),
    )


class StandardBilling:
    """The standard's invoice PDF, payment hand-off and payment status for one account."""

    #: Route of one account, with its parameter: ``/v1/families/{family_id}``.
    account_route: ClassVar[str]
    account_param: ClassVar[str]
    #: What the resident reads when the invoice is no longer on the account.
    invoice_gone_reason: ClassVar[str]
    http: ResilientHTTP

    def _account(self, link: LinkRef, **more: str) -> dict[str, str]:
        return {self.account_param: link.external_id, **more}

    def invoice_pdf(self, ctx: CallContext, link: LinkRef, invoice_id: str) -> bytes:
        return self.http.request(
            ctx,
            "GET",
            self.account_route + "/invoices/{invoice_id}/pdf",
            path_params=self._account(link, invoice_id=invoice_id),
            accept="pdf",
            not_found=self.invoice_gone_reason,
        ).content

    def start_payment(
        self,
        ctx: CallContext,
        link: LinkRef,
        invoice_id: str,
        *,
        return_url: str,
        notify_url: str,
        idempotency_key: str,
    ) -> PaymentHandoff:
        response = self.http.request(
            ctx,
            "POST",
            self.account_route + "/invoices/{invoice_id}/payments",
            path_params=self._account(link, invoice_id=invoice_id),
            json_body={"return_url": return_url, "notify_url": notify_url},
            idempotency_key=idempotency_key,
            not_found=self.invoice_gone_reason,
        )
        return self.http.parse("payment", parse_handoff, response.body)

    def payment_status(self, ctx: CallContext, link: LinkRef, payment_id: str) -> PaymentStatus:
        response = self.http.request(
            ctx,
            "GET",
            self.account_route + "/payments/{payment_id}",
            path_params=self._account(link, payment_id=payment_id),
            # The payment service forgot it (its session ended): Refused, code
            # ``unknown_payment``, which the portal settles as abandoned.
            refusals={404: {"unknown_payment"}},
            not_found=PAYMENT_GONE_REASON,
        )
        return self.http.parse("payment", parse_payment, response.body)
