"""The connector contract: what the portal may ask of any back-end, per category.

Pure Python, no Flask: a vendor can ship a connector type as its own package, and any
portal can use these connectors. Everything crossing this boundary is a typed, frozen
dataclass; every call carries a ``CallContext`` with a deadline; failures are one of
five typed errors, so a view never has to guess what an exception means.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")

Category = Literal["library", "canteen", "housing", "water"]


# -- calls ---------------------------------------------------------------------------------

#: The id of what the caller is doing now (the portal sets its request's id for the time of
#: the request): a ``CallContext`` made meanwhile carries it to the back-end as
#: ``X-Request-Id``, so one id finds a request in the portal's logs and the back-end's.
current_request_id: ContextVar[str] = ContextVar("current_request_id", default="")


def new_request_id() -> str:
    """The caller's request id, or a new one when there is none (a job, a probe)."""
    return current_request_id.get() or uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class CallContext:
    """One call's budget and identity.

    ``deadline`` is a ``time.monotonic()`` instant: retries and timeouts all fit within
    it, so a hanging back-end costs at most the budget the caller chose.
    ``request_id`` ties the portal's logs to the back-end's; ``actor`` is a pseudonymous
    id (never a name) the back-end may log.
    """

    deadline: float
    request_id: str = field(default_factory=new_request_id)
    actor: str = ""
    #: Pseudonymous id of the account the call is about (the portal passes its link id),
    #: so that cached snapshots can be found and purged per account.
    subject: str = ""
    #: Answer from the last good snapshots only and send nothing to the back-end: what a
    #: page may show before, or without, asking the back-end (the dashboard without
    #: JavaScript). A read with no snapshot raises ``Unavailable``.
    offline: bool = False
    #: A read may be answered without asking the back-end from its last good answer if
    #: that is younger than this many seconds (this process's memory, or the snapshot
    #: store), ``stale=False`` with its real fetch time: several parts of one page can
    #: share what one of them just read. 0 (the default) always asks. Writes never use
    #: it, and a write about ``subject`` makes the next read ask again.
    max_age_s: float = 0.0
    #: A read the per-back-end concurrency limit may hold back (``Admission``); False for
    #: what a write reads first (the item it acts on): writes are not held back.
    held_back: bool = True

    @classmethod
    def with_timeout(cls, seconds: float, **kwargs: Any) -> CallContext:
        return cls(deadline=time.monotonic() + seconds, **kwargs)

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


@dataclass(frozen=True, slots=True)
class ReadResult(Generic[T]):
    """Data read from a back-end, with when it was fetched.

    ``stale`` is True when the back-end failed and this is the last good copy.
    """

    data: T
    fetched_at: datetime
    stale: bool = False


@dataclass(frozen=True, slots=True)
class LinkRef:
    """What a connector needs to act for one linked account.

    ``secret`` is only set for back-ends that need one on every call; the portal keeps
    it encrypted at rest and decrypts it only to build this object.
    """

    external_id: str
    secret: str | None = None


@dataclass(frozen=True, slots=True)
class VerifiedAccount:
    """Proof of ownership accepted by the back-end: what to keep as the link."""

    external_id: str
    display_name: str = ""
    secret: str | None = None


# -- errors --------------------------------------------------------------------------------


class ConnectorError(Exception):
    """Base of the five failures a connector may raise. Messages are for logs only and
    never contain personal data or secrets."""


