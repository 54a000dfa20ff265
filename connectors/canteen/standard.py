"""Canteen connector for the territory's standard school-canteen API (``specs/canteen.yaml``).

A family account (proved with the family number and a code printed on an invoice)
holds children, their meal bookings per month, invoices and their payment.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, ClassVar

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
    ReadResult,
    VerifiedAccount,
)
from connectors.billing import StandardBilling, parse_invoices
from connectors.contract import (
    as_bool,
    as_date,
    as_optional_datetime,
    as_optional_int,
    as_str,
)
from connectors.http import ResilientHTTP

UNKNOWN_FAMILY_REASON = "Ce numéro de famille est inconnu du service."
CHILD_GONE_REASON = "Cet enfant n'apparaît plus sur le compte famille."
INVOICE_GONE_REASON = "Cette facture n'apparaît plus sur le compte famille."


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


class StandardCanteenConnector(StandardBilling):
    """A school-canteen system that speaks the territory's standard canteen API (``/v1``)."""

    category: ClassVar[Category] = "canteen"
    account_route: ClassVar[str] = "/v1/families/{family_id}"
    account_param: ClassVar[str] = "family_id"
    invoice_gone_reason: ClassVar[str] = INVOICE_GONE_REASON
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
