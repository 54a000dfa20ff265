"""The Koha connector against the sandbox's Koha-compatible API (Bordeaux)."""

from __future__ import annotations

from datetime import date

import pytest

from connectors.base import LinkInvalid, LinkRef, Refused
from connectors.registry import Registry
from tests.contract.conftest import account, ctx

MARIE = account("marie-therese", "koha", "bordeaux")
LUCAS = account("lucas", "koha", "bordeaux")
LOCKED = account("paul-antoine", "koha", "bordeaux")


@pytest.fixture
def koha(registry: Registry):
    return registry.connector("bib-bordeaux")


def test_a_resident_proves_their_card_with_its_pin(koha) -> None:
    verified = koha.verify_card(ctx(), MARIE.proof["identifier"], pin=MARIE.proof["password"])
    assert verified.external_id == MARIE.external_id
    assert verified.display_name.startswith("Marie-Thérèse")


def test_a_wrong_pin_is_refused_in_plain_french(koha) -> None:
    with pytest.raises(Refused) as raised:
        koha.verify_card(ctx(), MARIE.proof["identifier"], pin="wrong")
    assert raised.value.code == "invalid_proof"
    assert raised.value.reason == "Numéro de carte ou code PIN incorrect."


def test_a_locked_card_is_refused_as_koha_cannot_tell_why(koha) -> None:
    with pytest.raises(Refused) as raised:
        koha.verify_card(ctx(), LOCKED.proof["identifier"], pin=LOCKED.proof["password"])
    assert raised.value.code == "invalid_proof"


def test_koha_has_no_birth_date_proof(koha, backends) -> None:
    backends.fault("bib-bordeaux", mode="error500")  # proves no call is made
    with pytest.raises(Refused) as raised:
        koha.verify_card(ctx(), MARIE.proof["identifier"], birthdate=date(1962, 8, 24))
    assert raised.value.code == "proof_not_supported"
    assert "date de naissance" in raised.value.reason


def test_the_summary_is_built_from_koha(koha) -> None:
    link = LinkRef(MARIE.external_id)
    summary = koha.patron(ctx(), link).data
    loans = koha.loans(ctx(), link).data
    holds = koha.holds(ctx(), link).data
    account_ = koha.account(ctx(), link).data
    assert summary.display_name.startswith("Marie-Thérèse")
    assert summary.card_expires_on is not None
    assert summary.loans_count == len(loans)
    assert summary.overdue_count == 1
    assert summary.holds_ready_count == sum(h.status == "ready" for h in holds)
    assert summary.balance_cents == account_.balance_cents == 120


def test_loans_have_titles_branches_and_french_reasons(koha) -> None:
    loans = koha.loans(ctx(), LinkRef(MARIE.external_id)).data
    assert all(loan.title and loan.author and loan.branch for loan in loans)
    assert any(loan.renewable for loan in loans)
    reasons = {loan.not_renewable_reason for loan in loans if not loan.renewable}
    assert "Ce prêt est en retard : il ne peut plus être prolongé en ligne." in reasons
    assert "Un autre lecteur a réservé ce document." in reasons
    assert all(loan.renewals_allowed is not None for loan in loans)


def test_holds_map_koha_statuses(koha) -> None:
    holds = koha.holds(ctx(), LinkRef(MARIE.external_id)).data
    statuses = {h.status for h in holds}
    assert statuses == {"ready", "waiting"}
    ready = next(h for h in holds if h.status == "ready")
    assert ready.waiting_until is not None and ready.queue_position is None
    assert ready.pickup_place and not ready.pickup_place.isupper()  # a name, not a code
    waiting = next(h for h in holds if h.status == "waiting")
    assert waiting.queue_position and waiting.queue_position >= 1
    in_transit = koha.holds(ctx(), LinkRef(LUCAS.external_id)).data
    assert [h.status for h in in_transit] == ["in_transit"]
    assert not in_transit[0].cancellable


def test_fines_are_exact_cents(koha) -> None:
    account_ = koha.account(ctx(), LinkRef(MARIE.external_id)).data
    assert account_.balance_cents == 120
    assert [(f.amount_cents, f.label) for f in account_.fines] == [(120, "Retard : Madame Bovary")]


