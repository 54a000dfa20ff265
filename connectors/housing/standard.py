"""Housing connector for the territory's standard social-housing API (``specs/housing.yaml``).

A resident proves an application is theirs with its national number and their birth
date, follows its status and renews it during its yearly renewal window.
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar, get_args

from connectors.base import (
    ApplicationEvent,
    ApplicationStatus,
    CallContext,
    Category,
    HousingApplication,
    InstanceConfig,
    LinkRef,
    ReadResult,
    RenewalReceipt,
    VerifiedAccount,
)
from connectors.contract import as_date, as_optional_date, as_str
from connectors.http import ResilientHTTP

APPLICATION_STATUSES = get_args(ApplicationStatus)
UNKNOWN_APPLICATION_REASON = "Ce numéro de demande est inconnu du service."


def parse_verified(body: Any) -> VerifiedAccount:
    return VerifiedAccount(
        external_id=as_str(body["application_id"]),
        display_name=str(body.get("display_name") or ""),
    )


def parse_application(body: Any) -> HousingApplication:
    status = body["status"]
    if status not in APPLICATION_STATUSES:
        raise ValueError("unknown application status")
    return HousingApplication(
        # Absent from the portal's snapshot (see ``without_number``).
        number=as_str(body["number"]) if "number" in body else "",
        status=status,
        filed_on=as_date(body["filed_on"]),
        expires_on=as_optional_date(body.get("expires_on")),
        renewal_opens_on=as_optional_date(body.get("renewal_opens_on")),
        renewal_closes_on=as_optional_date(body.get("renewal_closes_on")),
        closed_reason=str(body.get("closed_reason") or ""),
        communes_wanted=tuple(as_str(c) for c in body.get("communes_wanted") or ()),
        history=tuple(
            ApplicationEvent(on=as_date(e["date"]), label=str(e.get("label") or ""))
            for e in body.get("history") or ()
        ),
    )


def without_number(body: Any) -> Any:
    """What the last good copy of an application keeps: everything the card and the page
    show, except the national number, which (with a birth date) proves ownership."""
    if not isinstance(body, dict):
        return body
    return {key: value for key, value in body.items() if key != "number"}


def parse_receipt(body: Any) -> RenewalReceipt:
    return RenewalReceipt(
        number=as_str(body["number"]), new_expires_on=as_date(body["new_expires_on"])
    )


class StandardHousingConnector:
    """A housing-application system that speaks the territory's standard API (``/v1``)."""

    category: ClassVar[Category] = "housing"
    spec: ClassVar[str] = "housing.yaml"
    #: A resource that does not exist: a 404 behind authentication proves health.
    probe_route: ClassVar[str] = "/v1/applications/probe"

    def __init__(self, instance: InstanceConfig, http: ResilientHTTP) -> None:
        self.instance = instance
        self.http = http

    def verify_application(self, ctx: CallContext, number: str, birthdate: date) -> VerifiedAccount:
        response = self.http.request(
            ctx,
            "POST",
            "/v1/applications/verify",
            json_body={"number": number, "birthdate": birthdate.isoformat()},
            refusals={401: {"invalid_proof"}},
            not_found=UNKNOWN_APPLICATION_REASON,
        )
        return self.http.parse("verify", parse_verified, response.body)

    def application(self, ctx: CallContext, link: LinkRef) -> ReadResult[HousingApplication]:
        return self.http.read(
            ctx,
            f"application:{link.external_id}",
            lambda: self.http.get_json(
                ctx,
                "/v1/applications/{application_id}",
                path_params={"application_id": link.external_id},
            ),
            parse_application,
            keep=without_number,
        )

    def renew(self, ctx: CallContext, link: LinkRef, *, idempotency_key: str) -> RenewalReceipt:
        response = self.http.request(
            ctx,
            "POST",
            "/v1/applications/{application_id}/renewal",
            path_params={"application_id": link.external_id},
            idempotency_key=idempotency_key,
        )
        return self.http.parse("renewal", parse_receipt, response.body)