class Unavailable(ConnectorError):
    """Down, too slow, overloaded or circuit open: retry later, serve stale data."""

    def __init__(self, message: str = "unavailable", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OutcomeUnknown(ConnectorError):
    """A write was sent and no answer came back (read timeout, connection dropped after
    sending): the back-end may or may not have done it. Nothing may be said to be done
    or not done: ask again later with the *same* idempotency key, whose replay gives the
    back-end's stored answer (or does it now, once, if the first never arrived)."""


class Refused(ConnectorError):
    """The back-end said no, with a reason the resident can read (already in their
    language when the back-end supports it) and a stable code."""

    def __init__(self, reason: str, code: str = "refused", reason_code: str = "") -> None:
        super().__init__(code)
        self.reason = reason
        self.code = code
        #: Why, as the standard's stable refusal code (``too_late``, ``on_hold``…), which
        #: the portal translates; the problem's ``code`` when the back-end gives no other.
        self.reason_code = reason_code or code


class LinkInvalid(ConnectorError):
    """The linked account is no longer accepted (card cancelled, PIN changed): ask the
    resident to link it again."""


class ContractBroken(ConnectorError):
    """The back-end answered something the standard does not allow: log and alert."""


# -- library -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatronSummary:
    display_name: str
    card_expires_on: date | None
    loans_count: int
    overdue_count: int
    holds_ready_count: int
    balance_cents: int


@dataclass(frozen=True, slots=True)
class Loan:
    id: str
    title: str
    author: str
    due_date: date
    renewable: bool
    #: Why it cannot be renewed, in plain words, when ``renewable`` is False.
    not_renewable_reason: str = ""
    renewals_done: int = 0
    #: The standard's code for ``not_renewable_reason`` (``on_hold``…), "" if none.
    not_renewable_code: str = ""
    renewals_allowed: int | None = None
    branch: str = ""


@dataclass(frozen=True, slots=True)
class RenewalOutcome:
    loan_id: str
    renewed: bool
    new_due_date: date | None = None
    reason: str = ""
    reason_code: str = ""


HoldStatus = Literal["waiting", "in_transit", "ready"]


@dataclass(frozen=True, slots=True)
class Hold:
    id: str
    title: str
    author: str
    status: HoldStatus
    queue_position: int | None
    pickup_place: str
    #: For a hold ready for pickup: the last day it is kept.
    waiting_until: date | None = None
    placed_on: date | None = None
    cancellable: bool = True


@dataclass(frozen=True, slots=True)
class Fine:
    id: str
    label: str
    amount_cents: int
    date: date | None = None


@dataclass(frozen=True, slots=True)
class LibraryAccount:
    balance_cents: int
    fines: Sequence[Fine] = ()


@runtime_checkable
class LibraryConnector(Protocol):
    category: Category

    def verify_card(
        self,
        ctx: CallContext,
        card_number: str,
        *,
        pin: str | None = None,
        birthdate: date | None = None,
    ) -> VerifiedAccount: ...

    def patron(self, ctx: CallContext, link: LinkRef) -> ReadResult[PatronSummary]: ...

    def loans(self, ctx: CallContext, link: LinkRef) -> ReadResult[Sequence[Loan]]: ...

    def renew(
        self, ctx: CallContext, link: LinkRef, loan_id: str, *, idempotency_key: str
    ) -> RenewalOutcome: ...

    def holds(self, ctx: CallContext, link: LinkRef) -> ReadResult[Sequence[Hold]]: ...

    def cancel_hold(
        self, ctx: CallContext, link: LinkRef, hold_id: str, *, idempotency_key: str
    ) -> None: ...

    def account(self, ctx: CallContext, link: LinkRef) -> ReadResult[LibraryAccount]: ...


# -- canteen -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Child:
    id: str
    first_name: str
    school: str
    grade: str = ""


@dataclass(frozen=True, slots=True)
class Family:
    id: str
    display_name: str
    #: Family quotient tier (tranche de quotient familial), e.g. "B"; sets the meal price.
    quotient_tier: str
    children: Sequence[Child] = ()
    meal_price_cents: int | None = None


@dataclass(frozen=True, slots=True)
class MealDay:
    day: date
    booked: bool
    #: False on days without service (weekends, holidays) or closed to booking.
    bookable: bool
    #: Until when this day can still be booked or cancelled; None if it cannot change.
    changeable_until: datetime | None
    note: str = ""
    #: Whether the canteen serves a meal that day at all (False on weekends, Wednesdays,
    #: holidays): a month view lists only the days with service.
    served: bool = True


@dataclass(frozen=True, slots=True)
class MealChange:
    day: date
    book: bool


@dataclass(frozen=True, slots=True)
class MealChangeOutcome:
    day: date
    applied: bool
    reason: str = ""
    reason_code: str = ""


@dataclass(frozen=True, slots=True)
class Invoice:
    id: str
    label: str
    amount_cents: int
    issued_on: date
    due_date: date
    paid: bool
    paid_on: date | None = None
    pdf_available: bool = True


@dataclass(frozen=True, slots=True)
class PaymentHandoff:
    """Where to send the resident to pay, and the back-end's reference to confirm it."""

    payment_id: str
    redirect_url: str


PaymentState = Literal["pending", "paid", "refused", "abandoned"]


@dataclass(frozen=True, slots=True)
class PaymentStatus:
    payment_id: str
    invoice_id: str
    state: PaymentState
    reason: str = ""


@runtime_checkable
class BillingConnector(Protocol):
    """Invoices and paying them: a capability, not a category. Any category whose
    connectors send invoices also implements this, and the portal's payment flow works
    with any of them."""

    def invoices(self, ctx: CallContext, link: LinkRef) -> ReadResult[Sequence[Invoice]]: ...

    def invoice_pdf(self, ctx: CallContext, link: LinkRef, invoice_id: str) -> bytes: ...

    def start_payment(
        self,
        ctx: CallContext,
        link: LinkRef,
        invoice_id: str,
        *,
        return_url: str,
        notify_url: str,
        idempotency_key: str,
    ) -> PaymentHandoff: ...

    def payment_status(self, ctx: CallContext, link: LinkRef, payment_id: str) -> PaymentStatus: ...


@runtime_checkable
class CanteenConnector(BillingConnector, Protocol):
    category: Category

    def verify_family(self, ctx: CallContext, family_number: str, code: str) -> VerifiedAccount: ...

    def family(self, ctx: CallContext, link: LinkRef) -> ReadResult[Family]: ...

    def reservations(
        self, ctx: CallContext, link: LinkRef, child_id: str, month: date
    ) -> ReadResult[Sequence[MealDay]]: ...

    def change_reservations(
        self,
        ctx: CallContext,
        link: LinkRef,
        child_id: str,
        changes: Sequence[MealChange],
        *,
        idempotency_key: str,
    ) -> Sequence[MealChangeOutcome]: ...


# -- housing -------------------------------------------------------------------------------

ApplicationStatus = Literal["filed", "active", "renewal_due", "expired", "closed"]


@dataclass(frozen=True, slots=True)
class ApplicationEvent:
    on: date
    label: str


@dataclass(frozen=True, slots=True)
class HousingApplication:
    #: The national "numéro unique" of the application.
    number: str
    status: ApplicationStatus
    filed_on: date
    expires_on: date | None
    renewal_opens_on: date | None
    renewal_closes_on: date | None
    closed_reason: str = ""
    communes_wanted: Sequence[str] = ()
    history: Sequence[ApplicationEvent] = ()

    def renewable_on(self, today: date) -> bool:
        return (
            self.renewal_opens_on is not None
            and self.renewal_closes_on is not None
            and self.renewal_opens_on <= today <= self.renewal_closes_on
            and self.status in ("active", "renewal_due")
        )


@dataclass(frozen=True, slots=True)
class RenewalReceipt:
    number: str
    new_expires_on: date


@runtime_checkable
class HousingConnector(Protocol):
    category: Category

    def verify_application(
        self, ctx: CallContext, number: str, birthdate: date
    ) -> VerifiedAccount: ...

    def application(self, ctx: CallContext, link: LinkRef) -> ReadResult[HousingApplication]: ...

    def renew(self, ctx: CallContext, link: LinkRef, *, idempotency_key: str) -> RenewalReceipt: ...


# -- water ---------------------------------------------------------------------------------

PaymentPlan = Literal["monthly", "direct_debit", "per_invoice"]
ReadingKind = Literal["actual", "declared", "estimated"]
AlertStatus = Literal["open", "requested", "accepted", "rejected", "expired"]


@dataclass(frozen=True, slots=True)
class Instalment:
    """One monthly instalment of a payment plan (mensualisation)."""

    due_date: date
    amount_cents: int
    paid: bool


@dataclass(frozen=True, slots=True)
class WaterContract:
    """A water supply contract (abonnement) at one address, with its one meter."""

    #: The contract number printed on invoices.
    number: str
    holder: str
    supply_address: str
    meter_number: str
    meter_diameter_mm: int
    tariff: str
    started_on: date
    payment_plan: PaymentPlan
    instalments: Sequence[Instalment] = ()
    ended_on: date | None = None
    #: The operator asks the resident to read the meter by this day (auto-relève).
    reading_requested_by: date | None = None


@dataclass(frozen=True, slots=True)
class MeterReading:
    taken_on: date
    #: The meter's index in whole cubic metres.
    index_m3: int
    kind: ReadingKind


@dataclass(frozen=True, slots=True)
class ConsumptionPeriod:
    """Water used over one billing period, in cubic metres."""

    start: date
    end: date
    volume_m3: int


@dataclass(frozen=True, slots=True)
class ConsumptionAlert:
    """The abnormal-consumption notice the law requires (CGCT L2224-12-4): the period's
    volume is more than twice the average of the same period over the last three years,
    and the subscriber has until ``respond_by`` to send a plumber's repair invoice."""

    id: str
    period_start: date
    period_end: date
    volume_m3: int
    average_m3: int
    notified_on: date
    respond_by: date
    status: AlertStatus
    invoice_id: str | None = None


@dataclass(frozen=True, slots=True)
class CapRequestReceipt:
    """The back-end's acknowledgement of a request to cap a leak-inflated invoice."""

    reference: str
    alert_id: str
    received_on: date


@runtime_checkable
class WaterConnector(BillingConnector, Protocol):
    category: Category

    def verify_contract(
        self, ctx: CallContext, contract_number: str, customer_reference: str
    ) -> VerifiedAccount: ...

    def contract(self, ctx: CallContext, link: LinkRef) -> ReadResult[WaterContract]: ...

    def readings(self, ctx: CallContext, link: LinkRef) -> ReadResult[Sequence[MeterReading]]: ...

    def consumption(
        self, ctx: CallContext, link: LinkRef
    ) -> ReadResult[Sequence[ConsumptionPeriod]]: ...

    def alerts(self, ctx: CallContext, link: LinkRef) -> ReadResult[Sequence[ConsumptionAlert]]: ...

    def declare_reading(
        self,
        ctx: CallContext,
        link: LinkRef,
        index_m3: int,
        taken_on: date,
        *,
        idempotency_key: str,
    ) -> MeterReading:
        """Raises ``Refused`` with ``reason_code`` ``below_last_reading`` or
        ``implausible_reading`` (or another stable code of the spec)."""
        ...

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
    ) -> CapRequestReceipt: ...


# -- instances -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InstanceConfig:
    """One configured instance, as the operator wrote it in ``connectors.toml``."""

    slug: str
    type: str
    title: str
    communes: Sequence[str]
    base_url: str
    timeout_s: float = 3.0
    connect_timeout_s: float = 1.0
    credentials: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    #: Where residents go next for what the portal does not do itself: ``apply_url`` (a
    #: new application), ``fines_url`` (paying fines), ``help_url``, ``help_phone`` and
    #: ``help_email`` (the service's own help desk). Each is optional.
    links: Mapping[str, str] = field(default_factory=dict)
