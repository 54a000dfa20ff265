"""Water connector for the territory's standard water-supply API (``specs/water.yaml``).

A supply contract (proved with the contract number and the customer reference printed on
invoices) has one meter with its readings, its consumption per billing period, the
abnormal-consumption alerts the law requires and the request to cap a leak-inflated
invoice, and invoices paid online exactly as the canteen's are.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, ClassVar, TypeVar, get_args

from connectors.base import (
    AlertStatus,
    CallContext,
    CapRequestReceipt,
    Category,
    ConsumptionAlert,
    ConsumptionPeriod,
    Instalment,
    InstanceConfig,
    Invoice,
    LinkRef,
    MeterReading,
    PaymentPlan,
    ReadingKind,
    ReadResult,
    Refused,
    VerifiedAccount,
    WaterContract,
)
from connectors.billing import StandardBilling, parse_invoices
from connectors.contract import as_bool, as_date, as_int, as_optional_date, as_str
from connectors.http import ResilientHTTP

T = TypeVar("T")

PAYMENT_PLANS = get_args(PaymentPlan)
READING_KINDS = get_args(ReadingKind)
ALERT_STATUSES = get_args(AlertStatus)
#: The standard's limit on a plumber's invoice (``CapRequest.repair_invoice``).
MAX_REPAIR_INVOICE_BYTES = 5 * 1024 * 1024
UNKNOWN_CONTRACT_REASON = "Ce numéro de contrat est inconnu du service."
INVOICE_GONE_REASON = "Cette facture n'apparaît plus sur le contrat."
TOO_BIG_REASON = "La facture du plombier dépasse 5 Mo\u00a0: envoyez un fichier PDF plus léger."


def parse_verified(body: Any) -> VerifiedAccount:
    return VerifiedAccount(
        external_id=as_str(body["contract_id"]), display_name=str(body.get("display_name") or "")
    )


def parse_contract(body: Any) -> WaterContract:
    plan = body["payment_plan"]
    if plan not in PAYMENT_PLANS:
        raise ValueError("unknown payment plan")
    return WaterContract(
        # Absent from the portal's snapshot (see ``without_number``).
        number=as_str(body["contract_number"]) if "contract_number" in body else "",
        holder=str(body.get("holder") or ""),
        supply_address=str(body.get("supply_address") or ""),
        meter_number=as_str(body["meter_number"]),
        meter_diameter_mm=as_int(body["meter_diameter_mm"]),
        tariff=str(body.get("tariff") or ""),
        started_on=as_date(body["started_on"]),
        payment_plan=plan,
        instalments=tuple(
            Instalment(
                due_date=as_date(i["due_date"]),
                amount_cents=as_int(i["amount_cents"]),
                paid=as_bool(i["paid"]),
            )
            for i in body.get("instalments") or ()
        ),
        ended_on=as_optional_date(body.get("ended_on")),
        reading_requested_by=as_optional_date(body.get("reading_requested_by")),
    )


def without_number(body: Any) -> Any:
    """What the last good copy of a contract keeps: everything but the contract number,
    which, with the customer reference, proves ownership and has no business in a cache."""
    if not isinstance(body, dict):
        return body
    return {k: v for k, v in body.items() if k != "contract_number"}


def parse_reading(body: Any) -> MeterReading:
    kind = body["kind"]
    if kind not in READING_KINDS:
        raise ValueError("unknown reading kind")
    return MeterReading(
        taken_on=as_date(body["taken_on"]), index_m3=as_int(body["index_m3"]), kind=kind
    )


def parse_readings(body: Any) -> tuple[MeterReading, ...]:
    return tuple(parse_reading(r) for r in body["readings"])


def parse_periods(body: Any) -> tuple[ConsumptionPeriod, ...]:
    return tuple(
        ConsumptionPeriod(
            start=as_date(p["start"]), end=as_date(p["end"]), volume_m3=as_int(p["volume_m3"])
        )
        for p in body["periods"]
    )


def parse_alerts(body: Any) -> tuple[ConsumptionAlert, ...]:
    alerts = []
    for a in body["alerts"]:
        status = a["status"]
        if status not in ALERT_STATUSES:
            raise ValueError("unknown alert status")
        invoice_id = a.get("invoice_id")
        alerts.append(
            ConsumptionAlert(
                id=as_str(a["alert_id"]),
                period_start=as_date(a["period_start"]),
                period_end=as_date(a["period_end"]),
                volume_m3=as_int(a["volume_m3"]),
                average_m3=as_int(a["average_m3"]),
                notified_on=as_date(a["notified_on"]),
                respond_by=as_date(a["respond_by"]),
                status=status,
                invoice_id=None if invoice_id in (None, "") else as_str(invoice_id),
            )
        )
    return tuple(alerts)


def parse_receipt(body: Any) -> CapRequestReceipt:
    return CapRequestReceipt(
        reference=as_str(body["reference"]),
        alert_id=as_str(body["alert_id"]),
        received_on=as_date(body["received_on"]),
    )


class StandardWaterConnector(StandardBilling):
    """A water operator's customer system that speaks the territory's standard water API."""

    category: ClassVar[Category] = "water"
    account_route: ClassVar[str] = "/v1/contracts/{contract_id}"
    account_param: ClassVar[str] = "contract_id"
    invoice_gone_reason: ClassVar[str] = INVOICE_GONE_REASON
    spec: ClassVar[str] = "water.yaml"
    #: A resource that does not exist: a 404 behind authentication proves health.
    probe_route: ClassVar[str] = "/v1/contracts/probe"

    def __init__(self, instance: InstanceConfig, http: ResilientHTTP) -> None:
        self.instance = instance
        self.http = http

    def verify_contract(
        self, ctx: CallContext, contract_number: str, customer_reference: str
    ) -> VerifiedAccount:
        response = self.http.request(
            ctx,
            "POST",
            "/v1/contracts/verify",
            json_body={
                "contract_number": contract_number,
                "customer_reference": customer_reference,
            },
            refusals={401: {"invalid_proof"}},
            not_found=UNKNOWN_CONTRACT_REASON,
        )
        return self.http.parse("verify", parse_verified, response.body)

    def _read(
        self,
        ctx: CallContext,
        link: LinkRef,
        what: str,
        suffix: str,
        parse: Callable[[Any], T],
        **kw: Any,
    ) -> ReadResult[T]:
        """A GET of the contract or one of its lists, with the last good copy as fallback."""
        return self.http.read(
            ctx,
            f"{what}:{link.external_id}",
            lambda: self.http.get_json(
                ctx,
                "/v1/contracts/{contract_id}" + suffix,
                path_params={"contract_id": link.external_id},
            ),
            parse,
            **kw,
        )

    def contract(self, ctx: CallContext, link: LinkRef) -> ReadResult[WaterContract]:
        return self._read(ctx, link, "contract", "", parse_contract, keep=without_number)

    def readings(self, ctx: CallContext, link: LinkRef) -> ReadResult[Sequence[MeterReading]]:
        return self._read(ctx, link, "readings", "/readings", parse_readings)

    def consumption(
        self, ctx: CallContext, link: LinkRef
    ) -> ReadResult[Sequence[ConsumptionPeriod]]:
        return self._read(ctx, link, "consumption", "/consumption", parse_periods)

    def alerts(self, ctx: CallContext, link: LinkRef) -> ReadResult[Sequence[ConsumptionAlert]]:
        return self._read(ctx, link, "alerts", "/alerts", parse_alerts)

    def declare_reading(
        self,
        ctx: CallContext,
        link: LinkRef,
        index_m3: int,
        taken_on: date,
        *,
        idempotency_key: str,
    ) -> MeterReading:
        """Refused (409) with ``reason_code`` ``below_last_reading``,
        ``implausible_reading`` or ``contract_closed``."""
        response = self.http.request(
            ctx,
            "POST",
            "/v1/contracts/{contract_id}/readings",
            path_params={"contract_id": link.external_id},
            json_body={"index_m3": index_m3, "taken_on": taken_on.isoformat()},
            idempotency_key=idempotency_key,
        )
        return self.http.parse("reading", parse_reading, response.body)

    def request_cap(
        self,
        ctx: CallContext,
        link: LinkRef,
        alert_id: str,
        *,
        repaired_on: date,
        repair_location: str,
        repair_invoice_pdf: bytes,
        idempotency_key: str,
    ) -> CapRequestReceipt:
        """Refused with ``alert_closed`` or ``deadline_passed`` (409),
        ``attachment_rejected`` (422: not a PDF, or over 5 MB; a document over the
        standard's 5 MB is refused before anything is sent), ``unknown_alert`` (404)."""
        if len(repair_invoice_pdf) > MAX_REPAIR_INVOICE_BYTES:
            raise Refused(TOO_BIG_REASON, "attachment_rejected")
        response = self.http.request(
            ctx,
            "POST",
            "/v1/contracts/{contract_id}/alerts/{alert_id}/cap-request",
            path_params={"contract_id": link.external_id, "alert_id": alert_id},
            json_body={
                "repaired_on": repaired_on.isoformat(),
                "repair_location": repair_location,
                "repair_invoice": {
                    "filename": "facture-plombier.pdf",
                    "content_type": "application/pdf",
                    "content_base64": base64.b64encode(repair_invoice_pdf).decode("ascii"),
                },
            },
            idempotency_key=idempotency_key,
            # The alert is gone while the contract is fine: a refusal, not a broken link.
            refusals={404: {"unknown_alert"}},
        )
        return self.http.parse("cap-request", parse_receipt, response.body)

    def invoices(self, ctx: CallContext, link: LinkRef) -> ReadResult[Sequence[Invoice]]:
        return self._read(ctx, link, "invoices", "/invoices", parse_invoices)
