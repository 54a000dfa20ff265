"""The standard canteen connector against the sandbox's Bordeaux school canteens."""

from __future__ import annotations

import pytest

from connectors.base import LinkInvalid, LinkRef, MealChange, Refused
from connectors.registry import Registry
from sandbox.backends.data import sandbox_today
from tests.contract.conftest import account, ctx

MARIE = account("marie-therese", "canteen", "bordeaux")
DARTAGNAN = account("dartagnan", "canteen", "bordeaux")


@pytest.fixture
def canteen(registry: Registry):
    return registry.connector("cantine-bordeaux")


@pytest.fixture
def link() -> LinkRef:
    return LinkRef(MARIE.external_id)


def test_a_family_proves_its_account_with_an_invoice_code(canteen) -> None:
    verified = canteen.verify_family(
        ctx(), MARIE.proof["family_number"], MARIE.proof["invoice_code"]
    )
    assert verified.external_id == MARIE.external_id
    assert verified.display_name


def test_a_wrong_code_is_refused_with_a_reason(canteen) -> None:
    with pytest.raises(Refused) as raised:
        canteen.verify_family(ctx(), MARIE.proof["family_number"], "AAAAAA")
    assert raised.value.code == "invalid_proof"
    assert raised.value.reason


def test_repeated_wrong_codes_lock_the_account(canteen) -> None:
    number = DARTAGNAN.proof["family_number"]
    codes = []
    for _ in range(6):
        try:
            canteen.verify_family(ctx(), number, "ZZZZZZ")
        except Refused as exc:
            codes.append(exc.code)
    assert codes[-1] == "account_locked"
    with pytest.raises(Refused, match="account_locked"):
        canteen.verify_family(ctx(), number, DARTAGNAN.proof["invoice_code"])


def test_the_family_and_its_children(canteen, link: LinkRef) -> None:
    family = canteen.family(ctx(), link)
    assert not family.stale
    assert family.data.id == MARIE.external_id
    assert family.data.quotient_tier
    assert family.data.meal_price_cents and family.data.meal_price_cents > 0
    assert len(family.data.children) == 2
    assert all(child.first_name and child.school for child in family.data.children)


def test_a_month_of_meals(canteen, link: LinkRef) -> None:
    child = canteen.family(ctx(), link).data.children[0]
    today = sandbox_today()
    days = canteen.reservations(ctx(), link, child.id, today).data
    assert [d.day.month for d in days] == [today.month] * len(days)
    assert days[0].day.day == 1 and len(days) >= 28
    closed = [d for d in days if not d.bookable]
    assert all(d.changeable_until is None for d in closed)
    assert all(d.changeable_until is not None for d in days if d.bookable)


def test_a_family_books_and_cancels_meals(canteen, link: LinkRef) -> None:
    child = canteen.family(ctx(), link).data.children[0]
    today = sandbox_today()
    days = list(canteen.reservations(ctx(), link, child.id, today).data)
    next_month = today.replace(day=28).toordinal() + 7
    days += canteen.reservations(ctx(), link, child.id, today.fromordinal(next_month)).data
    open_day = next(d for d in days if d.bookable)
    closed_day = next(d for d in days if not d.bookable)
    outcomes = canteen.change_reservations(
        ctx(),
        link,
        child.id,
        [MealChange(open_day.day, not open_day.booked), MealChange(closed_day.day, True)],
        idempotency_key="meals-1",
    )
    assert [(o.day, o.applied) for o in outcomes] == [(open_day.day, True), (closed_day.day, False)]
    assert outcomes[1].reason
    month = canteen.reservations(ctx(), link, child.id, open_day.day).data
    assert {d.day: d.booked for d in month}[open_day.day] is (not open_day.booked)


def test_a_child_not_in_the_family_is_refused(canteen, link: LinkRef) -> None:
    with pytest.raises(Refused, match="not_found"):
        canteen.reservations(ctx(), link, "enf-none", sandbox_today())


def test_invoices_and_their_pdf(canteen, link: LinkRef) -> None:
    invoices = canteen.invoices(ctx(), link).data
    assert invoices and all(i.amount_cents > 0 for i in invoices)
    with_pdf = next(i for i in invoices if i.pdf_available)
    assert canteen.invoice_pdf(ctx(), link, with_pdf.id).startswith(b"%PDF")
    without_pdf = next(i for i in invoices if not i.pdf_available)
    with pytest.raises(Refused) as raised:
        canteen.invoice_pdf(ctx(), link, without_pdf.id)
    assert "demandez-le au service" in raised.value.reason


def test_a_family_pays_an_invoice(canteen, link: LinkRef) -> None:
    unpaid = next(i for i in canteen.invoices(ctx(), link).data if not i.paid)
    handoff = canteen.start_payment(
        ctx(),
        link,
        unpaid.id,
        return_url="http://127.0.0.1:5000/services/cantine-bordeaux/paid",
        notify_url="http://127.0.0.1:5000/hooks/payments",
        idempotency_key="pay-1",
    )
    assert handoff.payment_id
    assert handoff.redirect_url.startswith("http")
    status = canteen.payment_status(ctx(), link, handoff.payment_id)
    assert (status.payment_id, status.invoice_id, status.state) == (
        handoff.payment_id,
        unpaid.id,
        "pending",
    )


def test_a_paid_invoice_cannot_be_paid_again(canteen, link: LinkRef) -> None:
    paid = next(i for i in canteen.invoices(ctx(), link).data if i.paid)
    with pytest.raises(Refused) as raised:
        canteen.start_payment(
            ctx(),
            link,
            paid.id,
            return_url="http://127.0.0.1:5000/r",
            notify_url="http://127.0.0.1:5000/n",
            idempotency_key="pay-2",
        )
    assert raised.value.code == "already_paid"


def test_an_unknown_payment_is_refused(canteen, link: LinkRef) -> None:
    """With its code: ``unknown_payment`` is what the portal settles as abandoned."""
    with pytest.raises(Refused) as raised:
        canteen.payment_status(ctx(), link, "pay-unknown")
    assert raised.value.code == "unknown_payment"


def test_a_payment_the_payment_service_forgot_is_unknown(canteen, link: LinkRef, backends) -> None:
    backends.http.post(
        backends.url + "/_admin/payfip", json={"session_lifetime_s": 0}
    ).raise_for_status()
    unpaid = next(i for i in canteen.invoices(ctx(), link).data if not i.paid)
    handoff = canteen.start_payment(
        ctx(),
        link,
        unpaid.id,
        return_url="http://127.0.0.1:5000/r",
        notify_url="http://127.0.0.1:5000/n",
        idempotency_key="pay-forgotten",
    )
    with pytest.raises(Refused) as raised:
        canteen.payment_status(ctx(), link, handoff.payment_id)
    assert raised.value.code == "unknown_payment"


def test_a_family_that_no_longer_exists_asks_for_a_new_link(canteen) -> None:
    with pytest.raises(LinkInvalid):
        canteen.family(ctx(), LinkRef("fam-gone"))
    with pytest.raises(LinkInvalid):
        canteen.invoices(ctx(), LinkRef("fam-gone"))
