"""Library connector for the territory's standard library API (``specs/library.yaml``).

The parsers here read the standard API's JSON shapes; the Koha connector reuses them
by first bringing Koha's answers into those shapes, so there is one place where a
library account becomes the portal's dataclasses, and one kind of snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, ClassVar, TypeVar

from connectors.base import (
    CallContext,
    Category,
    Fine,
    Hold,
    InstanceConfig,
    LibraryAccount,
    LinkRef,
    Loan,
    PatronSummary,
    ReadResult,
    Refused,
    RenewalOutcome,
    VerifiedAccount,
)
from connectors.contract import (
    as_bool,
    as_date,
    as_int,
    as_optional_date,
    as_optional_int,
    as_str,
)
from connectors.http import ResilientHTTP

T = TypeVar("T")

HOLD_STATUSES = ("waiting", "in_transit", "ready")
NO_PROOF_REASON = "Indiquez le code PIN de votre carte ou votre date de naissance."
UNKNOWN_CARD_REASON = "Ce numéro de carte est inconnu de la bibliothèque."
LOAN_GONE_REASON = "Ce prêt n'apparaît plus sur votre compte."
HOLD_GONE_REASON = "Cette réservation n'apparaît plus sur votre compte."


# -- the standard shapes, as the portal's dataclasses --------------------------------------


def parse_verified(body: Any) -> VerifiedAccount:
    return VerifiedAccount(
        external_id=as_str(body["patron_id"]), display_name=str(body.get("display_name") or "")
    )


def parse_patron(body: Any) -> PatronSummary:
    return PatronSummary(
        display_name=str(body.get("display_name") or ""),
        card_expires_on=as_optional_date(body.get("card_expires_on")),
        loans_count=as_int(body["loans_count"]),
        overdue_count=as_int(body["overdue_count"]),
        holds_ready_count=as_int(body["holds_ready_count"]),
        balance_cents=as_int(body["balance_cents"]),
    )


def parse_loans(body: Any) -> tuple[Loan, ...]:
    return tuple(
        Loan(
            id=as_str(item["loan_id"]),
            title=str(item.get("title") or ""),
            author=str(item.get("author") or ""),
            due_date=as_date(item["due_date"]),
            renewable=as_bool(item["renewable"]),
            not_renewable_reason=str(item.get("not_renewable_reason") or ""),
            not_renewable_code=str(item.get("not_renewable_code") or ""),
            renewals_done=as_int(item.get("renewals_done") or 0),
            renewals_allowed=as_optional_int(item.get("renewals_allowed")),
            branch=str(item.get("branch") or ""),
        )
        for item in body["loans"]
    )


def parse_holds(body: Any) -> tuple[Hold, ...]:
    holds = []
    for item in body["holds"]:
        status = item["status"]
        if status not in HOLD_STATUSES:
            raise ValueError("unknown hold status")
        holds.append(
            Hold(
                id=as_str(item["hold_id"]),
                title=str(item.get("title") or ""),
                author=str(item.get("author") or ""),
                status=status,
                queue_position=as_optional_int(item.get("queue_position")),
                pickup_place=str(item.get("pickup_place") or ""),
                waiting_until=as_optional_date(item.get("waiting_until")),
                placed_on=as_optional_date(item.get("placed_on")),
                cancellable=as_bool(item.get("cancellable", True)),
            )
        )
    return tuple(holds)


def parse_account(body: Any) -> LibraryAccount:
    return LibraryAccount(
        balance_cents=as_int(body["balance_cents"]),
        fines=tuple(
            Fine(
                id=as_str(f["fine_id"]),
                label=str(f.get("label") or ""),
                amount_cents=as_int(f["amount_cents"]),
                date=as_optional_date(f.get("date")),
            )
            for f in body.get("fines") or ()
        ),
    )


def parse_renewal(body: Any) -> RenewalOutcome:
    return RenewalOutcome(
        loan_id=as_str(body["loan_id"]),
        renewed=as_bool(body["renewed"]),
        new_due_date=as_optional_date(body.get("new_due_date")),
        reason=str(body.get("reason") or ""),
        reason_code=str(body.get("reason_code") or ""),
    )


def require_proof(pin: str | None, birthdate: date | None) -> None:
    """A card number alone proves nothing: refuse before calling anyone."""
    if not pin and birthdate is None:
        raise Refused(NO_PROOF_REASON, "missing_proof")


# -- the connector -----------------------------------------------------------------------


class StandardLibraryConnector:
    """A library system that speaks the territory's standard library API (``/v1``)."""

    category: ClassVar[Category] = "library"
    #: The proofs of card ownership this back-end can check, for the linking form.
    proof_kinds: ClassVar[tuple[str, ...]] = ("pin", "birthdate")
    spec: ClassVar[str] = "library.yaml"
    #: A resource that does not exist: a 404 behind authentication proves health.
    probe_route: ClassVar[str] = "/v1/patrons/probe"

    def __init__(self, instance: InstanceConfig, http: ResilientHTTP) -> None:
        self.instance = instance
        self.http = http

    def verify_card(
        self,
        ctx: CallContext,
        card_number: str,
        *,
        pin: str | None = None,
        birthdate: date | None = None,
    ) -> VerifiedAccount:
        require_proof(pin, birthdate)
        body: dict[str, str] = {"card_number": card_number}
        if pin:
            body["pin"] = pin
        if birthdate is not None:
            body["birthdate"] = birthdate.isoformat()
        response = self.http.request(
            ctx,
            "POST",
            "/v1/patrons/verify",
            json_body=body,
            refusals={401: {"invalid_proof"}},
            not_found=UNKNOWN_CARD_REASON,
        )
        return self.http.parse("verify", parse_verified, response.body)

    def patron(self, ctx: CallContext, link: LinkRef) -> ReadResult[PatronSummary]:
        return self._read(ctx, link, "patron", "/v1/patrons/{patron_id}", parse_patron)

    def loans(self, ctx: CallContext, link: LinkRef) -> ReadResult[Sequence[Loan]]:
        return self._read(ctx, link, "loans", "/v1/patrons/{patron_id}/loans", parse_loans)

    def holds(self, ctx: CallContext, link: LinkRef) -> ReadResult[Sequence[Hold]]:
        return self._read(ctx, link, "holds", "/v1/patrons/{patron_id}/holds", parse_holds)

    def account(self, ctx: CallContext, link: LinkRef) -> ReadResult[LibraryAccount]:
        return self._read(ctx, link, "account", "/v1/patrons/{patron_id}/account", parse_account)

    def renew(
        self, ctx: CallContext, link: LinkRef, loan_id: str, *, idempotency_key: str
    ) -> RenewalOutcome:
        try:
            response = self.http.request(
                ctx,
                "POST",
                "/v1/patrons/{patron_id}/loans/{loan_id}/renewal",
                path_params={"patron_id": link.external_id, "loan_id": loan_id},
                idempotency_key=idempotency_key,
                not_found=LOAN_GONE_REASON,
            )
        except Refused as exc:
            if exc.code == "not_renewable":
                return RenewalOutcome(
                    loan_id=loan_id,
                    renewed=False,
                    reason=exc.reason,
                    reason_code=exc.reason_code,
                )
            raise
        return self.http.parse("renewal", parse_renewal, response.body)

    def cancel_hold(
        self, ctx: CallContext, link: LinkRef, hold_id: str, *, idempotency_key: str
    ) -> None:
        self.http.request(
            ctx,
            "DELETE",
            "/v1/patrons/{patron_id}/holds/{hold_id}",
            path_params={"patron_id": link.external_id, "hold_id": hold_id},
            idempotency_key=idempotency_key,
            accept="none",
            not_found=HOLD_GONE_REASON,
        )

    def _read(
        self, ctx: CallContext, link: LinkRef, what: str, route: str, parse: Callable[[Any], T]
    ) -> ReadResult[T]:
        return self.http.read(
            ctx,
            f"{what}:{link.external_id}",
            lambda: self.http.get_json(ctx, route, path_params={"patron_id": link.external_id}),
            parse,
        )
