"""Canteen connector for the territory's standard school-canteen API (``specs/canteen.yaml``).

A family account (proved with the family number and a code printed on an invoice)
holds children, their meal bookings per month, invoices and their payment.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, ClassVar, get_args

from connectors.base import (
    CallContext,
    Category,
    Child,
    Family,
    InstanceConfig,
    Invoice,
    LinkRef,
    MealChange,
    MealChangeOutcome,
    MealDay,
    PaymentHandoff,
    PaymentState,
    PaymentStatus,
    ReadResult,
    VerifiedAccount,
)
from connectors.contract import (
    as_bool,
    as_date,
    as_int,
    as_optional_date,
    as_optional_datetime,
    as_optional_int,
    as_str,
)
from connectors.http import ResilientHTTP

PAYMENT_STATES = get_args(PaymentState)
UNKNOWN_FAMILY_REASON = "Ce numéro de famille est inconnu du service."
CHILD_GONE_REASON = "Cet enfant n'apparaît plus sur le compte famille."
INVOICE_GONE_REASON = "Cette facture n'apparaît plus sur le compte famille."
PAYMENT_GONE_REASON = "Ce paiement est inconnu du service."


def parse_verified(body: Any) -> VerifiedAccount:
    return VerifiedAccount(
        external_id=as_str(body["family_id"]), display_name=str(body.get("display_name") or "")
    )


def parse_family(body: Any) -> Family:
    return Family(
        id=as_str(body["family_id"]),
        display_name=str(body.get("display_name") or ""),
        quotient_tier=str(body.get("quotient_tier") or ""),
        meal_price_cents=as_optional_int(body.get("meal_price_cents")),
        children=tuple(
            Child(
                id=as_str(c["child_id"]),
                first_name=str(c.get("first_name") or ""),
                school=str(c.get("school") or ""),
                grade=str(c.get("grade") or ""),
            )
            for c in body.get("children") or ()
        ),
    )


def parse_days(body: Any) -> tuple[MealDay, ...]:
    return tuple(
        MealDay(
            day=as_date(d["date"]),
            booked=as_bool(d["booked"]),
            bookable=as_bool(d["bookable"]),
            changeable_until=as_optional_datetime(d.get("changeable_until")),
            note=str(d.get("note") or ""),
            # Optional in v1: a back-end that does not say is taken to serve every day.
            served=as_bool(d.get("served", True)),
        )
        for d in body["days"]
    )


def parse_change_results(body: Any) -> tuple[MealChangeOutcome, ...]:
    return tuple(
        MealChangeOutcome(
            day=as_date(r["date"]),
            applied=as_bool(r["applied"]),
            reason=str(r.get("reason") or ""),
            reason_code=str(r.get("reason_code") or ""),
        )
        for r in body["results"]
    )


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


class StandardCanteenConnector:
    """A school-canteen system that speaks the territory's standard canteen API (``/v1``)."""

    category: ClassVar[Category] = "canteen"
    spec: ClassVar[str] = "canteen.yaml"
    #: A resource that does not exist: a 404 behind authentication proves health.
    probe_route: ClassVar[str] = "/v1/families/probe"

    def __init__(self, instance: InstanceConfig, http: ResilientHTTP) -> None:
        self.instance = instance
        self.http = http

    def verify_family(self, ctx: CallContext, family_number: str, code: str) -> VerifiedAccount:
        response = self.http.request(
            ctx,
            "POST",
            "/v1/families/verify",
            json_body={"family_number": family_number, "invoice_code": code},
            refusals={401: {"invalid_proof"}},
            not_found=UNKNOWN_FAMILY_REASON,
        )
        return self.http.parse("verify", parse_verified, response.body)

    def family(self, ctx: CallContext, link: LinkRef) -> ReadResult[Family]:
        return self.http.read(
            ctx,
            f"family:{link.external_id}",
            lambda: self.http.get_json(
                ctx, "/v1/families/{family_id}", path_params={"family_id": link.external_id}
            ),
            parse_family,
        )

    def reservations(
        self, ctx: CallContext, link: LinkRef, child_id: str, month: date
    ) -> ReadResult[Sequence[MealDay]]:
        yyyy_mm = f"{month.year:04d}-{month.month:02d}"
        return self.http.read(
            ctx,
            f"reservations:{link.external_id}:{child_id}:{yyyy_mm}",
            lambda: self.http.get_json(
                ctx,
                "/v1/families/{family_id}/children/{child_id}/reservations",
                path_params={"family_id": link.external_id, "child_id": child_id},
                params={"month": yyyy_mm},
                not_found=CHILD_GONE_REASON,
            ),
            parse_days,
        )

    def change_reservations(
        self,
        ctx: CallContext,
        link: LinkRef,
        child_id: str,
        changes: Sequence[MealChange],
        *,
        idempotency_key: str,
    ) -> Sequence[MealChangeOutcome]:
        response = self.http.request(
            ctx,
            "POST",
            "/v1/families/{family_id}/children/{child_id}/reservations",
            path_params={"family_id": link.external_id, "child_id": child_id},
            json_body={"changes": [{"date": c.day.isoformat(), "book": c.book} for c in changes]},
            idempotency_key=idempotency_key,
            not_found=CHILD_GONE_REASON,
        )
        return self.http.parse("reservations", parse_change_results, response.body)

    def invoices(self, ctx: CallContext, link: LinkRef) -> ReadResult[Sequence[Invoice]]:
        return self.http.read(
            ctx,
            f"invoices:{link.external_id}",
            lambda: self.http.get_json(
                ctx,
                "/v1/families/{family_id}/invoices",
                path_params={"family_id": link.external_id},
            ),
            parse_invoices,
        )

    def invoice_pdf(self, ctx: CallContext, link: LinkRef, invoice_id: str) -> bytes:
        return self.http.request(
            ctx,
            "GET",
            "/v1/families/{family_id}/invoices/{invoice_id}/pdf",
            path_params={"family_id": link.external_id, "invoice_id": invoice_id},
            accept="pdf",
            not_found=INVOICE_GONE_REASON,
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
            "/v1/families/{family_id}/invoices/{invoice_id}/payments",
            path_params={"family_id": link.external_id, "invoice_id": invoice_id},
            json_body={"return_url": return_url, "notify_url": notify_url},
            idempotency_key=idempotency_key,
            not_found=INVOICE_GONE_REASON,
        )
        return self.http.parse("payment", parse_handoff, response.body)

    def payment_status(self, ctx: CallContext, link: LinkRef, payment_id: str) -> PaymentStatus:
        response = self.http.request(
            ctx,
            "GET",
            "/v1/families/{family_id}/payments/{payment_id}",
            path_params={"family_id": link.external_id, "payment_id": payment_id},
            # The payment service forgot it (its session ended): Refused, code
            # ``unknown_payment``, which the portal settles as abandoned.
            refusals={404: {"unknown_payment"}},
            not_found=PAYMENT_GONE_REASON,
        )
        return self.http.parse("payment", parse_payment, response.body)
