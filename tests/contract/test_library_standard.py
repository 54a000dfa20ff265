"""The standard library connector against the sandbox's Mérignac and Pessac libraries."""

from __future__ import annotations

from datetime import date

import pytest

from connectors.base import LinkInvalid, LinkRef, Refused
from connectors.registry import Registry
from sandbox.backends.data import sandbox_today
from tests.contract.conftest import account, ctx

MARIE = account("marie-therese", "library", "merignac")
AMINA = account("amina", "library", "merignac")
LOCKED = account("paul-antoine", "library", "pessac")


@pytest.fixture
def merignac(registry: Registry):
    return registry.connector("bib-merignac")


def test_a_resident_proves_their_card_with_its_pin(merignac) -> None:
    verified = merignac.verify_card(ctx(), MARIE.proof["card_number"], pin=MARIE.proof["pin"])
    assert verified.external_id == MARIE.external_id
    assert verified.display_name


def test_a_resident_proves_their_card_with_their_birth_date(merignac) -> None:
    birthdate = date.fromisoformat(MARIE.proof["birthdate"])
    verified = merignac.verify_card(ctx(), MARIE.proof["card_number"], birthdate=birthdate)
    assert verified.external_id == MARIE.external_id


def test_a_wrong_pin_is_refused_with_a_reason(merignac) -> None:
    with pytest.raises(Refused) as raised:
        merignac.verify_card(ctx(), MARIE.proof["card_number"], pin="0000")
    assert raised.value.code == "invalid_proof"
    assert "ne correspond pas" in raised.value.reason


def test_an_unknown_card_is_refused_like_a_wrong_pin(merignac) -> None:
    with pytest.raises(Refused, match="invalid_proof"):
        merignac.verify_card(ctx(), "00000000000000", pin="1234")


def test_a_locked_card_is_refused_even_with_the_right_pin(registry: Registry) -> None:
    pessac = registry.connector("bib-pessac")
    with pytest.raises(Refused) as raised:
        pessac.verify_card(ctx(), LOCKED.proof["card_number"], pin=LOCKED.proof["pin"])
    assert raised.value.code == "card_locked"
    assert "bloquée" in raised.value.reason


def test_a_card_number_alone_proves_nothing(merignac) -> None:
    with pytest.raises(Refused, match="missing_proof"):
        merignac.verify_card(ctx(), MARIE.proof["card_number"])


def test_the_summary_agrees_with_the_lists(merignac) -> None:
    link = LinkRef(MARIE.external_id)
    summary = merignac.patron(ctx(), link)
    loans = merignac.loans(ctx(), link).data
    holds = merignac.holds(ctx(), link).data
    account_ = merignac.account(ctx(), link).data
    assert not summary.stale
    assert summary.data.loans_count == len(loans)
    today = sandbox_today()
    assert summary.data.overdue_count == sum(loan.due_date < today for loan in loans)
    assert summary.data.holds_ready_count == sum(h.status == "ready" for h in holds)
    assert summary.data.balance_cents == account_.balance_cents
    assert account_.balance_cents == sum(f.amount_cents for f in account_.fines)


def test_loans_say_why_they_cannot_be_renewed(merignac) -> None:
    loans = merignac.loans(ctx(), LinkRef(MARIE.external_id)).data
    assert any(loan.renewable for loan in loans)
    refused = [loan for loan in loans if not loan.renewable]
    assert refused
    assert all(loan.not_renewable_reason for loan in refused)
    # ...and as the standard's stable code, which the portal translates.
    assert {loan.not_renewable_code for loan in refused} <= {
        "on_hold",
        "renewal_limit",
        "loan_overdue",
        "card_expired",
        "not_renewable",
    }
    assert "on_hold" in {loan.not_renewable_code for loan in refused}
    assert all(loan.title and loan.branch for loan in loans)


def test_a_resident_renews_a_loan(merignac) -> None:
    link = LinkRef(MARIE.external_id)
    loan = next(loan for loan in merignac.loans(ctx(), link).data if loan.renewable)
    outcome = merignac.renew(ctx(), link, loan.id, idempotency_key="renew-1")
    assert outcome.renewed
    assert outcome.new_due_date is not None and outcome.new_due_date > loan.due_date
    again = merignac.renew(ctx(), link, loan.id, idempotency_key="renew-1")
    assert again == outcome, "a replayed key returns the first answer and renews once"
    after = {item.id: item for item in merignac.loans(ctx(), link).data}[loan.id]
    assert after.due_date == outcome.new_due_date
    assert after.renewals_done == loan.renewals_done + 1


def test_a_loan_that_cannot_be_renewed_says_why(merignac) -> None:
    link = LinkRef(MARIE.external_id)
    loan = next(loan for loan in merignac.loans(ctx(), link).data if not loan.renewable)
    outcome = merignac.renew(ctx(), link, loan.id, idempotency_key="renew-2")
    assert not outcome.renewed
    assert outcome.reason == loan.not_renewable_reason
    assert outcome.reason_code == loan.not_renewable_code != ""


def test_renewing_a_loan_that_is_gone_is_refused(merignac) -> None:
    with pytest.raises(Refused) as raised:
        merignac.renew(ctx(), LinkRef(MARIE.external_id), "mer-l-none", idempotency_key="r-3")
    assert raised.value.code == "not_found"
    assert raised.value.reason


def test_a_resident_cancels_a_hold(merignac) -> None:
    link = LinkRef(MARIE.external_id)
    hold = next(hold for hold in merignac.holds(ctx(), link).data if hold.cancellable)
    assert merignac.cancel_hold(ctx(), link, hold.id, idempotency_key="cancel-1") is None
    assert hold.id not in {h.id for h in merignac.holds(ctx(), link).data}


def test_a_hold_in_transit_cannot_be_cancelled(merignac) -> None:
    link = LinkRef(AMINA.external_id)
    hold = next(hold for hold in merignac.holds(ctx(), link).data if not hold.cancellable)
    with pytest.raises(Refused) as raised:
        merignac.cancel_hold(ctx(), link, hold.id, idempotency_key="cancel-2")
    assert raised.value.code == "not_cancellable"
    assert raised.value.reason


def test_a_card_that_no_longer_exists_asks_for_a_new_link(merignac) -> None:
    with pytest.raises(LinkInvalid):
        merignac.patron(ctx(), LinkRef("mer-p-gone"))
    with pytest.raises(LinkInvalid):
        merignac.loans(ctx(), LinkRef("mer-p-gone"))