def test_a_resident_renews_a_loan(koha) -> None:
    link = LinkRef(MARIE.external_id)
    loan = next(loan for loan in koha.loans(ctx(), link).data if loan.renewable)
    outcome = koha.renew(ctx(), link, loan.id, idempotency_key="k-renew-1")
    assert outcome.renewed
    assert outcome.new_due_date is not None and outcome.new_due_date > loan.due_date
    after = {item.id: item for item in koha.loans(ctx(), link).data}[loan.id]
    assert after.due_date == outcome.new_due_date
    assert after.renewals_done == loan.renewals_done + 1


def test_koha_refusing_a_renewal_says_why_in_french(koha) -> None:
    link = LinkRef(MARIE.external_id)
    loan = next(loan for loan in koha.loans(ctx(), link).data if not loan.renewable)
    outcome = koha.renew(ctx(), link, loan.id, idempotency_key="k-renew-2")
    assert not outcome.renewed
    assert outcome.reason == loan.not_renewable_reason


def test_a_resident_cannot_renew_someone_elses_loan(koha) -> None:
    lucas = LinkRef(LUCAS.external_id)
    theirs = next(loan for loan in koha.loans(ctx(), lucas).data if loan.renewable)
    with pytest.raises(Refused, match="not_found"):
        koha.renew(ctx(), LinkRef(MARIE.external_id), theirs.id, idempotency_key="k-renew-3")
    after = {item.id: item for item in koha.loans(ctx(), lucas).data}[theirs.id]
    assert after.due_date == theirs.due_date


def test_a_resident_cancels_a_hold(koha) -> None:
    link = LinkRef(MARIE.external_id)
    hold = next(h for h in koha.holds(ctx(), link).data if h.status == "waiting")
    koha.cancel_hold(ctx(), link, hold.id, idempotency_key="k-cancel-1")
    assert hold.id not in {h.id for h in koha.holds(ctx(), link).data}


def test_a_resident_cannot_cancel_someone_elses_hold(koha) -> None:
    theirs = koha.holds(ctx(), LinkRef(LUCAS.external_id)).data[0]
    with pytest.raises(Refused, match="not_found"):
        koha.cancel_hold(ctx(), LinkRef(MARIE.external_id), theirs.id, idempotency_key="k-c-2")
    assert theirs.id in {h.id for h in koha.holds(ctx(), LinkRef(LUCAS.external_id)).data}


def test_a_hold_in_transit_cannot_be_cancelled_online(koha) -> None:
    link = LinkRef(LUCAS.external_id)
    hold = koha.holds(ctx(), link).data[0]
    with pytest.raises(Refused) as raised:
        koha.cancel_hold(ctx(), link, hold.id, idempotency_key="k-cancel-3")
    assert raised.value.code == "not_cancellable"
    assert hold.id in {h.id for h in koha.holds(ctx(), link).data}


def test_a_patron_that_no_longer_exists_asks_for_a_new_link(koha) -> None:
    for read in (koha.patron, koha.loans, koha.holds, koha.account):
        with pytest.raises(LinkInvalid):
            read(ctx(), LinkRef("999999"))


def test_lookups_side_by_side_read_the_same_with_the_same_calls(backends, monkeypatch) -> None:
    """The per-loan and per-hold lookups go out concurrently: what the card reads, and
    how many calls it takes (counted by the outcome hook), are those of one by one."""
    import connectors.library.koha as koha_module

    link = LinkRef(MARIE.external_id)

    def card(reg: Registry) -> tuple[object, ...]:
        koha = reg.connector("bib-bordeaux")
        reads = ("patron", "loans", "holds", "account")
        return tuple(getattr(koha, read)(ctx(), link).data for read in reads)

    counts: dict[str, list[str]] = {"side by side": [], "one by one": []}
    reg = backends.registry(on_outcome=lambda slug, ok, _: counts["side by side"].append(slug))
    try:
        concurrent = card(reg)
    finally:
        reg.close()
    monkeypatch.setattr(
        koha_module, "gather", lambda _ctx, thunks, **_: [thunk() for thunk in thunks]
    )
    reg = backends.registry(on_outcome=lambda slug, ok, _: counts["one by one"].append(slug))
    try:
        sequential = card(reg)
    finally:
        reg.close()
    assert concurrent == sequential
    assert len(counts["side by side"]) == len(counts["one by one"]) > 10
